import { userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import { readSecretFile } from '../config.js';
import { ConfigError } from '../errors.js';
import { isPause, PAUSE_SELECTORS, type Pause } from '../pause.js';

type Env = Record<string, string | undefined>;

const DEFAULT_SERVER = 'http://localhost:8080';
const REQUEST_TIMEOUT_MS = 10_000;

export const PAUSE_USAGE = `  pause SELECTOR... --for DURATION | --until TIME --reason TEXT [--by WHO]
                                     pauses remediation of what the selectors name, on every replica:
                                     --namespace NS, --rule R, --workload W, --cluster C (ANDed);
                                     --all instead pauses every alert. At most 30 days; --by defaults
                                     to $USER
  pauses [--json]                    the pauses in force, the one that ends first first
  unpause ID                         ends a pause at once

pause, pauses and unpause talk to a running receiver:
  --server URL                       KUBE_SENTINEL_SERVER (default ${DEFAULT_SERVER})
  --token TOKEN / --token-file FILE  KUBE_SENTINEL_AUTH_TOKEN / KUBE_SENTINEL_AUTH_TOKEN_FILE
  --json                             prints what the receiver answered, as JSON`;

const CLIENT_OPTIONS = {
  server: { type: 'string' },
  token: { type: 'string' },
  'token-file': { type: 'string' },
  json: { type: 'boolean' },
} as const;

/** An unknown flag or a missing value, as node's parseArgs says it, is a usage error (exit 2). */
function usageErrors<T>(read: () => T, usage: string): T {
  try {
    return read();
  } catch (err) {
    // Node's first sentence says it ("Unknown option '--x'"); the rest is advice about `--`.
    throw new ConfigError(`${(err as Error).message.split(/\.( |$)/)[0]} (usage: ${usage})`);
  }
}

interface Client {
  server: string;
  token: string | undefined;
}

function clientOf(values: { server?: string; token?: string; 'token-file'?: string }, env: Env): Client {
  const server = (values.server ?? env.KUBE_SENTINEL_SERVER ?? DEFAULT_SERVER).replace(/\/+$/, '');
  if (!/^https?:\/\/[^/]/.test(server))
    throw new ConfigError(`invalid --server: expected an http(s) URL, got "${server}"`);
  if (values.token !== undefined && values['token-file'] !== undefined) {
    throw new ConfigError('give --token or --token-file, not both');
  }
  const file = values['token-file'] ?? (values.token === undefined ? env.KUBE_SENTINEL_AUTH_TOKEN_FILE : undefined);
  let token = values.token ?? (file === undefined ? env.KUBE_SENTINEL_AUTH_TOKEN : undefined);
  if (file !== undefined) token = readSecretFile(file, '--token-file');
  return { server, token: token || undefined };
}

/** A refusal by the receiver, or no answer from it: printed on one line, exit 1. */
class RequestFailed extends Error {}

/** Which flag a field the receiver names came from, so that its message points at the command line. */
const FLAG_OF_FIELD: Readonly<Record<string, string>> = {
  'body.namespace': '--namespace',
  'body.rule': '--rule',
  'body.workload': '--workload',
  'body.cluster': '--cluster',
  'body.duration': '--for',
  'body.until': '--until',
  'body.reason': '--reason',
  'body.createdBy': '--by',
};

/**
 * The receiver's answer, when `expected` recognises it. Whatever else answers (a connection that
 * fails, a refusal, a server at --server that is not a receiver) is a RequestFailed naming it.
 */
async function request<T>(
  client: Client,
  method: string,
  path: string,
  expected: (answer: unknown) => answer is T,
  body?: unknown,
): Promise<T> {
  const url = `${client.server}${path}`;
  let response: Response;
  let text: string;
  try {
    response = await fetch(url, {
      method,
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(client.token === undefined ? {} : { authorization: `Bearer ${client.token}` }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    text = await response.text();
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new RequestFailed(
      `cannot reach ${client.server}: ${cause?.code ?? cause?.message ?? (err as Error).message}`,
    );
  }
  let answer: unknown;
  try {
    answer = JSON.parse(text);
  } catch {
    answer = undefined;
  }
  if (response.ok && expected(answer)) return answer;
  if (response.ok) {
    throw new RequestFailed(
      `${method} ${url}: ${response.status}, but not with what a kube-sentinel receiver answers (is --server one?): ${text.slice(0, 200)}`,
    );
  }
  const refusal = answer as { message?: unknown; field?: unknown } | undefined;
  const message = typeof refusal?.message === 'string' ? refusal.message : text.slice(0, 200) || response.statusText;
  const flag = typeof refusal?.field === 'string' ? FLAG_OF_FIELD[refusal.field] : undefined;
  throw new RequestFailed(`${method} ${url}: ${response.status} ${message}${flag ? ` (${flag})` : ''}`);
}

function isPauseList(answer: unknown): answer is { pauses: Pause[] } {
  const pauses = (answer as { pauses?: unknown } | null)?.pauses;
  return Array.isArray(pauses) && pauses.every(isPause);
}

/** `namespace=shop,rule=pod-crash`, or `everything` for a pause without selectors. */
function selectorText(pause: Pause): string {
  const parts = PAUSE_SELECTORS.flatMap((name) => (pause[name] === undefined ? [] : [`${name}=${pause[name]}`]));
  return parts.length === 0 ? 'everything' : parts.join(',');
}

function table(pauses: readonly Pause[]): string {
  const rows = [
    ['ID', 'SELECTOR', 'UNTIL', 'BY', 'REASON'],
    ...pauses.map((p) => [p.id, selectorText(p), p.expiresAt, p.createdBy, p.reason]),
  ];
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length))) ?? [];
  return rows
    .map((row) =>
      row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column] ?? 0))).join('  '),
    )
    .join('\n');
}

function whoAmI(env: Env): string | undefined {
  const named = env.USER ?? env.LOGNAME;
  if (named) return named;
  try {
    return userInfo().username || undefined;
  } catch {
    // A container user without a passwd entry has no name.
    return undefined;
  }
}

async function run(action: () => Promise<void>): Promise<number> {
  try {
    await action();
    return 0;
  } catch (err) {
    if (!(err instanceof RequestFailed)) throw err;
    process.stderr.write(`kube-sentinel: ${err.message}\n`);
    return 1;
  }
}

const PAUSE_SYNOPSIS = 'kube-sentinel pause --namespace NS --for 2h --reason TEXT';

export async function pause(args: string[], env: Env): Promise<number> {
  const options = {
    ...CLIENT_OPTIONS,
    namespace: { type: 'string' },
    rule: { type: 'string' },
    workload: { type: 'string' },
    cluster: { type: 'string' },
    all: { type: 'boolean' },
    for: { type: 'string' },
    until: { type: 'string' },
    reason: { type: 'string' },
    by: { type: 'string' },
  } as const;
  const { values, positionals } = usageErrors(
    () => parseArgs({ args, options, allowPositionals: true, strict: true }),
    PAUSE_SYNOPSIS,
  );
  if (positionals.length > 0) throw new ConfigError(`unexpected ${positionals[0]} (usage: ${PAUSE_SYNOPSIS})`);
  const selectors = Object.fromEntries(
    PAUSE_SELECTORS.flatMap((name) => (values[name] === undefined ? [] : [[name, values[name]]])),
  );
  const selected = Object.keys(selectors).length > 0;
  // A forgotten --namespace must never pause everything.
  if (!selected && !values.all) {
    throw new ConfigError(
      'a pause needs --namespace, --rule, --workload or --cluster; --all pauses every alert, if that is what you mean',
    );
  }
  if (selected && values.all) throw new ConfigError('--all pauses every alert: it takes no selector');
  if ((values.for === undefined) === (values.until === undefined)) {
    throw new ConfigError('give one of --for DURATION (e.g. 2h) and --until TIME (e.g. 2026-11-26T18:00:00Z)');
  }
  if (!values.reason?.trim()) throw new ConfigError('--reason is required: say why, for whoever finds the pause');
  const createdBy = values.by ?? whoAmI(env);
  if (!createdBy) throw new ConfigError('--by is required: no user name is known here');
  const client = clientOf(values, env);
  const body = {
    ...selectors,
    ...(values.for === undefined ? {} : { duration: values.for }),
    ...(values.until === undefined ? {} : { until: values.until }),
    reason: values.reason,
    createdBy,
  };
  return run(async () => {
    const added = await request(client, 'POST', '/v1/pauses', isPause, body);
    process.stdout.write(
      values.json
        ? `${JSON.stringify(added)}\n`
        : `paused ${selectorText(added)} until ${added.expiresAt} (id ${added.id}; kube-sentinel unpause ${added.id} ends it)\n`,
    );
  });
}

export async function listPauses(args: string[], env: Env): Promise<number> {
  const { values, positionals } = usageErrors(
    () => parseArgs({ args, options: CLIENT_OPTIONS, allowPositionals: true, strict: true }),
    'kube-sentinel pauses [--json]',
  );
  if (positionals.length > 0)
    throw new ConfigError(`unexpected ${positionals[0]} (usage: kube-sentinel pauses [--json])`);
  const client = clientOf(values, env);
  return run(async () => {
    const answer = await request(client, 'GET', '/v1/pauses', isPauseList);
    if (values.json) process.stdout.write(`${JSON.stringify(answer)}\n`);
    else process.stdout.write(answer.pauses.length === 0 ? 'no pauses in force\n' : `${table(answer.pauses)}\n`);
  });
}

export async function unpause(args: string[], env: Env): Promise<number> {
  const { values, positionals } = usageErrors(
    () => parseArgs({ args, options: CLIENT_OPTIONS, allowPositionals: true, strict: true }),
    'kube-sentinel unpause ID',
  );
  const [id, ...rest] = positionals;
  if (id === undefined || rest.length > 0) throw new ConfigError('usage: kube-sentinel unpause ID');
  const client = clientOf(values, env);
  return run(async () => {
    const removed = await request(client, 'DELETE', `/v1/pauses/${encodeURIComponent(id)}`, isPause);
    process.stdout.write(
      values.json ? `${JSON.stringify(removed)}\n` : `unpaused ${selectorText(removed)} (id ${removed.id})\n`,
    );
  });
}
