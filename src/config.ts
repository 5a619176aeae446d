import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { ConfigError } from './errors.js';
import { parseDuration } from './rules/duration.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export const ConfigSchema = Type.Object({
  port: Type.Integer({ minimum: 0, maximum: 65535 }),
  host: Type.String({ minLength: 1 }),
  rules: Type.String({ minLength: 1 }),
  redisUrl: Type.Optional(Type.String({ pattern: '^rediss?://' })),
  kubeconfig: Type.Optional(Type.String({ minLength: 1 })),
  dryRun: Type.Boolean(),
  authToken: Type.Optional(Type.String({ minLength: 1 })),
  /** `user:password` for HTTP basic auth (Alertmanager's http_config.basic_auth), besides or instead of the token. */
  basicAuth: Type.Optional(Type.String({ pattern: '^[^:]+:.+$' })),
  workflowNamespace: Type.String({ pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$', maxLength: 63 }),
  workflowServiceAccount: Type.Optional(Type.String({ pattern: '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$', maxLength: 253 })),
  logLevel: Type.Union(LOG_LEVELS.map((level) => Type.Literal(level))),
  cooldownStoreFailure: Type.Union([Type.Literal('closed'), Type.Literal('open')]),
  maxWorkflowsPerMinute: Type.Integer({ minimum: 0 }),
  submitTimeoutMs: Type.Integer({ minimum: 1 }),
  /** How long a pending claim holds before a dead replica's claim frees itself. */
  pendingLeaseMs: Type.Integer({ minimum: 1 }),
  bodyLimitBytes: Type.Integer({ minimum: 1024 }),
  /** /readyz also checks that every WorkflowTemplate the rules reference exists. */
  checkTemplates: Type.Boolean(),
  auditMaxLen: Type.Integer({ minimum: 1 }),
  /** Names this process in the audit trail. */
  replica: Type.String(),
});

export type Config = Static<typeof ConfigSchema>;

type Env = Record<string, string | undefined>;

interface Setting {
  flag: string;
  env?: string;
  /** A flag without a value (`--dry-run`). */
  boolean?: boolean;
  apply(config: Partial<Config>, raw: string, from: string): void;
}

function fail(from: string, message: string): never {
  throw new ConfigError(`invalid ${from}: ${message}`);
}

function parseBool(raw: string, from: string): boolean {
  const lower = raw.trim().toLowerCase();
  if (['true', '1', 'yes', 'on', ''].includes(lower)) return true;
  if (['false', '0', 'no', 'off'].includes(lower)) return false;
  return fail(from, `expected true or false, got "${raw}"`);
}

function parseInteger(raw: string, from: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^\d+$/.test(raw.trim())) fail(from, `expected a whole number, got "${raw}"`);
  const n = Number(raw);
  if (n < min || n > max) fail(from, `expected a number from ${min} to ${max}, got ${raw}`);
  return n;
}

function parseMs(raw: string, from: string): number {
  const ms = parseDuration(raw.trim());
  if (ms === null || ms <= 0) fail(from, `expected a duration like 10s or 1m30s, got "${raw}"`);
  return ms;
}

function oneOf<T extends string>(raw: string, from: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(raw)) fail(from, `expected one of ${allowed.join(', ')}, got "${raw}"`);
  return raw as T;
}

const SETTINGS: Setting[] = [
  { flag: '--port', env: 'PORT', apply: (c, raw, from) => (c.port = parseInteger(raw, from, 0, 65535)) },
  { flag: '--host', env: 'HOST', apply: (c, raw) => (c.host = raw) },
  { flag: '--rules', env: 'KUBE_SENTINEL_RULES', apply: (c, raw) => (c.rules = raw) },
  {
    flag: '--redis-url',
    env: 'REDIS_URL',
    apply: (c, raw, from) => {
      if (!/^rediss?:\/\/./.test(raw)) fail(from, `expected redis://host:port or rediss://..., got "${raw}"`);
      c.redisUrl = raw;
    },
  },
  { flag: '--kubeconfig', env: 'KUBECONFIG', apply: (c, raw) => (c.kubeconfig = raw) },
  { flag: '--dry-run', env: 'KUBE_SENTINEL_DRY_RUN', boolean: true, apply: (c, raw, from) => (c.dryRun = parseBool(raw, from)) },
  { flag: '--auth-token', env: 'KUBE_SENTINEL_AUTH_TOKEN', apply: (c, raw, from) => (c.authToken = nonEmpty(raw, from)) },
  {
    flag: '--auth-token-file',
    env: 'KUBE_SENTINEL_AUTH_TOKEN_FILE',
    apply: (c, raw, from) => (c.authToken = nonEmpty(readSecretFile(raw, from), `${from} (${raw})`)),
  },
  {
    flag: '--basic-auth-file',
    env: 'KUBE_SENTINEL_BASIC_AUTH_FILE',
    apply: (c, raw, from) => (c.basicAuth = basicAuth(readSecretFile(raw, from), `${from} (${raw})`)),
  },
  { flag: '--basic-auth', env: 'KUBE_SENTINEL_BASIC_AUTH', apply: (c, raw, from) => (c.basicAuth = basicAuth(raw, from)) },
  {
    flag: '--workflow-namespace',
    env: 'KUBE_SENTINEL_WORKFLOW_NAMESPACE',
    apply: (c, raw, from) => {
      if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(raw) || raw.length > 63) fail(from, `"${raw}" is not a valid namespace name`);
      c.workflowNamespace = raw;
    },
  },
  {
    flag: '--workflow-service-account',
    env: 'KUBE_SENTINEL_WORKFLOW_SERVICE_ACCOUNT',
    apply: (c, raw, from) => {
      if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(raw) || raw.length > 253) fail(from, `"${raw}" is not a valid service account name`);
      c.workflowServiceAccount = raw;
    },
  },
  { flag: '--log-level', env: 'LOG_LEVEL', apply: (c, raw, from) => (c.logLevel = oneOf(raw, from, LOG_LEVELS)) },
  {
    flag: '--cooldown-store-failure',
    env: 'KUBE_SENTINEL_COOLDOWN_STORE_FAILURE',
    apply: (c, raw, from) => (c.cooldownStoreFailure = oneOf(raw, from, ['closed', 'open'] as const)),
  },
  {
    flag: '--max-workflows-per-minute',
    env: 'KUBE_SENTINEL_MAX_WORKFLOWS_PER_MINUTE',
    apply: (c, raw, from) => (c.maxWorkflowsPerMinute = parseInteger(raw, from, 0)),
  },
  { flag: '--submit-timeout', env: 'KUBE_SENTINEL_SUBMIT_TIMEOUT', apply: (c, raw, from) => (c.submitTimeoutMs = parseMs(raw, from)) },
  { flag: '--pending-lease', env: 'KUBE_SENTINEL_PENDING_LEASE', apply: (c, raw, from) => (c.pendingLeaseMs = parseMs(raw, from)) },
  {
    flag: '--check-templates',
    env: 'KUBE_SENTINEL_CHECK_TEMPLATES',
    boolean: true,
    apply: (c, raw, from) => (c.checkTemplates = parseBool(raw, from)),
  },
  {
    flag: '--body-limit',
    env: 'KUBE_SENTINEL_BODY_LIMIT',
    apply: (c, raw, from) => (c.bodyLimitBytes = parseInteger(raw, from, 1024)),
  },
];

function readSecretFile(path: string, from: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch (err) {
    return fail(from, `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

function basicAuth(raw: string, from: string): string {
  if (!/^[^:]+:.+$/.test(raw)) fail(from, 'expected user:password');
  return raw;
}

function nonEmpty(raw: string, from: string): string {
  if (raw === '') fail(from, 'must not be empty');
  return raw;
}

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
  checkTemplates: false,
  auditMaxLen: 10_000,
  replica: 'local',
};

/** The flags `serve` understands, for --help. */
export const SERVE_FLAGS = SETTINGS.map((s) => ({ flag: s.flag, env: s.env, boolean: s.boolean === true }));

/**
 * Flags win over environment variables, which win over defaults. Throws ConfigError naming the
 * setting for anything it cannot use; unknown flags are errors too (a typo must not go unnoticed).
 */
export function loadConfig(args: readonly string[], env: Env, defaults: Partial<Config> = {}): Config {
  const config: Partial<Config> = { ...DEFAULTS, replica: env.HOSTNAME || hostname(), ...defaults };
  // A flag wins over its environment variable, even over an invalid one.
  const flagged = new Set(args.map((arg) => arg.split('=')[0]));
  for (const setting of SETTINGS) {
    if (flagged.has(setting.flag)) continue;
    const raw = setting.env === undefined ? undefined : env[setting.env];
    if (raw !== undefined && !(setting.boolean && raw === '')) setting.apply(config, raw, setting.env!);
  }
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
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
    setting.apply(config, raw, flag);
  }
  if (!Value.Check(ConfigSchema, config)) {
    const first = Value.Errors(ConfigSchema, config).First();
    throw new ConfigError(`invalid setting ${first?.path ?? ''}: ${first?.message ?? 'unknown problem'}`);
  }
  return config;
}
