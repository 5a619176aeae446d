import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { KindGuard, type Static, type TSchema, Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { ConfigError } from './errors.js';
import { DNS1123_LABEL, DNS1123_LABEL_MAX, DNS1123_SUBDOMAIN, DNS1123_SUBDOMAIN_MAX } from './kube/names.js';
import { parseDuration } from './rules/duration.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const HostPort = Type.Object({
  host: Type.String({ minLength: 1 }),
  port: Type.Integer({ minimum: 1, maximum: 65535 }),
});

const Duration = Type.Integer({ minimum: 1, description: 'a duration like 10s or 1m30s' });

/** Every setting of `serve`, typed and bounded; each `description` completes "expected …" in an error. */
export const ConfigSchema = Type.Object({
  port: Type.Integer({ minimum: 0, maximum: 65535, description: 'a port number from 0 to 65535' }),
  host: Type.String({ minLength: 1, description: 'a host name or address' }),
  rules: Type.String({ minLength: 1, description: 'a rules file or directory' }),
  redisUrl: Type.Optional(Type.String({ pattern: '^rediss?://.', description: 'redis://host:port or rediss://...' })),
  /** Redis Sentinel: the sentinels, and the name of the master they watch. */
  redisSentinels: Type.Optional(Type.Array(HostPort, { minItems: 1 })),
  redisMasterName: Type.Optional(Type.String({ minLength: 1, description: 'the master name the sentinels know' })),
  /** Redis Cluster: some of its nodes; the rest are found from them. */
  redisClusterNodes: Type.Optional(Type.Array(HostPort, { minItems: 1 })),
  /** The password of the Redis servers (and of the sentinels) of a Sentinel or Cluster; a URL carries its own. */
  redisPassword: Type.Optional(Type.String({ minLength: 1, description: 'a non-empty password' })),
  /** The sentinels' own password (`requirepass` in their config), when it is not the servers'. */
  redisSentinelPassword: Type.Optional(Type.String({ minLength: 1, description: 'a non-empty password' })),
  /** A claim or commit counts once this many replicas acknowledged it (WAIT). */
  redisWaitReplicas: Type.Integer({ minimum: 0, description: 'a whole number of replicas (0: do not wait)' }),
  kubeconfig: Type.Optional(Type.String({ minLength: 1, description: 'a kubeconfig file' })),
  /** SPEC §10: the clusters file (clusters.ts reads it); absent, one cluster. */
  clusters: Type.Optional(Type.String({ minLength: 1, description: 'a clusters file (YAML or JSON)' })),
  dryRun: Type.Boolean(),
  authToken: Type.Optional(Type.String({ minLength: 1, description: 'a non-empty token' })),
  /** `user:password` for HTTP basic auth (Alertmanager's http_config.basic_auth), besides or instead of the token. */
  basicAuth: Type.Optional(Type.String({ pattern: '^[^:]+:.+$', description: 'user:password' })),
  workflowNamespace: Type.String({
    pattern: DNS1123_LABEL.source,
    maxLength: DNS1123_LABEL_MAX,
    description: 'a namespace name (a DNS-1123 label)',
  }),
  workflowServiceAccount: Type.Optional(
    Type.String({
      pattern: DNS1123_SUBDOMAIN.source,
      maxLength: DNS1123_SUBDOMAIN_MAX,
      description: 'a service account name (a DNS-1123 subdomain)',
    }),
  ),
  logLevel: Type.Union(LOG_LEVELS.map((level) => Type.Literal(level))),
  cooldownStoreFailure: Type.Union([Type.Literal('closed'), Type.Literal('open')]),
  maxWorkflowsPerMinute: Type.Integer({ minimum: 0, description: 'a whole number (0: no limit)' }),
  submitTimeoutMs: Duration,
  /** How long a pending claim holds before a dead replica's claim frees itself. */
  pendingLeaseMs: Duration,
  bodyLimitBytes: Type.Integer({ minimum: 1024, description: 'a number of bytes, at least 1024' }),
  /** Alerts being read, decided or answered at once; past it, 503 with Retry-After before any work. */
  maxAlertsInFlight: Type.Integer({ minimum: 1, description: 'a whole number, at least 1' }),
  /** The whole request (headers and body) must arrive within this, or the connection is closed. */
  requestTimeoutMs: Duration,
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: Duration,
  /** Connections open at once; more are closed as soon as they are accepted. */
  maxConnections: Type.Integer({ minimum: 1, description: 'a whole number, at least 1' }),
  /** /readyz also checks that every WorkflowTemplate the rules reference exists. */
  checkTemplates: Type.Boolean(),
  /** Alertmanagers (one per member of an HA set) that escalations are posted to; empty: logged, recorded and counted only. */
  escalationUrls: Type.Array(Type.String({ pattern: '^https?://[^\\s]+$', description: 'an http(s) URL' })),
  /** Base URL of the Argo UI, for the workflow_url of escalations. */
  argoUiUrl: Type.Optional(Type.String({ pattern: '^https?://[^\\s]+$', description: 'an http(s) URL' })),
  /** An escalation fires with endsAt = now + this; its sends are retried within it. */
  escalationTtlMs: Duration,
  auditMaxLen: Type.Integer({ minimum: 1 }),
  /** Names this process in the audit trail. */
  replica: Type.String(),
});

export type Config = Static<typeof ConfigSchema>;
type Key = keyof Config;

const SECRETS: ReadonlySet<Key> = new Set(['authToken', 'basicAuth', 'redisPassword', 'redisSentinelPassword']);
type Env = Record<string, string | undefined>;

interface Setting {
  flag: string;
  env?: string;
  key: Key;
  /** A flag without a value (`--dry-run`). */
  boolean?: boolean;
  /** How the text becomes the value; by default as the key's schema says (a number, a boolean, text). */
  read?: (raw: string, from: string) => unknown;
  /** Given several times, the values add up (an array setting). */
  repeatable?: boolean;
}

function fail(from: string, message: string): never {
  throw new ConfigError(`invalid ${from}: ${message}`);
}

/** A secret from a file, trimmed; a ConfigError naming `from` when it cannot be read. */
export function readSecretFile(path: string, from: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch (err) {
    return fail(from, `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

function readDuration(raw: string, from: string): number {
  return parseDuration(raw.trim()) ?? fail(from, `expected ${Duration.description}, got "${raw}"`);
}

/** A URL as a message may show it: credentials (`user:password@`) are never echoed. */
function redacted(raw: string): string {
  return raw.replace(/\/\/[^/@]*@/, '//***@');
}

/** An http(s) URL without a trailing slash (paths are appended to it). */
function readUrl(raw: string, from: string): string {
  const text = raw.trim();
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return fail(from, `expected an http(s) URL, got "${redacted(raw)}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    fail(from, `expected an http(s) URL, got "${redacted(raw)}"`);
  }
  if (url.search || url.hash) fail(from, `expected a URL without a query or fragment, got "${redacted(raw)}"`);
  return text.replace(/\/+$/, '');
}

/** Comma-separated URLs (an HA set of Alertmanagers); empty entries are skipped. */
function readUrlList(raw: string, from: string): string[] {
  return raw
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '')
    .map((part) => readUrl(part, from));
}

const HOST_PORT = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:[\]]+)):(\d{1,5})$/;

/** `host:port,host:port` (`[::1]:26379` for IPv6); empty entries are skipped. */
function readHostPorts(raw: string, from: string): { host: string; port: number }[] {
  const parts = raw
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '');
  if (parts.length === 0) fail(from, `expected host:port,… got "${raw}"`);
  return parts.map((part) => {
    const match = HOST_PORT.exec(part);
    const port = Number(match?.[3]);
    if (!match || !(port >= 1 && port <= 65535)) return fail(from, `expected host:port (port 1–65535), got "${part}"`);
    return { host: (match[1] ?? match[2]) as string, port };
  });
}

const SETTINGS: Setting[] = [
  { flag: '--port', env: 'PORT', key: 'port' },
  { flag: '--host', env: 'HOST', key: 'host' },
  { flag: '--rules', env: 'KUBE_SENTINEL_RULES', key: 'rules' },
  { flag: '--redis-url', env: 'REDIS_URL', key: 'redisUrl' },
  { flag: '--redis-sentinels', env: 'KUBE_SENTINEL_REDIS_SENTINELS', key: 'redisSentinels', read: readHostPorts },
  { flag: '--redis-master-name', env: 'KUBE_SENTINEL_REDIS_MASTER_NAME', key: 'redisMasterName' },
  {
    flag: '--redis-cluster-nodes',
    env: 'KUBE_SENTINEL_REDIS_CLUSTER_NODES',
    key: 'redisClusterNodes',
    read: readHostPorts,
  },
  {
    flag: '--redis-password-file',
    env: 'KUBE_SENTINEL_REDIS_PASSWORD_FILE',
    key: 'redisPassword',
    read: readSecretFile,
  },
  {
    flag: '--redis-sentinel-password-file',
    env: 'KUBE_SENTINEL_REDIS_SENTINEL_PASSWORD_FILE',
    key: 'redisSentinelPassword',
    read: readSecretFile,
  },
  { flag: '--redis-wait-replicas', env: 'KUBE_SENTINEL_REDIS_WAIT_REPLICAS', key: 'redisWaitReplicas' },
  { flag: '--kubeconfig', env: 'KUBECONFIG', key: 'kubeconfig' },
  { flag: '--clusters', env: 'KUBE_SENTINEL_CLUSTERS', key: 'clusters' },
  { flag: '--dry-run', env: 'KUBE_SENTINEL_DRY_RUN', key: 'dryRun', boolean: true },
  { flag: '--auth-token', env: 'KUBE_SENTINEL_AUTH_TOKEN', key: 'authToken' },
  { flag: '--auth-token-file', env: 'KUBE_SENTINEL_AUTH_TOKEN_FILE', key: 'authToken', read: readSecretFile },
  { flag: '--basic-auth-file', env: 'KUBE_SENTINEL_BASIC_AUTH_FILE', key: 'basicAuth', read: readSecretFile },
  { flag: '--basic-auth', env: 'KUBE_SENTINEL_BASIC_AUTH', key: 'basicAuth' },
  { flag: '--workflow-namespace', env: 'KUBE_SENTINEL_WORKFLOW_NAMESPACE', key: 'workflowNamespace' },
  { flag: '--workflow-service-account', env: 'KUBE_SENTINEL_WORKFLOW_SERVICE_ACCOUNT', key: 'workflowServiceAccount' },
  { flag: '--log-level', env: 'LOG_LEVEL', key: 'logLevel' },
  { flag: '--cooldown-store-failure', env: 'KUBE_SENTINEL_COOLDOWN_STORE_FAILURE', key: 'cooldownStoreFailure' },
  { flag: '--max-workflows-per-minute', env: 'KUBE_SENTINEL_MAX_WORKFLOWS_PER_MINUTE', key: 'maxWorkflowsPerMinute' },
  { flag: '--submit-timeout', env: 'KUBE_SENTINEL_SUBMIT_TIMEOUT', key: 'submitTimeoutMs', read: readDuration },
  { flag: '--pending-lease', env: 'KUBE_SENTINEL_PENDING_LEASE', key: 'pendingLeaseMs', read: readDuration },
  { flag: '--check-templates', env: 'KUBE_SENTINEL_CHECK_TEMPLATES', key: 'checkTemplates', boolean: true },
  { flag: '--body-limit', env: 'KUBE_SENTINEL_BODY_LIMIT', key: 'bodyLimitBytes' },
  { flag: '--max-alerts-in-flight', env: 'KUBE_SENTINEL_MAX_ALERTS_IN_FLIGHT', key: 'maxAlertsInFlight' },
  { flag: '--request-timeout', env: 'KUBE_SENTINEL_REQUEST_TIMEOUT', key: 'requestTimeoutMs', read: readDuration },
  {
    flag: '--keep-alive-timeout',
    env: 'KUBE_SENTINEL_KEEP_ALIVE_TIMEOUT',
    key: 'keepAliveTimeoutMs',
    read: readDuration,
  },
  { flag: '--max-connections', env: 'KUBE_SENTINEL_MAX_CONNECTIONS', key: 'maxConnections' },
  {
    flag: '--escalation-url',
    env: 'KUBE_SENTINEL_ESCALATION_URLS',
    key: 'escalationUrls',
    read: readUrlList,
    repeatable: true,
  },
  { flag: '--argo-ui-url', env: 'KUBE_SENTINEL_ARGO_UI_URL', key: 'argoUiUrl', read: readUrl },
  { flag: '--escalation-ttl', env: 'KUBE_SENTINEL_ESCALATION_TTL', key: 'escalationTtlMs', read: readDuration },
];

export const DEFAULTS: Config = {
  port: 8080,
  host: '0.0.0.0',
  rules: 'rules/',
  dryRun: false,
  workflowNamespace: 'argo',
  logLevel: 'info',
  cooldownStoreFailure: 'closed',
  maxWorkflowsPerMinute: 30,
  submitTimeoutMs: 10_000,
  pendingLeaseMs: 30_000,
  bodyLimitBytes: 1024 * 1024,
  maxAlertsInFlight: 20_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 72_000,
  maxConnections: 512,
  checkTemplates: false,
  escalationUrls: [],
  escalationTtlMs: 3600_000,
  redisWaitReplicas: 0,
  auditMaxLen: 10_000,
  replica: 'local',
};

/** The flags `serve` understands, for --help. */
export const SERVE_FLAGS = SETTINGS.map((s) => ({ flag: s.flag, env: s.env, boolean: s.boolean === true }));

/** Text to the type the key's schema wants; whether it is in range is the schema's check, made once for all. */
function convert(schema: TSchema, raw: string, from: string): unknown {
  if (KindGuard.IsInteger(schema)) {
    if (!/^\d+$/.test(raw.trim())) fail(from, `expected ${schema.description ?? 'a whole number'}, got "${raw}"`);
    return Number(raw);
  }
  if (KindGuard.IsBoolean(schema)) {
    const lower = raw.trim().toLowerCase();
    if (['true', '1', 'yes', 'on', ''].includes(lower)) return true;
    if (['false', '0', 'no', 'off'].includes(lower)) return false;
    return fail(from, `expected true or false, got "${raw}"`);
  }
  return raw;
}

/** What the schema expects of a value, for a message: its description, or the values a union of literals allows. */
function expectation(schema: TSchema): string {
  if (KindGuard.IsUnion(schema) && schema.anyOf.every((option) => KindGuard.IsLiteral(option))) {
    return `one of ${schema.anyOf.map((option) => String(option.const)).join(', ')}`;
  }
  return schema.description ?? (Value.Errors(schema, undefined).First()?.message ?? 'a valid value').toLowerCase();
}

/**
 * Flags win over environment variables, which win over defaults. Throws ConfigError naming the
 * setting for anything it cannot use; unknown flags are errors too (a typo must not go unnoticed).
 */
export function loadConfig(args: readonly string[], env: Env, defaults: Partial<Config> = {}): Config {
  const config: Record<string, unknown> = { ...DEFAULTS, replica: env.HOSTNAME || hostname(), ...defaults };
  /** Where each value that did not come from the defaults came from, for messages. */
  const origins = new Map<Key, { from: string; raw: string }>();
  const apply = (setting: Setting, raw: string, from: string): void => {
    const schema = ConfigSchema.properties[setting.key];
    const text = setting.read ? setting.read(raw, from) : raw;
    const value = typeof text === 'string' ? convert(schema, text, from) : text;
    // A repeated flag adds to what the same flag gave before (not to the environment's value).
    const previous = origins.get(setting.key);
    config[setting.key] =
      setting.repeatable && previous?.from === from && Array.isArray(config[setting.key])
        ? [...(config[setting.key] as unknown[]), ...(value as unknown[])]
        : value;
    origins.set(setting.key, { from: setting.read === readSecretFile ? `${from} (${raw})` : from, raw: String(text) });
  };

  // A flag wins over its environment variable, even over an invalid one.
  const flagged = new Set(args.map((arg) => arg.split('=')[0]));
  for (const setting of SETTINGS) {
    if (flagged.has(setting.flag) || setting.env === undefined) continue;
    const raw = env[setting.env];
    if (raw !== undefined && !(setting.boolean && raw === '')) apply(setting, raw, setting.env);
  }
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    const eq = arg.indexOf('=');
    const flag = eq >= 0 ? arg.slice(0, eq) : arg;
    const setting = SETTINGS.find((s) => s.flag === flag);
    if (!setting) throw new ConfigError(`unknown flag ${flag} (see --help)`);
    let raw: string;
    if (eq >= 0) raw = arg.slice(eq + 1);
    else if (setting.boolean) raw = 'true';
    else {
      const next = args[i + 1];
      if (next === undefined || next.startsWith('--')) throw new ConfigError(`invalid ${flag}: a value is required`);
      raw = next;
      i++;
    }
    apply(setting, raw, flag);
  }

  const required = new Set<string>(ConfigSchema.required ?? []);
  for (const [key, schema] of Object.entries(ConfigSchema.properties) as [Key, TSchema][]) {
    const value = config[key];
    if (value === undefined && !required.has(key)) continue;
    if (Value.Check(schema, value)) continue;
    const origin = origins.get(key);
    // A credential is never echoed: the message goes to logs and terminals.
    if (origin) fail(origin.from, `expected ${expectation(schema)}${SECRETS.has(key) ? '' : `, got "${origin.raw}"`}`);
    fail(`setting ${key}`, `expected ${expectation(schema)}, got ${JSON.stringify(value)}`);
  }
  const valid = config as Config;
  checkRedisSource(valid, (key) => origins.get(key)?.from);
  // A pending claim must outlive its create: a lease that ran out while the create was still
  // waiting for its answer would let another replica claim the key under a new name.
  if (valid.pendingLeaseMs <= valid.submitTimeoutMs) {
    const lease = origins.get('pendingLeaseMs');
    const timeout = origins.get('submitTimeoutMs');
    fail(
      lease?.from ?? timeout?.from ?? '--pending-lease',
      `the pending lease (${valid.pendingLeaseMs} ms) must be longer than the submit timeout (${valid.submitTimeoutMs} ms), or a slow create could be duplicated`,
    );
  }
  return valid;
}

const REDIS_SOURCES = [
  ['redisUrl', '--redis-url'],
  ['redisSentinels', '--redis-sentinels'],
  ['redisClusterNodes', '--redis-cluster-nodes'],
] as const;

/** At most one way to reach Redis, and the settings each needs (SPEC §10). */
function checkRedisSource(config: Config, originOf: (key: Key) => string | undefined): void {
  const given = REDIS_SOURCES.filter(([key]) => config[key] !== undefined);
  if (given.length > 1) {
    const named = given.map(([key, flag]) => originOf(key) ?? flag);
    fail(named[1] as string, `choose one Redis: ${named.join(' and ')} were both given`);
  }
  if (config.redisSentinels !== undefined && config.redisMasterName === undefined) {
    fail(
      originOf('redisSentinels') ?? '--redis-sentinels',
      'needs --redis-master-name, the master the sentinels watch',
    );
  }
  if (config.redisMasterName !== undefined && config.redisSentinels === undefined) {
    fail(originOf('redisMasterName') ?? '--redis-master-name', 'is for Redis Sentinel: give --redis-sentinels too');
  }
  if (
    config.redisPassword !== undefined &&
    config.redisSentinels === undefined &&
    config.redisClusterNodes === undefined
  ) {
    fail(
      originOf('redisPassword') ?? '--redis-password-file',
      'is for --redis-sentinels or --redis-cluster-nodes (a --redis-url carries its own password)',
    );
  }
  if (config.redisSentinelPassword !== undefined && config.redisSentinels === undefined) {
    fail(originOf('redisSentinelPassword') ?? '--redis-sentinel-password-file', 'is for --redis-sentinels');
  }
  if (config.redisWaitReplicas > 0 && given.length === 0) {
    fail(
      originOf('redisWaitReplicas') ?? '--redis-wait-replicas',
      'needs a Redis: the in-memory store has no replicas',
    );
  }
}
