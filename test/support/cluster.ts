/**
 * Helpers for acceptance tests that run several replicas and inject faults: delivering alerts
 * the way Alertmanager does (redelivery on every non-2xx), reading the shared audit trail, an
 * Alertmanager HA pair that really gossips, and counting Workflows per alert.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fingerprintOf } from '../../src/pipeline/fingerprint.js';
import { type Alertmanager, startAlertmanager } from './alertmanager.js';
import type { StoredWorkflow } from './fake-kube.js';
import { eventually, freePort } from './processes.js';

/** A decision as the ingest routes answer it and the audit trail stores it (audit entries add at and replica). */
export interface DecisionView {
  fingerprint: string;
  alertname: string;
  status: string;
  rule: string | null;
  outcome: string;
  reason?: string;
  cooldownKey?: string;
  workflow?: { namespace: string; name: string };
  at?: string;
  replica?: string;
  /** A folded entry (SPEC §11): how many times, and when the latest was (`at` is the first). */
  count?: number;
  lastAt?: string;
}

/** A v2 postable alert, the shape Prometheus posts to Alertmanager (and to Kube Sentinel directly). */
export interface PostableAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export function crashLoopAlert(
  labels: Record<string, string>,
  annotations: Record<string, string> = {},
): PostableAlert {
  return {
    labels: { alertname: 'KubePodCrashLooping', ...labels },
    annotations: { description: 'Pod is crash looping', ...annotations },
  };
}

export function fingerprint(alert: PostableAlert): string {
  return fingerprintOf(alert.labels);
}

const ZERO_TIME = '0001-01-01T00:00:00Z';

/** The webhook body Alertmanager sends for one group of firing alerts. */
export function webhookBody(alerts: PostableAlert[]): Record<string, unknown> {
  return {
    version: '4',
    status: 'firing',
    receiver: 'kube-sentinel',
    groupKey: `{}:{alertname="${alerts[0]?.labels.alertname ?? ''}"}`,
    truncatedAlerts: 0,
    groupLabels: {},
    commonLabels: {},
    commonAnnotations: {},
    externalURL: 'http://alertmanager.invalid',
    alerts: alerts.map((alert) => ({
      status: 'firing',
      labels: alert.labels,
      annotations: alert.annotations,
      startsAt: new Date().toISOString(),
      endsAt: ZERO_TIME,
      generatorURL: '',
      fingerprint: fingerprint(alert),
    })),
  };
}

/** One HTTP exchange with a receiver. `status` 0 means no answer at all (connection refused or reset). */
export interface Answer {
  status: number;
  retryAfter: string | null;
  decisions: DecisionView[];
  /** Epoch ms when the request was sent and when its answer (or error) came back. */
  startedAt: number;
  endedAt: number;
  /** The network error code when status is 0. */
  error?: string;
}

export function networkErrorCode(err: unknown): string {
  for (let cur: unknown = err, depth = 0; cur && typeof cur === 'object' && depth < 5; depth++) {
    const { code, cause } = cur as { code?: unknown; cause?: unknown };
    if (typeof code === 'string') return code;
    cur = cause;
  }
  return err instanceof Error ? err.message : String(err);
}

export async function post(baseUrl: string, path: string, body: unknown, token?: string): Promise<Answer> {
  const startedAt = Date.now();
  try {
    const res = await fetch(`${baseUrl}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    let decisions: DecisionView[] = [];
    try {
      decisions = (JSON.parse(text) as { decisions?: DecisionView[] }).decisions ?? [];
    } catch {
      // Not every answer is a decisions document (a 401 or 413 is an error document).
    }
    return {
      status: res.status,
      retryAfter: res.headers.get('retry-after'),
      decisions,
      startedAt,
      endedAt: Date.now(),
    };
  } catch (err) {
    return { status: 0, retryAfter: null, decisions: [], startedAt, endedAt: Date.now(), error: networkErrorCode(err) };
  }
}

export interface DeliveryOptions {
  token?: string;
  /** Bound on attempts, like Alertmanager giving up on a notification after its timeout. */
  maxAttempts?: number;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
}

/** A delivery in progress: every attempt so far, and the final 2xx answer. */
export interface Delivery {
  readonly attempts: Answer[];
  done: Promise<Answer>;
}

/**
 * Delivers one body the way Alertmanager's notifier does: the same body again after every
 * non-2xx answer (or no answer), with exponential backoff, a bounded number of times. Retry-After
 * is not honoured, as Alertmanager's notifier does not honour it either. `done` rejects, listing
 * the attempts, when the bound runs out.
 */
export function deliver(baseUrl: string, path: string, body: unknown, options: DeliveryOptions = {}): Delivery {
  const { token, maxAttempts = 40, initialBackoffMs = 50, maxBackoffMs = 500 } = options;
  const attempts: Answer[] = [];
  const done = (async () => {
    let backoff = initialBackoffMs;
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      const answer = await post(baseUrl, path, body, token);
      attempts.push(answer);
      if (answer.status >= 200 && answer.status < 300) return answer;
      if (attempt < maxAttempts) {
        await new Promise((resolve) => setTimeout(resolve, backoff));
        backoff = Math.min(backoff * 2, maxBackoffMs);
      }
    }
    const seen = attempts.map(
      (a) =>
        `${a.status || a.error} ${a.decisions.map((d) => `${d.outcome}${d.reason ? ` (${d.reason})` : ''}`).join(', ')}`,
    );
    throw new Error(`no 2xx from ${baseUrl}${path} after ${maxAttempts} attempts:\n${seen.join('\n')}`);
  })();
  // A test that fails before awaiting `done` must not also get an unhandled rejection.
  done.catch(() => undefined);
  return { attempts, done };
}

/** Waits until a delivery has seen at least `count` answers, and returns them. */
export function attemptsOf(delivery: Delivery, count: number, what: string, timeoutMs = 15_000): Promise<Answer[]> {
  return eventually(
    () => (delivery.attempts.length >= count ? [...delivery.attempts] : undefined),
    `${count} attempts of ${what}`,
    timeoutMs,
  );
}

/** GET /v1/decisions?limit=1000 on one replica: the audit trail every replica shares. */
export async function auditTrail(baseUrl: string, token?: string): Promise<DecisionView[]> {
  const res = await fetch(`${baseUrl}/v1/decisions?limit=1000`, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
  if (res.status !== 200) throw new Error(`GET /v1/decisions answered ${res.status}: ${await res.text()}`);
  return ((await res.json()) as { decisions: DecisionView[] }).decisions;
}

/** Workflow names per alert, by the `kube-sentinel.io/fingerprint` annotation every Workflow carries. */
export function workflowsByAlert(workflows: readonly StoredWorkflow[]): Map<string, string[]> {
  const byAlert = new Map<string, string[]>();
  for (const workflow of workflows) {
    const alert = workflow.metadata.annotations?.['kube-sentinel.io/fingerprint'] ?? '(no fingerprint annotation)';
    byAlert.set(alert, [...(byAlert.get(alert) ?? []), workflow.metadata.name]);
  }
  return byAlert;
}

/**
 * Alerts whose Workflow count differs from what was expected (a missing fingerprint expects 0),
 * plus Workflows for alerts nobody expected: empty when every alert got exactly its Workflows.
 */
export function workflowCountProblems(
  workflows: readonly StoredWorkflow[],
  expected: ReadonlyMap<string, number>,
): string[] {
  const byAlert = workflowsByAlert(workflows);
  const problems: string[] = [];
  for (const [alert, count] of expected) {
    const names = byAlert.get(alert) ?? [];
    if (names.length !== count)
      problems.push(`alert ${alert}: expected ${count} Workflow(s), found ${names.length} ${JSON.stringify(names)}`);
  }
  for (const [alert, names] of byAlert) {
    if (!expected.has(alert)) problems.push(`alert ${alert}: unexpected Workflow(s) ${JSON.stringify(names)}`);
  }
  return problems;
}

/** JSON log lines a receiver printed (pino), skipping anything that is not JSON. */
export function logLines(output: string): Record<string, unknown>[] {
  const lines: Record<string, unknown>[] = [];
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      lines.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // A line cut in the middle by the output buffer's trimming.
    }
  }
  return lines;
}

/** Writes a rules file to a fresh temp directory and returns the directory and the file's path. */
export function writeRules(yaml: string): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'ks-cluster-'));
  const file = join(dir, 'rules.yaml');
  writeFileSync(file, yaml);
  return { dir, file };
}

interface ClusterStatus {
  cluster?: { status?: string; peers?: { name: string; address: string }[] };
}

/**
 * Two prometheus-alertmanager processes clustered over loopback, each peering with the other,
 * each sending its webhook to its own URL. Resolves once both report 2 peers in GET
 * /api/v2/status: the gossip (memberlist) works, so the pair shares its notification log and
 * deduplicates as an HA pair does in production.
 */
export async function startAlertmanagerPair(
  webhookUrls: readonly [string, string],
  token?: string,
): Promise<{ pair: [Alertmanager, Alertmanager]; clusterAddresses: string[]; peers: [string[], string[]] }> {
  const clusterPorts = [await freePort(), await freePort()] as const;
  const addresses = clusterPorts.map((port) => `127.0.0.1:${port}`);
  const pair = (await Promise.all(
    webhookUrls.map((webhookUrl, i) =>
      startAlertmanager({
        webhookUrl,
        ...(token ? { token } : {}),
        cluster: { port: clusterPorts[i]!, peers: [addresses[1 - i]!] },
      }),
    ),
  )) as [Alertmanager, Alertmanager];
  const peersOf = async (am: Alertmanager): Promise<string[] | undefined> => {
    const status = (await (await fetch(`${am.url}/api/v2/status`)).json()) as ClusterStatus;
    const peers = status.cluster?.peers?.map((peer) => peer.address) ?? [];
    return peers.length === 2 && status.cluster?.status === 'ready' ? peers.sort() : undefined;
  };
  const peers = (await Promise.all(
    pair.map((am, i) => eventually(() => peersOf(am), `Alertmanager ${i + 1} to see both cluster peers`, 20_000)),
  )) as [string[], string[]];
  return { pair, clusterAddresses: [...addresses].sort(), peers };
}
