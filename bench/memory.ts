/**
 * Scenario 6: memory under an alert storm, over HTTP, against the served Kube Sentinel (Redis,
 * --kubeconfig to the fake API, every alert a new workload so each is claimed, submitted and
 * recorded: the heaviest path). Two figures, each from a fresh server, as its peak resident set
 * (VmHWM from /proc, so no sample can miss the peak):
 *
 * - one webhook group of 10,000 crash-looping alerts;
 * - 40 such groups POSTed at once, each answered 200 (every alert decided) or 503 with
 *   Retry-After (nothing done, Alertmanager redelivers); none may be dropped or reset.
 *
 * A 10,000-alert group is 7.8 MB of JSON: past the default --body-limit (1 MiB, about 1,300 such
 * alerts), so the server runs with --body-limit 16777216, as a user with groups this big must.
 *
 *   npm run bench -- --only memory     # this scenario alone
 *   npx tsx bench/memory.ts [alerts] [groups at once] [serve flags...]   # ad hoc
 */
import { request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { NAMESPACES, remediableAlert, webhookBody } from './alerts.js';
import { type Server, startKubeSentinel } from './children.js';
import { round, thousands } from './stats.js';

export const STORM_ALERTS = 10_000;
export const STORM_GROUPS_AT_ONCE = 40;
/** 16 MiB: a 10,000-alert group of the bench's alerts is 7.8 MB. */
export const STORM_BODY_LIMIT = 16 * 1024 * 1024;

export interface MemoryEnv {
  rules: string;
  redisUrl: string;
  kubeconfig: string;
  /** Workflows the fake API created so far. */
  created(): Promise<number>;
}

export interface StormRun {
  groups: number;
  alertsPerGroup: number;
  /** Resident set before the first request, MB. */
  rssBeforeMb: number;
  /** Peak resident set over the whole run (VmHWM), MB. */
  peakRssMb: number;
  seconds: number;
  /** Answers by status ("200", "503", ...); "error" for a connection that failed (reset, closed early). */
  statuses: Record<string, number>;
  /** The outcomes of the alerts answered with decisions (200, or 503 when some decision is retry). */
  outcomes: Record<string, number>;
  /** Answers whose decisions did not number the group's alerts. */
  incompleteAnswers: number;
  /** 503 answers without a Retry-After header. */
  withoutRetryAfter: number;
  workflowsCreated: number;
}

interface Answer {
  status: number;
  retryAfter: string | undefined;
  body: string;
}

/** One POST over its own connection; an error (reset, closed before the answer) resolves as status 0. */
function postBody(url: string, body: string): Promise<Answer> {
  return new Promise((resolve) => {
    const req = request(url, {
      method: 'POST',
      agent: false,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    });
    req.once('error', (err) => resolve({ status: 0, retryAfter: undefined, body: String(err) }));
    req.once('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.once('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          retryAfter: res.headers['retry-after'],
          body: Buffer.concat(chunks).toString('utf8'),
        }),
      );
      res.once('error', (err) => resolve({ status: 0, retryAfter: undefined, body: String(err) }));
    });
    req.end(body);
  });
}

function peakRssMbOf(pid: number): { rssMb: number; peakMb: number } {
  const status = readStatus(pid);
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
  return { rssMb: kb('VmRSS') / 1024, peakMb: kb('VmHWM') / 1024 };
}

let readStatus = (pid: number): string => {
  throw new Error(`no /proc reader for ${pid}`);
};

let groupCounter = 0;

/** `groups` webhook groups of `alerts` new crash-looping alerts each, POSTed at once to a fresh server. */
export async function stormRun(
  env: MemoryEnv,
  groups: number,
  alerts: number,
  extraFlags: string[] = [],
): Promise<StormRun> {
  const { readFileSync } = await import('node:fs');
  readStatus = (pid) => readFileSync(`/proc/${pid}/status`, 'utf8');
  const bodies = Array.from({ length: groups }, () => {
    const tag = `storm${(groupCounter++).toString(36)}`;
    // Crash loops (kind 0) of workloads never seen: each alert its own cooldown key.
    return webhookBody(
      Array.from({ length: alerts }, (_, i) =>
        remediableAlert(NAMESPACES[i % NAMESPACES.length]!, `${tag}-${i}`, i, 0),
      ),
    );
  });
  const server: Server = await startKubeSentinel([
    '--rules',
    env.rules,
    '--redis-url',
    env.redisUrl,
    '--kubeconfig',
    env.kubeconfig,
    '--max-workflows-per-minute',
    '0',
    '--body-limit',
    String(STORM_BODY_LIMIT),
    ...extraFlags,
  ]);
  try {
    const createdBefore = await env.created();
    const rssBeforeMb = peakRssMbOf(server.pid).rssMb;
    const started = performance.now();
    const answers = await Promise.all(bodies.map((body) => postBody(`${server.url}/webhook/alertmanager`, body)));
    const seconds = (performance.now() - started) / 1000;
    const { peakMb } = peakRssMbOf(server.pid);
    const run: StormRun = {
      groups,
      alertsPerGroup: alerts,
      rssBeforeMb: round(rssBeforeMb, 1),
      peakRssMb: round(peakMb, 1),
      seconds: round(seconds, 1),
      statuses: {},
      outcomes: {},
      incompleteAnswers: 0,
      withoutRetryAfter: 0,
      workflowsCreated: 0,
    };
    for (const answer of answers) {
      const key = answer.status === 0 ? `error ${answer.body.slice(0, 60)}` : String(answer.status);
      run.statuses[key] = (run.statuses[key] ?? 0) + 1;
      if (answer.status === 503 && answer.retryAfter === undefined) run.withoutRetryAfter++;
      if (answer.status !== 200 && answer.status !== 503) continue;
      // A 503 refused at admission carries an error, not decisions: nothing was done.
      const { decisions } = JSON.parse(answer.body) as { decisions?: { outcome: string }[] };
      if (decisions === undefined) continue;
      if (decisions.length !== alerts) run.incompleteAnswers++;
      for (const d of decisions) run.outcomes[d.outcome] = (run.outcomes[d.outcome] ?? 0) + 1;
    }
    run.workflowsCreated = (await env.created()) - createdBefore;
    return run;
  } finally {
    await server.stop();
  }
}

export interface MemoryReport {
  one: StormRun;
  many: StormRun;
}

export async function memoryScenario(env: MemoryEnv, log: (line: string) => void): Promise<MemoryReport> {
  log(`6 memory: one webhook of ${thousands(STORM_ALERTS)} alerts`);
  const one = await stormRun(env, 1, STORM_ALERTS);
  log(`  peak RSS ${one.peakRssMb} MB, ${JSON.stringify(one.statuses)} in ${one.seconds} s`);
  log(`6 memory: ${STORM_GROUPS_AT_ONCE} webhooks of ${thousands(STORM_ALERTS)} alerts at once`);
  const many = await stormRun(env, STORM_GROUPS_AT_ONCE, STORM_ALERTS);
  log(`  peak RSS ${many.peakRssMb} MB, ${JSON.stringify(many.statuses)} in ${many.seconds} s`);
  return { one, many };
}

/** Every answer 200 (complete) or 503 with Retry-After; the Workflows created are those the 200s report. */
export function stormProblems(run: StormRun): string[] {
  const problems: string[] = [];
  const other = Object.entries(run.statuses).filter(([status]) => status !== '200' && status !== '503');
  if (other.length > 0) problems.push(`answers other than 200/503: ${JSON.stringify(Object.fromEntries(other))}`);
  if (run.incompleteAnswers > 0) problems.push(`${run.incompleteAnswers} 200 answers without every decision`);
  if (run.withoutRetryAfter > 0) problems.push(`${run.withoutRetryAfter} 503 answers without Retry-After`);
  if ((run.statuses['200'] ?? 0) === 0) problems.push('no group was accepted');
  if (run.workflowsCreated !== (run.outcomes.submitted ?? 0))
    problems.push(`${run.workflowsCreated} Workflows created for ${run.outcomes.submitted ?? 0} submitted decisions`);
  return problems;
}

/** The scenario's rows for the bench table. */
export function memoryRows(report: MemoryReport): string[][] {
  const { one, many } = report;
  const answered = (run: StormRun) =>
    Object.entries(run.statuses)
      .map(([status, n]) => `${n}× ${status}`)
      .join(', ');
  const manyOk = stormProblems(many).length === 0 && many.peakRssMb <= 256;
  return [
    [
      '6',
      `peak RSS, one webhook of ${thousands(one.alertsPerGroup)} new alerts (claimed, submitted, recorded)`,
      `${one.rssBeforeMb} → ${one.peakRssMb} MB (${answered(one)}, ${one.seconds} s)`,
      '',
      '',
      '< 128 MB',
      one.peakRssMb < 128 && stormProblems(one).length === 0 ? 'yes' : 'no',
    ],
    [
      '6',
      `peak RSS, ${many.groups} such webhooks at once`,
      `${many.rssBeforeMb} → ${many.peakRssMb} MB (${answered(many)}, ${many.seconds} s)`,
      '',
      '',
      '≤ 256 MB, every answer 200 or 503',
      manyOk ? 'yes' : 'no',
    ],
  ];
}

// Ad hoc: npx tsx bench/memory.ts [alerts] [groups] [serve flags...]
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { mkdtempSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { writeKubeconfig } = await import('../test/support/kubeconfig.js');
  const { startRedis } = await import('../test/support/redis-server.js');
  const { REPO_ROOT, startFakeKubeProcess } = await import('./children.js');
  const [alerts = String(STORM_ALERTS), groups = '1', ...flags] = process.argv.slice(2);
  const redis = await startRedis();
  const fakeKube = await startFakeKubeProcess(
    ['diagnose-and-recover', 'diagnose-memory', 'network-diagnostics', 'check-image-registry', 'diagnose-pod'].map(
      (name) => `argo/${name}`,
    ),
  );
  const kubeconfig = writeKubeconfig(mkdtempSync(join(tmpdir(), 'ks-bench-kube-')), fakeKube.url);
  const run = await stormRun(
    { rules: join(REPO_ROOT, 'rules/default.yaml'), redisUrl: redis.url, kubeconfig, created: fakeKube.created },
    Number(groups),
    Number(alerts),
    flags,
  );
  process.stdout.write(`${JSON.stringify({ ...run, problems: stormProblems(run) })}\n`);
  await Promise.all([fakeKube.stop(), redis.stop()]);
  process.exit(0);
}
