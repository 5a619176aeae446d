/**
 * `npm run bench`: every scenario of bench/README.md, each against a baseline measured in the same
 * invocation, on loopback, with the load generator in a process of its own. Prints a table and
 * writes bench/results/latest.json (and latest.md, the table as Markdown).
 *
 *   npm run bench                  # about 7 minutes on 2 cores
 *   BENCH_QUICK=1 npm run bench    # about 1 minute: a smoke run, numbers only indicative
 *   npm run bench -- --only memory # scenario 6 alone (memory under an alert storm), about a minute
 *   npm run bench -- --only cold   # scenario 5a alone (cold start), about a minute
 *
 * See bench/README.md for what each scenario measures.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSync } from 'esbuild';
import { parse } from 'yaml';
import { nodeBundleOptions } from '../scripts/bundle-options.mjs';
import { writeKubeconfig } from '../test/support/kubeconfig.js';
import { startRedis } from '../test/support/redis-server.js';
import { startRedisCluster } from '../test/support/redis-topology.js';
import { alertSet, chunks, newAlert, postableBody, remediableAlert, unmatchedAlert, webhookBody } from './alerts.js';
import {
  BASELINE_BUNDLE_JS,
  BASELINE_JS,
  BUILD_DIR,
  CLI,
  coldStart,
  get,
  type LoadGenerator,
  post,
  REPO_ROOT,
  rssMbOf,
  type Server,
  startAlertmanager,
  startBaseline,
  startFakeKubeProcess,
  startKubeSentinel,
  startLoadGenerator,
} from './children.js';
import type { LatencyReport, LatencyRow } from './decide-latency.js';
import type { Stream } from './loadgen.js';
import { type MemoryEnv, memoryRows, memoryScenario } from './memory.js';
import type { RssReport } from './rss.js';
import { median, percent, round, table, thousands } from './stats.js';

const QUICK = process.env.BENCH_QUICK === '1';
/** `--only memory`: scenario 6 alone (the others take minutes). */
const ONLY = (() => {
  const i = process.argv.indexOf('--only');
  return i >= 0 ? process.argv[i + 1] : process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length);
})();
if (ONLY !== undefined && ONLY !== 'memory' && ONLY !== 'cold')
  throw new Error(`--only: "memory" (scenario 6) or "cold" (scenario 5a) run alone, got ${ONLY}`);
const BUNDLED_BASELINE = 'bare fastify, bundled like kube-sentinel';
const PLAN = QUICK
  ? {
      warmupSeconds: 1,
      seconds: 1,
      runs: 1,
      connections: 10,
      latency: { warmup: 500, samples: 1000, runs: 1 },
      coldStartRuns: 2,
      rssAlerts: 100_000,
    }
  : {
      warmupSeconds: 3,
      seconds: 5,
      runs: 3,
      connections: 10,
      latency: { warmup: 3000, samples: 5000, runs: 3 },
      coldStartRuns: 7,
      rssAlerts: 1_000_000,
    };

const DEFAULT_RULES = join(REPO_ROOT, 'rules/default.yaml');
const RESULTS_DIR = join(REPO_ROOT, 'bench/results');
const RULE_COUNTS = [10, 100, 1000];
/** The alert set of the cooldown and no-match streams: 20 workloads in 5 namespaces, 5 pods each. */
const ALERTS_IN_STREAM = 100;

const log = (line: string) => process.stderr.write(`${line}\n`);

// ---------------------------------------------------------------------------------------------
// Throughput

interface Measured {
  server: string;
  /** Median over runs. */
  alertsPerSec: number;
  runs: number[];
  non2xx: number;
  errors: number;
  latencyP99Ms: number;
}

interface Comparison {
  scenario: string;
  label: string;
  alertsPerBody: number;
  subject: Measured;
  baseline: Measured;
  ratio: number;
  goal: string;
  met: boolean;
  /** Submit path: Workflows the fake API stored during the subject's runs, against its 2xx alerts. */
  workflowsCreated?: number;
  alertsAnswered2xx: number;
  /** Every alert the subject answered 2xx, warm-up included. */
  subjectAlertsWithWarmup: number;
}

interface PairSpec {
  scenario: string;
  label: string;
  alertsPerBody: number;
  subject: Server;
  baseline: Server;
  stream: () => Stream;
  goalRatio: number;
  goal: string;
}

interface SubjectHooks {
  before(): Promise<void>;
  after(): Promise<void>;
}

async function comparePair(loadgen: LoadGenerator, spec: PairSpec, hooks?: SubjectHooks): Promise<Comparison> {
  let subjectAlerts = 0;
  const measure = async (server: Server, seconds: number) => {
    const result = await loadgen.run(server.url, spec.stream(), seconds, PLAN.connections);
    if (server === spec.subject) subjectAlerts += result.ok2xx * spec.alertsPerBody;
    return { ...result, alertsPerSec: (result.ok2xx * spec.alertsPerBody) / result.seconds };
  };
  log(`  ${spec.scenario} ${spec.label}: warm-up`);
  await measure(spec.subject, PLAN.warmupSeconds);
  await measure(spec.baseline, PLAN.warmupSeconds);
  const runs = {
    subject: [] as Awaited<ReturnType<typeof measure>>[],
    baseline: [] as Awaited<ReturnType<typeof measure>>[],
  };
  for (let r = 0; r < PLAN.runs; r++) {
    // Alternating the order cancels slow drift (thermal, page cache) between the two.
    const order = r % 2 === 0 ? (['baseline', 'subject'] as const) : (['subject', 'baseline'] as const);
    for (const which of order) {
      if (which === 'subject') await hooks?.before();
      const result = await measure(spec[which], PLAN.seconds);
      runs[which].push(result);
      if (which === 'subject') await hooks?.after();
      log(
        `  ${spec.scenario} ${spec.label}: ${spec[which].name} ${thousands(result.alertsPerSec)} alerts/s` +
          (result.non2xx || result.errors
            ? ` (${result.non2xx} non-2xx ${JSON.stringify(result.statusCodes)}, ${result.errors} errors)`
            : ''),
      );
    }
  }
  const summarize = (server: Server, list: (typeof runs)['subject']): Measured => ({
    server: server.name,
    alertsPerSec: median(list.map((r) => r.alertsPerSec)),
    runs: list.map((r) => round(r.alertsPerSec, 0)),
    non2xx: list.reduce((sum, r) => sum + r.non2xx, 0),
    errors: list.reduce((sum, r) => sum + r.errors + r.timeouts, 0),
    latencyP99Ms: median(list.map((r) => r.latencyP99Ms)),
  });
  const subject = summarize(spec.subject, runs.subject);
  const baseline = summarize(spec.baseline, runs.baseline);
  const ratio = subject.alertsPerSec / baseline.alertsPerSec;
  return {
    scenario: spec.scenario,
    label: spec.label,
    alertsPerBody: spec.alertsPerBody,
    subject,
    baseline,
    ratio,
    goal: spec.goal,
    met: ratio >= spec.goalRatio,
    alertsAnswered2xx: runs.subject.reduce((sum, r) => sum + r.ok2xx * spec.alertsPerBody, 0),
    subjectAlertsWithWarmup: subjectAlerts,
  };
}

interface DecisionsBody {
  decisions: { outcome: string; rule: string | null; reason?: string }[];
}

/** Sends each body and checks every decision's outcome is one of `expected`. */
async function expectOutcomes(url: string, bodies: string[], expected: string[], why: string): Promise<void> {
  for (const body of bodies) {
    const answer = await post(url, body);
    if (answer.status !== 200)
      throw new Error(`${why}: ${url} answered ${answer.status}: ${answer.body.slice(0, 500)}`);
    const { decisions } = JSON.parse(answer.body) as DecisionsBody;
    const wrong = decisions.find((d) => !expected.includes(d.outcome));
    if (wrong) throw new Error(`${why}: expected ${expected.join(' or ')}, got ${JSON.stringify(wrong)}`);
  }
}

async function expectOk(url: string, bodies: string[], why: string): Promise<void> {
  for (const body of bodies) {
    const answer = await post(url, body);
    if (answer.status !== 200)
      throw new Error(`${why}: ${url} answered ${answer.status}: ${answer.body.slice(0, 500)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Children that print one JSON line

function jsonChild<T>(args: string[]): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn('node', args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.once('exit', (code) => {
      const last = out.trim().split('\n').pop() ?? '';
      if (code !== 0) return reject(new Error(`node ${args.join(' ')} exited ${code}:\n${out}`));
      try {
        resolve(JSON.parse(last) as T);
      } catch {
        reject(new Error(`node ${args.join(' ')} printed no JSON:\n${out}`));
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------

function machine() {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const version = (command: string, args: string[]) => {
    try {
      return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
        .split('\n')[0]!
        .trim();
    } catch {
      return 'not installed';
    }
  };
  return {
    nproc: availableParallelism(),
    cpu: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? 'unknown',
    node: process.version,
    redis: version('redis-server', ['--version']),
    alertmanager: version('prometheus-alertmanager', ['--version']),
    date: new Date().toISOString(),
    /** Other work on the machine skews every number (the ratios less, their two sides being measured alternately). */
    loadAverageAtStart: loadavg().map((l) => round(l, 2)),
    quick: QUICK,
  };
}

function build(): void {
  log('building: npm run build, and bench/baseline-server.ts to JavaScript (plain, and bundled for information)');
  execFileSync('npm', ['run', 'build'], { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  mkdirSync(BUILD_DIR, { recursive: true });
  execFileSync(
    join(REPO_ROOT, 'node_modules/.bin/tsc'),
    [
      '--ignoreConfig',
      'bench/baseline-server.ts',
      '--outDir',
      BUILD_DIR,
      '--rootDir',
      'bench',
      '--module',
      'nodenext',
      '--moduleResolution',
      'nodenext',
      '--target',
      'es2022',
      '--strict',
      '--skipLibCheck',
      '--types',
      'node',
    ],
    { cwd: REPO_ROOT, stdio: ['ignore', 'inherit', 'inherit'] },
  );
  // Kube Sentinel ships as an esbuild bundle (scripts/build.mjs); the baseline stays fastify as
  // its users run it. The same baseline bundled the same way is timed too, for information, so
  // the table shows how much of the cold-start ratio the bundling accounts for.
  buildSync({ ...nodeBundleOptions, entryPoints: [BASELINE_JS], outfile: BASELINE_BUNDLE_JS });
}

/** The WorkflowTemplates the default rules reference, as namespace/name (the default workflow namespace). */
function templatesOfDefaultRules(): string[] {
  const file = parse(readFileSync(DEFAULT_RULES, 'utf8')) as {
    rules: { remediation: { params: { workflow_template?: string; namespace?: string } } }[];
  };
  const refs = file.rules.flatMap((r) =>
    r.remediation.params.workflow_template
      ? [`${r.remediation.params.namespace ?? 'argo'}/${r.remediation.params.workflow_template}`]
      : [],
  );
  return [...new Set(refs)];
}

function memoryEnv(redisUrl: string, kubeconfig: string, fakeKube: { created(): Promise<number> }): MemoryEnv {
  return { rules: DEFAULT_RULES, redisUrl, kubeconfig, created: () => fakeKube.created() };
}

/** `--only memory`: builds, runs scenario 6 against its own Redis and fake API, writes bench/results/memory.{json,md}. */
async function memoryOnly(): Promise<void> {
  const started = Date.now();
  const host = machine();
  log(`kube-sentinel bench, scenario 6 only: ${host.nproc} × ${host.cpu}, node ${host.node}`);
  log('building: npm run build');
  execFileSync('npm', ['run', 'build'], { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  const redis = await startRedis();
  const fakeKube = await startFakeKubeProcess(templatesOfDefaultRules());
  const kubeconfig = writeKubeconfig(mkdtempSync(join(tmpdir(), 'ks-bench-kube-')), fakeKube.url);
  const memory = await memoryScenario(memoryEnv(redis.url, kubeconfig, fakeKube), log);
  await Promise.all([fakeKube.stop(), redis.stop()]);
  const rendered = table([
    ['#', 'measure', 'Kube Sentinel', 'baseline', 'ratio', 'goal', 'met'],
    ...memoryRows(memory),
  ]);
  const header = `${host.nproc} × ${host.cpu}, node ${host.node}; ${host.date}, load average ${host.loadAverageAtStart[0]} at start, ${round(loadavg()[0] ?? 0, 2)} at end`;
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(join(RESULTS_DIR, 'memory.json'), `${JSON.stringify({ machine: host, memory }, null, 2)}\n`);
  writeFileSync(join(RESULTS_DIR, 'memory.md'), `${header}\n\n${rendered}\n`);
  process.stdout.write(
    `\n${header}\n\n${rendered}\n\nwritten: bench/results/memory.json, bench/results/memory.md (${Math.round((Date.now() - started) / 1000)} s)\n`,
  );
}

/** Scenario 5a: spawn → first alert decided, for the baselines and Kube Sentinel (median of the timed runs). */
async function coldStartScenario(redisUrl: string, kubeconfig: string) {
  log('5 cold start: spawn → first alert decided');
  const coldAlert = webhookBody([remediableAlert('shop', 'checkout', 1, 0)]);
  const listening = /"url":"(http:\/\/[^"]+)".*"msg":"kube-sentinel listening"/;
  const variants = [
    {
      name: 'bare fastify',
      argv: [BASELINE_JS],
      listening: /"url":"(http:\/\/[^"]+)"/,
      body: () => coldAlert,
      expect: null as string | null,
    },
    {
      name: BUNDLED_BASELINE,
      argv: [BASELINE_BUNDLE_JS],
      listening: /"url":"(http:\/\/[^"]+)"/,
      body: () => coldAlert,
      expect: null as string | null,
    },
    {
      name: 'kube-sentinel (dry-run, in-memory store)',
      argv: [CLI, 'serve', '--host', '127.0.0.1', '--port', '0', '--rules', DEFAULT_RULES, '--dry-run'],
      listening,
      body: () => coldAlert,
      expect: 'dry_run',
    },
    {
      name: 'kube-sentinel (Redis + kubeconfig, submits)',
      argv: [
        CLI,
        'serve',
        '--host',
        '127.0.0.1',
        '--port',
        '0',
        '--rules',
        DEFAULT_RULES,
        '--redis-url',
        redisUrl,
        '--kubeconfig',
        kubeconfig,
      ],
      listening,
      body: (() => {
        let n = 0;
        return () => webhookBody([newAlert('cold', n++)]);
      })(),
      expect: 'submitted',
    },
  ];
  const coldRuns = variants.map(() => [] as { ms: number; rssMb: number }[]);
  // One untimed round first: the page cache holds node and node_modules for every timed one.
  for (let round = -1; round < PLAN.coldStartRuns; round++) {
    for (const [i, variant] of variants.entries()) {
      const result = await coldStart(variant.argv, variant.listening, '/webhook/alertmanager', variant.body());
      if (result.answer.status !== 200)
        throw new Error(`cold start of ${variant.name}: ${result.answer.status} ${result.answer.body}`);
      if (variant.expect) {
        const outcome = (JSON.parse(result.answer.body) as DecisionsBody).decisions[0]?.outcome;
        if (outcome !== variant.expect)
          throw new Error(`cold start of ${variant.name}: expected ${variant.expect}, got ${result.answer.body}`);
      }
      if (round >= 0) coldRuns[i]!.push({ ms: result.ms, rssMb: result.rssMb });
    }
  }
  const coldStarts = variants.map((variant, i) => ({
    name: variant.name,
    ms: median(coldRuns[i]!.map((r) => r.ms)),
    runsMs: coldRuns[i]!.map((r) => round(r.ms, 1)),
    rssAfterFirstAlertMb: median(coldRuns[i]!.map((r) => r.rssMb)),
  }));
  for (const c of coldStarts) log(`  ${c.name}: ${round(c.ms, 1)} ms, RSS ${round(c.rssAfterFirstAlertMb, 1)} MB`);

  return coldStarts;
}

/** `--only cold`: scenario 5a alone, against its own Redis and fake API; writes bench/results/cold.{json,md}. */
async function coldOnly(): Promise<void> {
  const started = Date.now();
  const host = machine();
  log(`kube-sentinel bench, scenario 5a only: ${host.nproc} × ${host.cpu}, node ${host.node}`);
  build();
  const redis = await startRedis();
  const fakeKube = await startFakeKubeProcess(templatesOfDefaultRules());
  const kubeconfig = writeKubeconfig(mkdtempSync(join(tmpdir(), 'ks-bench-kube-')), fakeKube.url);
  const coldStarts = await coldStartScenario(redis.url, kubeconfig);
  await Promise.all([fakeKube.stop(), redis.stop()]);
  const bare = coldStarts[0]!;
  const rendered = table([
    ['#', 'measure', 'Kube Sentinel', 'baseline', 'ratio', 'goal', 'met'],
    ...coldStarts
      .slice(1)
      .map((c) => [
        '5a',
        `cold start: ${c.name}`,
        `${round(c.ms, 1)} ms`,
        `${round(bare.ms, 1)} ms`,
        `${round(c.ms / bare.ms, 2)}×`,
        '≤ 1.5×',
        c.ms / bare.ms <= 1.5 ? 'yes' : 'no',
      ]),
  ]);
  const header = `${host.nproc} × ${host.cpu}, node ${host.node}; ${host.date}`;
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(join(RESULTS_DIR, 'cold.json'), `${JSON.stringify({ machine: host, coldStarts }, null, 2)}\n`);
  writeFileSync(join(RESULTS_DIR, 'cold.md'), `${header}\n\n${rendered}\n`);
  process.stdout.write(`\n${header}\n\n${rendered}\n\n(${Math.round((Date.now() - started) / 1000)} s)\n`);
}

async function main(): Promise<void> {
  if (ONLY === 'memory') return memoryOnly();
  if (ONLY === 'cold') return coldOnly();
  const started = Date.now();
  const host = machine();
  log(
    `kube-sentinel bench${QUICK ? ' (BENCH_QUICK=1: smoke run, numbers only indicative)' : ''}: ${host.nproc} × ${host.cpu}, node ${host.node}`,
  );
  build();

  const redis = await startRedis();
  const fakeKube = await startFakeKubeProcess(templatesOfDefaultRules());
  const kubeconfig = writeKubeconfig(mkdtempSync(join(tmpdir(), 'ks-bench-kube-')), fakeKube.url);

  // --- Scenario 5a: cold start, first, on an otherwise idle machine.
  const coldStarts = await coldStartScenario(redis.url, kubeconfig);

  // --- Scenarios 1–3: throughput over HTTP.
  const loadgen = startLoadGenerator();
  const baseline = await startBaseline();
  const sentinel = await startKubeSentinel([
    '--rules',
    DEFAULT_RULES,
    '--redis-url',
    redis.url,
    '--kubeconfig',
    kubeconfig,
    '--max-workflows-per-minute',
    '0',
  ]);
  // RSS alone says little under load (V8 keeps what it once needed); the heap V8 reports via
  // /metrics, read after every comparison, shows whether anything piles up with the alert count.
  const servedMemory: { alerts: number; rssMb: number; heapUsedMb: number }[] = [];
  const checkpointServed = async () => {
    const metrics = await get(`${sentinel.url}/metrics`);
    const heapBytes = Number(/^nodejs_heap_size_used_bytes (\S+)$/m.exec(metrics.body)?.[1] ?? Number.NaN);
    const alerts = comparisons.reduce((sum, c) => sum + c.subjectAlertsWithWarmup, 0);
    servedMemory.push({ alerts, rssMb: round(rssMbOf(sentinel.pid), 1), heapUsedMb: round(heapBytes / 2 ** 20, 1) });
  };
  const alertmanager = await startAlertmanager();
  const endsAt = new Date(Date.now() + 6 * 3600_000).toISOString();

  const remediable = alertSet(ALERTS_IN_STREAM, remediableAlert);
  const unmatched = alertSet(ALERTS_IN_STREAM, unmatchedAlert);
  const bodies = (alerts: typeof remediable, size: number, shape: 'webhook' | 'v2') =>
    chunks(alerts, size).map((group) => (shape === 'webhook' ? webhookBody(group) : postableBody(group, endsAt)));

  const webhookPath = '/webhook/alertmanager';
  const v2Path = '/api/v2/alerts';
  const comparisons: Comparison[] = [];
  await checkpointServed();

  log('1 cooldown path: priming one claim per cooldown key');
  await expectOutcomes(
    sentinel.url + webhookPath,
    bodies(remediable, 1, 'webhook'),
    ['submitted', 'cooldown'],
    'priming the cooldowns',
  );
  for (const size of [1, 20]) {
    const sent = bodies(remediable, size, 'webhook');
    await expectOutcomes(sentinel.url + webhookPath, sent, ['cooldown'], 'cooldown stream');
    comparisons.push(
      await comparePair(loadgen, {
        scenario: '1',
        label: `cooldown path, webhook, ${size} alert${size > 1 ? 's' : ''}/request`,
        alertsPerBody: size,
        subject: sentinel,
        baseline,
        stream: () => ({ kind: 'fixed', path: webhookPath, bodies: sent }),
        goalRatio: 0.6,
        goal: '≥ 60% of bare fastify',
      }),
    );
    await checkpointServed();
  }

  log('2 submit path: every alert new, submitted to the fake Kubernetes API');
  let tagCounter = 0;
  for (const size of [1, 20]) {
    await expectOutcomes(
      sentinel.url + webhookPath,
      [webhookBody(Array.from({ length: size }, (_, i) => newAlert(`check${size}`, i)))],
      ['submitted'],
      'submit stream',
    );
    let created = 0;
    let before = 0;
    const comparison = await comparePair(
      loadgen,
      {
        scenario: '2',
        label: `submit path, webhook, ${size} new alert${size > 1 ? 's' : ''}/request`,
        alertsPerBody: size,
        subject: sentinel,
        baseline,
        stream: () => ({
          kind: 'new-alerts',
          path: webhookPath,
          shape: 'webhook',
          alertsPerBody: size,
          tag: `t${(tagCounter++).toString(36)}`,
          endsAt,
        }),
        goalRatio: 0.3,
        goal: '≥ 30% of bare fastify',
      },
      {
        before: async () => {
          before = await fakeKube.created();
        },
        after: async () => {
          created += (await fakeKube.created()) - before;
        },
      },
    );
    comparison.workflowsCreated = created;
    comparisons.push(comparison);
    await checkpointServed();
  }

  log('3 /api/v2/alerts against Alertmanager');
  await expectOutcomes(sentinel.url + v2Path, bodies(remediable, 20, 'v2'), ['cooldown'], 'v2 cooldown stream');
  await expectOutcomes(sentinel.url + v2Path, bodies(unmatched, 20, 'v2'), ['no_match'], 'v2 no-match stream');
  for (const [path, alerts] of [
    ['cooldown', remediable],
    ['no-match', unmatched],
  ] as const) {
    for (const size of [1, 20]) {
      const sent = bodies(alerts, size, 'v2');
      await expectOk(alertmanager.url + v2Path, sent, 'Alertmanager');
      comparisons.push(
        await comparePair(loadgen, {
          scenario: '3',
          label: `/api/v2/alerts, ${path} path, ${size} alert${size > 1 ? 's' : ''}/request`,
          alertsPerBody: size,
          subject: sentinel,
          baseline: alertmanager,
          stream: () => ({ kind: 'fixed', path: v2Path, bodies: sent }),
          goalRatio: 1,
          goal: `≥ ${alertmanager.name}`,
        }),
      );
      await checkpointServed();
    }
  }
  // --- Scenarios 1 and 3 again, on a six-node Redis Cluster (SPEC §10): a second receiver.
  log('1 and 3 on a Redis Cluster');
  const redisCluster = await startRedisCluster();
  const onCluster = await startKubeSentinel([
    '--rules',
    DEFAULT_RULES,
    '--redis-cluster-nodes',
    redisCluster.nodes.map((node) => `${node.host}:${node.port}`).join(','),
    '--kubeconfig',
    kubeconfig,
    '--max-workflows-per-minute',
    '0',
  ]);
  await expectOutcomes(
    onCluster.url + webhookPath,
    bodies(remediable, 1, 'webhook'),
    ['submitted', 'cooldown'],
    'priming the cooldowns on the cluster',
  );
  for (const [scenario, path, shape, baselineServer] of [
    ['1', webhookPath, 'webhook', baseline],
    ['3', v2Path, 'v2', alertmanager],
  ] as const) {
    for (const size of [1, 20]) {
      const sent = bodies(remediable, size, shape);
      await expectOutcomes(onCluster.url + path, sent, ['cooldown'], 'cooldown stream on the cluster');
      if (baselineServer === alertmanager) await expectOk(alertmanager.url + v2Path, sent, 'Alertmanager');
      comparisons.push(
        await comparePair(loadgen, {
          scenario,
          label: `${scenario === '1' ? 'cooldown path, webhook' : '/api/v2/alerts, cooldown path'}, ${size} alert${size > 1 ? 's' : ''}/request, Redis Cluster`,
          alertsPerBody: size,
          subject: onCluster,
          baseline: baselineServer,
          stream: () => ({ kind: 'fixed', path, bodies: sent }),
          goalRatio: scenario === '1' ? 0.6 : 1,
          goal: scenario === '1' ? '≥ 60% of bare fastify' : `≥ ${alertmanager.name}`,
        }),
      );
    }
  }
  await onCluster.stop();
  await redisCluster.stop();

  const servedFirst = servedMemory[0]!;
  const servedLast = servedMemory.at(-1)!;

  // --- Scenario 6: memory under an alert storm, fresh servers on the same Redis and fake API.
  await loadgen.stop();
  const memory = await memoryScenario(memoryEnv(redis.url, kubeconfig, fakeKube), log);

  await Promise.all([baseline.stop(), sentinel.stop(), alertmanager.stop(), fakeKube.stop(), redis.stop()]);

  // --- Scenario 4: decision latency in process.
  log('4 decision latency, in process');
  const latency = await jsonChild<LatencyReport>([
    '--import',
    'tsx',
    'bench/decide-latency.ts',
    JSON.stringify({ ruleCounts: RULE_COUNTS, ...PLAN.latency }),
  ]);
  const at = (n: number): LatencyRow => latency.rows.find((r) => r.rules === n)!;
  const growth = at(1000).matchP50Us / at(10).matchP50Us;
  // cost ∝ rules^k: k < 1 is sub-linear.
  const exponent = Math.log(growth) / Math.log(1000 / 10);

  // --- Scenario 5b: RSS over 1M alerts in process.
  log(`5 RSS over ${thousands(PLAN.rssAlerts)} alerts, in process`);
  const rss = await jsonChild<RssReport>(['--expose-gc', '--import', 'tsx', 'bench/rss.ts', String(PLAN.rssAlerts)]);
  const firstCheckpoint = rss.checkpoints[0]!;
  const lastCheckpoint = rss.checkpoints.at(-1)!;

  const bare = coldStarts[0]!;
  const results = {
    machine: host,
    plan: PLAN,
    throughput: comparisons,
    latency: {
      rows: latency.rows,
      growthP50: growth,
      exponent,
      goal: 'p99 ≤ 1000 µs at 1,000 rules; growth sub-linear (exponent < 1)',
      met: at(1000).matchP99Us <= 1000 && exponent < 1,
    },
    coldStart: {
      variants: coldStarts.map((c) => ({ ...c, ratio: c.ms / bare.ms })),
      goal: '≤ 1.5× bare fastify',
    },
    rss: {
      /** The served Kube Sentinel: at start, then after each throughput comparison (heap as V8 reports it, not after a GC). */
      served: servedMemory,
      inProcess: rss,
      inProcessGrowthMb: lastCheckpoint.rssMb - firstCheckpoint.rssMb,
      inProcessHeapGrowthMb: lastCheckpoint.heapUsedMb - firstCheckpoint.heapUsedMb,
    },
    memory,
    seconds: Math.round((Date.now() - started) / 1000),
    loadAverageAtEnd: loadavg().map((l) => round(l, 2)),
  };

  const rows: string[][] = [['#', 'measure', 'Kube Sentinel', 'baseline', 'ratio', 'goal', 'met']];
  for (const c of comparisons) {
    const flag =
      c.subject.non2xx || c.subject.errors ? ` (${c.subject.non2xx} non-2xx, ${c.subject.errors} errors)` : '';
    rows.push([
      c.scenario,
      c.label,
      `${thousands(c.subject.alertsPerSec)} alerts/s${flag}`,
      `${c.baseline.server}: ${thousands(c.baseline.alertsPerSec)} alerts/s`,
      percent(c.ratio),
      c.goal,
      c.met ? 'yes' : 'no',
    ]);
  }
  for (const row of latency.rows) {
    const isLast = row.rules === 1000;
    rows.push([
      '4',
      `decision latency, ${thousands(row.rules)} rules (match last / no match)`,
      `p50 ${round(row.matchP50Us, 1)} / ${round(row.noMatchP50Us, 1)} µs, p99 ${round(row.matchP99Us, 1)} / ${round(row.noMatchP99Us, 1)} µs`,
      '',
      '',
      isLast ? 'p99 ≤ 1000 µs' : '',
      isLast ? (row.matchP99Us <= 1000 ? 'yes' : 'no') : '',
    ]);
  }
  rows.push([
    '4',
    'latency growth, p50 1,000 rules ÷ 10 rules',
    `${round(growth, 2)}× (exponent ${round(exponent, 2)})`,
    '10 rules',
    '',
    'sub-linear (exponent < 1)',
    exponent < 1 ? 'yes' : 'no',
  ]);
  const bundledBaseline = results.coldStart.variants.find((c) => c.name === BUNDLED_BASELINE)!;
  const sentinels = results.coldStart.variants.filter((c) => c.name.startsWith('kube-sentinel'));
  for (const c of sentinels) {
    rows.push([
      '5',
      `cold start, ${c.name}`,
      `${round(c.ms, 1)} ms`,
      `bare fastify: ${round(bare.ms, 1)} ms`,
      `${round(c.ratio, 2)}×`,
      '≤ 1.5×',
      c.ratio <= 1.5 ? 'yes' : 'no',
    ]);
  }
  rows.push([
    '5',
    `cold start, ${BUNDLED_BASELINE} (information)`,
    `${round(bundledBaseline.ms, 1)} ms`,
    `bare fastify: ${round(bare.ms, 1)} ms`,
    `${round(bundledBaseline.ratio, 2)}×`,
    '',
    '',
  ]);
  for (const c of sentinels) {
    rows.push([
      '5',
      `cold start, ${c.name}, against the bundled baseline (information)`,
      `${round(c.ms, 1)} ms`,
      `bundled bare fastify: ${round(bundledBaseline.ms, 1)} ms`,
      `${round(c.ms / bundledBaseline.ms, 2)}×`,
      '',
      '',
    ]);
  }
  for (const c of sentinels) {
    rows.push([
      '5',
      `RSS after start + first alert, ${c.name}`,
      `${round(c.rssAfterFirstAlertMb, 1)} MB`,
      `bare fastify: ${round(bare.rssAfterFirstAlertMb, 1)} MB`,
      `${round(c.rssAfterFirstAlertMb / bare.rssAfterFirstAlertMb, 2)}×`,
      '',
      '',
    ]);
  }
  const rssGrowthPct = results.rss.inProcessGrowthMb / firstCheckpoint.rssMb;
  const heapGrowthPct = results.rss.inProcessHeapGrowthMb / firstCheckpoint.heapUsedMb;
  rows.push([
    '5',
    `RSS / heap after GC, ${thousands(PLAN.rssAlerts)} alerts in process`,
    `${round(firstCheckpoint.rssMb, 1)} → ${round(lastCheckpoint.rssMb, 1)} MB RSS, ${round(firstCheckpoint.heapUsedMb, 1)} → ${round(lastCheckpoint.heapUsedMb, 1)} MB heap`,
    'itself at start',
    `${percent(rssGrowthPct)} / ${percent(heapGrowthPct)} growth`,
    'flat (< 10% growth)',
    rssGrowthPct < 0.1 && heapGrowthPct < 0.1 ? 'yes' : 'no',
  ]);
  rows.push([
    '5',
    `served process, ${thousands(servedLast.alerts)} alerts over HTTP (heap without forced GC)`,
    `${servedFirst.rssMb} → ${servedLast.rssMb} MB RSS, ${servedFirst.heapUsedMb} → ${servedLast.heapUsedMb} MB heap (max ${Math.max(...servedMemory.map((m) => m.heapUsedMb))})`,
    'itself at start',
    `${round(servedLast.rssMb / servedFirst.rssMb, 2)}× RSS`,
    '',
    '',
  ]);

  rows.push(...memoryRows(memory));

  const rendered = table(rows);
  const header =
    `${host.nproc} × ${host.cpu}, node ${host.node}, ${host.redis.split(' ').slice(0, 3).join(' ')}, ${host.alertmanager.split('(')[0]!.trim()}; ` +
    `${host.date}, load average ${host.loadAverageAtStart[0]} at start, ${results.loadAverageAtEnd[0]} at end${QUICK ? ' (BENCH_QUICK=1)' : ''}`;
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(join(RESULTS_DIR, 'latest.json'), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(RESULTS_DIR, 'latest.md'), `${header}\n\n${rendered}\n`);
  process.stdout.write(
    `\n${header}\n\n${rendered}\n\nwritten: bench/results/latest.json, bench/results/latest.md (${results.seconds} s)\n`,
  );
}

await main();
// Every child was stopped; a handle some helper left referenced must not keep the bench alive.
process.exit(0);
