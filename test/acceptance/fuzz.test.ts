/**
 * Bad input: no body, however malformed, hostile or large, gets a 5xx, crashes the
 * process, hangs it, or makes its memory grow; and regexes built as ReDoS bait answer in time.
 *
 * The fuzz is deterministic for a seed. A run prints its seed; `FUZZ_SEED=<seed>` replays it, and
 * a failure names the body's own seed, which `generateBody` in test/support/fuzz.ts turns back
 * into the same bytes. `FUZZ_BODIES=<n>` raises the number of bodies per route (never below 10,000).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import { ALL_OUTCOMES, type Outcome } from '../../src/decision.js';
import { rulesFrom } from '../support/app.js';
import {
  bodySeed,
  type FuzzApp,
  type FuzzBody,
  fuzzApp,
  fuzzSeed,
  type GenerateOptions,
  generateBody,
  loadSeedBodies,
  type SeedBodies,
} from '../support/fuzz.js';

v8.setFlagsFromString('--expose-gc');
const collectGarbage = vm.runInNewContext('gc') as () => void;

/** Taken before any request: what Object.prototype and friends look like untouched. */
const PROTOTYPES = {
  Object: Object.prototype,
  Array: Array.prototype,
  Function: Function.prototype,
  String: String.prototype,
};
const pristine = snapshotPrototypes();

function snapshotPrototypes(): Record<string, string[]> {
  return Object.fromEntries(
    Object.entries(PROTOTYPES).map(([name, prototype]) => [
      name,
      Reflect.ownKeys(prototype)
        .map((key) => String(key))
        .sort(),
    ]),
  );
}

const ROUTES = [
  { url: '/webhook/alertmanager', accepts: 'webhook' },
  { url: '/api/v2/alerts', accepts: 'postable' },
  { url: '/v1/explain', accepts: 'either' },
] as const;

const BODIES_PER_ROUTE = Math.max(10_000, Number(process.env.FUZZ_BODIES ?? 0) || 0);
const WARM_UP_BODIES_PER_ROUTE = 300;
const ALLOWED_STATUSES = new Set([200, 400, 413, 415]);
const REQUEST_BOUND_MS = 2_000;
const HEAP_GROWTH_BOUND_BYTES = 30 * 1024 * 1024;
/**
 * The clock moves past the longest cooldown of TEST_RULES (10 min) every this many bodies: claims
 * expire and the store's sweep reclaims them, as in a long-running replica, and the per-minute rate
 * limit opens again so that matching alerts keep reaching render and dry_run. One app then serves
 * the whole run, like production, and a leak anywhere in it shows in the heap.
 */
const BODIES_PER_CLOCK_STEP = 250;
const CLOCK_STEP_MS = 11 * 60_000;
/** Failures listed in full; the rest are counted. */
const FAILURES_SHOWN = 20;

/** Outcomes an alert may get when its namespace, pod or container could not be a Kubernetes name. */
const SAFE_FOR_HOSTILE_TARGET = new Set<Outcome>(['invalid_target', 'no_match', 'excluded', 'resolved']);

/** An independent, conservative oracle: lowercase DNS-1123 characters only, at most 253 long. */
function couldBeKubernetesName(value: string): boolean {
  return value.length <= 253 && /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(value);
}

function heapAfterGc(): number {
  for (let i = 0; i < 3; i++) collectGarbage();
  return process.memoryUsage().heapUsed;
}

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

function excerpt(payload: Buffer, max = 300): string {
  const text = payload.toString('utf8');
  return JSON.stringify(text.length > max ? `${text.slice(0, max)}… (${payload.length} bytes)` : text);
}

type JsonRecord = { [key: string]: unknown };
const isRecord = (value: unknown): value is JsonRecord =>
  value !== null && typeof value === 'object' && !Array.isArray(value);

/** The alerts the server should have decided, read from the bytes it was sent, as it reads them. */
function alertsSent(payload: Buffer): unknown[] | undefined {
  let text = payload.toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (Array.isArray(body)) return body;
  if (!isRecord(body)) return undefined;
  if (Array.isArray(body.alerts)) return body.alerts;
  // POST /v1/explain takes one alert on its own too.
  return !Object.hasOwn(body, 'alerts') && isRecord(body.labels) ? [body] : undefined;
}

/** Everything wrong with one answer; empty when it is what the spec asks for. */
function problemsWith(
  body: FuzzBody,
  statusCode: number,
  contentType: unknown,
  responseText: string,
  ms: number,
): string[] {
  const problems: string[] = [];
  if (!ALLOWED_STATUSES.has(statusCode)) problems.push(`status ${statusCode}`);
  if (body.expectedStatus !== undefined && statusCode !== body.expectedStatus)
    problems.push(`status ${statusCode}, expected ${body.expectedStatus}`);
  if (ms > REQUEST_BOUND_MS) problems.push(`took ${ms.toFixed(0)} ms (bound ${REQUEST_BOUND_MS} ms)`);
  if (typeof contentType !== 'string' || !contentType.startsWith('application/json'))
    problems.push(`response content-type ${String(contentType)}`);
  let answer: unknown;
  try {
    answer = JSON.parse(responseText);
  } catch {
    return [...problems, 'response is not JSON'];
  }
  if (!isRecord(answer)) return [...problems, 'response is not a JSON object'];

  if (statusCode !== 200) {
    if (typeof answer.error !== 'string' || typeof answer.message !== 'string')
      problems.push('error answer without error and message');
    if (answer.error === 'invalid_request' && (typeof answer.field !== 'string' || !answer.field.startsWith('body'))) {
      problems.push('validation error without the field to blame');
    }
    return problems;
  }

  const decisions = answer.decisions;
  if (!Array.isArray(decisions)) return [...problems, '200 without a decisions list'];
  const alerts = alertsSent(body.payload);
  if (alerts === undefined) return [...problems, 'decided a body that is not a JSON alert list'];
  if (decisions.length !== alerts.length) problems.push(`${decisions.length} decisions for ${alerts.length} alerts`);
  for (const [i, decision] of (decisions as unknown[]).entries()) {
    if (!isRecord(decision)) {
      problems.push(`decision ${i} is not an object`);
      continue;
    }
    const outcome = decision.outcome as Outcome;
    if (!ALL_OUTCOMES.includes(outcome)) problems.push(`decision ${i}: unknown outcome ${String(outcome)}`);
    if (outcome === 'retry') problems.push(`decision ${i}: retry with an in-memory store and dry-run`);
    if (typeof decision.fingerprint !== 'string' || !/^[0-9a-f]{16}$/.test(decision.fingerprint)) {
      problems.push(`decision ${i}: fingerprint ${String(decision.fingerprint)}`);
    }
    if (decision.status !== 'firing' && decision.status !== 'resolved')
      problems.push(`decision ${i}: status ${String(decision.status)}`);
    const workflow = decision.workflow;
    const workflowName = isRecord(workflow) && typeof workflow.name === 'string' ? workflow.name : '';
    if (outcome === 'dry_run' && !(workflowName.length <= 63 && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(workflowName))) {
      problems.push(`decision ${i}: dry_run without a valid workflow name`);
    }
    const alert = alerts[i];
    const labels = isRecord(alert) && isRecord(alert.labels) ? alert.labels : {};
    for (const name of ['namespace', 'pod', 'container']) {
      const value = Object.hasOwn(labels, name) ? labels[name] : undefined;
      if (
        typeof value === 'string' &&
        value !== '' &&
        !couldBeKubernetesName(value) &&
        !SAFE_FOR_HOSTILE_TARGET.has(outcome)
      ) {
        problems.push(`decision ${i}: ${outcome} for ${name}=${JSON.stringify(value.slice(0, 60))}`);
      }
    }
  }
  return problems;
}

interface RouteRun {
  requests: number;
  statuses: Map<number, number>;
  outcomes: Map<string, number>;
  mutations: Map<string, number>;
  failures: string[];
  failureCount: number;
  slowest: { ms: number; what: string };
  elapsedMs: number;
}

/** Beyond this a request is not slow but hung: the run stops instead of waiting forever. */
const HANG_MS = 10_000;

async function withDeadline<T>(
  work: Promise<T>,
  ms: number,
): Promise<{ ok: true; value: T } | { ok: false; error: string }> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<{ ok: false; error: string }>((resolve) => {
    timer = setTimeout(() => resolve({ ok: false, error: `no answer within ${ms} ms` }), ms);
  });
  try {
    return await Promise.race([
      work.then(
        (value) => ({ ok: true as const, value }),
        (err: unknown) => ({
          ok: false as const,
          error: `inject rejected: ${err instanceof Error ? err.message : String(err)}`,
        }),
      ),
      deadline,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

const increment = <K>(map: Map<K, number>, key: K, by = 1) => map.set(key, (map.get(key) ?? 0) + by);

async function fuzzRoute(
  target: FuzzApp,
  seeds: SeedBodies,
  route: (typeof ROUTES)[number],
  stream: number,
  runSeed: number,
  count: number,
): Promise<RouteRun> {
  const run: RouteRun = {
    requests: 0,
    statuses: new Map(),
    outcomes: new Map(),
    mutations: new Map(),
    failures: [],
    failureCount: 0,
    slowest: { ms: 0, what: '' },
    elapsedMs: 0,
  };
  const started = performance.now();
  for (let index = 0; index < count; index++) {
    if (index > 0 && index % BODIES_PER_CLOCK_STEP === 0) target.clock.now += CLOCK_STEP_MS;
    const options: GenerateOptions = {
      accepts: route.accepts,
      bodyLimitBytes: target.config.bodyLimitBytes,
      now: target.clock.now,
    };
    const body = generateBody(seeds, options, bodySeed(runSeed, stream, index));
    const headers: Record<string, string> = body.contentType === undefined ? {} : { 'content-type': body.contentType };
    const what = `#${index} (body seed ${body.seed}) [${body.mutations.join('; ') || 'valid'}]`;
    const sent = performance.now();
    const answered = await withDeadline(
      target.app.inject({ method: 'POST', url: route.url, payload: body.payload, headers }),
      HANG_MS,
    );
    const ms = performance.now() - sent;
    run.requests++;
    if (!answered.ok) {
      // A hung or rejected request leaves the app in an unknown state: stop here and say which body.
      run.failureCount++;
      run.failures.push(`${what}: ${answered.error}\n  sent ${excerpt(body.payload)}`);
      break;
    }
    const res = answered.value;
    increment(run.statuses, res.statusCode);
    for (const mutation of body.mutations) increment(run.mutations, mutation.split(' ')[0] ?? mutation);
    if (ms > run.slowest.ms) run.slowest = { ms, what };
    const problems = problemsWith(body, res.statusCode, res.headers['content-type'], res.body, ms);
    if (res.statusCode === 200 && problems.length === 0) {
      for (const decision of (res.json() as { decisions: { outcome: string }[] }).decisions)
        increment(run.outcomes, decision.outcome);
    }
    if (problems.length > 0) {
      run.failureCount++;
      if (run.failures.length < FAILURES_SHOWN) {
        run.failures.push(
          `${what}: ${problems.join('; ')}\n  sent ${excerpt(body.payload)}\n  got ${res.statusCode} ${res.body.slice(0, 300)}`,
        );
      }
    }
  }
  run.elapsedMs = performance.now() - started;
  return run;
}

const summary = (map: Map<unknown, number>) =>
  [...map]
    .sort((a, b) => b[1] - a[1])
    .map(([key, n]) => `${String(key)}: ${n}`)
    .join(', ');

describe('fuzzed intake', () => {
  const runSeed = fuzzSeed();
  let seeds: SeedBodies;
  let target: FuzzApp;
  let heapBaseline = 0;
  const runs = new Map<string, RouteRun>();

  before(async () => {
    seeds = loadSeedBodies();
    target = await fuzzApp();
    // Warm-up: compiled schemas, JIT code and the store's first allocations are not growth.
    for (const [stream, route] of ROUTES.entries())
      await fuzzRoute(target, seeds, route, 100 + stream, runSeed, WARM_UP_BODIES_PER_ROUTE);
    heapBaseline = heapAfterGc();
  });

  after(async () => {
    await target?.app.close();
  });

  for (const [stream, route] of ROUTES.entries()) {
    describe(`POST ${route.url}`, () => {
      const count = BODIES_PER_ROUTE.toLocaleString('en');
      it(`answers ${count} generated bodies with 200, 400, 413 or 415, each a well-formed JSON answer within ${REQUEST_BOUND_MS} ms`, async (t) => {
        t.diagnostic(`FUZZ_SEED=${runSeed} replays this run`);
        const run = await fuzzRoute(target, seeds, route, stream, runSeed, BODIES_PER_ROUTE);
        runs.set(route.url, run);
        const seconds = (run.elapsedMs / 1000).toFixed(1);
        t.diagnostic(
          `${run.requests} requests in ${seconds} s; slowest ${run.slowest.ms.toFixed(0)} ms: ${run.slowest.what.slice(0, 200)}`,
        );
        t.diagnostic(`statuses ${summary(run.statuses)}`);
        t.diagnostic(`outcomes ${summary(run.outcomes)}`);
        t.diagnostic(`mutations ${summary(run.mutations)}`);

        assert.deepEqual(
          run.failures,
          [],
          `${run.failureCount} of ${run.requests} answers were wrong (FUZZ_SEED=${runSeed})`,
        );
        // The generator must reach every part of the intake, or a clean run proves little.
        const share = (status: number) => (run.statuses.get(status) ?? 0) / run.requests;
        assert.ok(share(200) > 0.15, `only ${(share(200) * 100).toFixed(1)}% of bodies were decided`);
        assert.ok(share(400) > 0.15, `only ${(share(400) * 100).toFixed(1)}% of bodies were refused as malformed`);
        assert.ok((run.statuses.get(413) ?? 0) > 0, 'no body over the limit was sent');
        assert.ok((run.statuses.get(415) ?? 0) > 0, 'no body with an unsupported content type was sent');
        for (const outcome of ['dry_run', 'invalid_target', 'no_match', 'resolved'] as const) {
          assert.ok((run.outcomes.get(outcome) ?? 0) > 0, `no alert got ${outcome}`);
        }
      });
    });
  }

  it(`keeps the heap within ${mb(HEAP_GROWTH_BOUND_BYTES)} of its size after warm-up over the whole run`, (t) => {
    const requests = [...runs.values()].reduce((sum, run) => sum + run.requests, 0);
    assert.ok(
      requests >= ROUTES.length * BODIES_PER_ROUTE,
      `only ${requests} requests ran: run the whole file, the route tests come first`,
    );
    const heapAfterRun = heapAfterGc();
    t.diagnostic(
      `heap after warm-up ${mb(heapBaseline)}, after ${requests} requests ${mb(heapAfterRun)}, growth ${mb(heapAfterRun - heapBaseline)}`,
    );
    assert.ok(
      heapAfterRun - heapBaseline < HEAP_GROWTH_BOUND_BYTES,
      `heap grew by ${mb(heapAfterRun - heapBaseline)} (${mb(heapBaseline)} → ${mb(heapAfterRun)})`,
    );
  });

  it('leaves Object.prototype and the other built-in prototypes untouched by __proto__ and constructor keys', () => {
    const attempts = [...runs.values()].reduce((sum, run) => sum + (run.mutations.get('prototype-key') ?? 0), 0);
    assert.ok(attempts >= 100, `only ${attempts} pollution attempts were sent: run the whole file`);
    assert.equal(({} as { polluted?: unknown }).polluted, undefined);
    assert.equal(Object.hasOwn(Object.prototype, 'polluted'), false);
    assert.deepEqual(snapshotPrototypes(), pristine);
  });
});

describe('huge label values', () => {
  // A rule that looks only at one annotation: regex time over megabyte labels is not the point here.
  const RULES = `
rules:
  - name: crashloop
    match:
      pattern: '(?i)crash ?loop'
      fields: [annotations.summary]
    priority: P3
    remediation:
      action: trigger-argo-workflow
      params:
        workflow_template: diagnose-pod
`;
  const REQUESTS = 48;
  const VALUE_LENGTH = 1_000_000;

  let target: FuzzApp;
  before(async () => {
    target = await fuzzApp({ rules: await rulesFrom(RULES) });
    await target.app.inject({ method: 'POST', url: '/api/v2/alerts', payload: [] });
  });
  after(async () => {
    await target?.app.close();
  });

  // Each decision goes to the audit trail (10,000 entries by default) with the alert's alertname
  // and cooldown key as sent: kept whole, 10,000 one-megabyte alertnames are 10 GB.
  const length = VALUE_LENGTH.toLocaleString('en');
  it(`does not keep what it was sent: ${REQUESTS} alerts with ${length}-character alertnames grow the heap by less than ${mb(HEAP_GROWTH_BOUND_BYTES)}`, async (t) => {
    const heapBefore = heapAfterGc();
    for (let i = 0; i < REQUESTS; i++) {
      const payload = `[{"labels":{"alertname":"${String(i).padStart(4, '0')}${'a'.repeat(VALUE_LENGTH)}"}}]`;
      assert.ok(payload.length < target.config.bodyLimitBytes);
      const res = await target.app.inject({
        method: 'POST',
        url: '/api/v2/alerts',
        payload,
        headers: { 'content-type': 'application/json' },
      });
      assert.equal(res.statusCode, 200, res.body.slice(0, 300));
    }
    const growth = heapAfterGc() - heapBefore;
    const kept = (await target.store.listDecisions(REQUESTS)).reduce(
      (sum, record) => sum + JSON.stringify(record).length,
      0,
    );
    t.diagnostic(`heap grew by ${mb(growth)}; the audit trail's last ${REQUESTS} entries hold ${mb(kept)} of JSON`);
    assert.ok(
      growth < HEAP_GROWTH_BOUND_BYTES,
      `heap grew by ${mb(growth)}; the audit trail's last ${REQUESTS} entries hold ${mb(kept)} of JSON`,
    );
  });
});

describe('ReDoS bait', () => {
  const REDOS_BOUND_MS = 1_000;
  const rule = (name: string, match: string, priority = 'P2') => `
  - name: ${name}
    match:
${match}
    priority: ${priority}
    remediation:
      action: trigger-argo-workflow
      params:
        workflow_template: diagnose-pod
      cooldown: 10m`;
  const RULES = `rules:${[
    rule('nested-plus', "      pattern: '(a+)+$'"),
    rule('overlapping-alternation', "      pattern: '(a|aa)+$'"),
    rule('repeated-wildcard', "      pattern: '(.*a){12}'"),
    rule('optional-alternation', "      pattern: '(a|a?)+b'"),
    rule('adjacent-plus', "      pattern: '(x+x+)+y'"),
    rule(
      'hostile-matchers',
      `      labels: ['pod=~"(a+)+"', 'namespace=~"(a|aa)+"', 'container!~"(.*a){12}"', 'alertname=~"(a|a?)+b"']`,
    ),
    // Matches last, so that huge pod names reach the cooldown key's suffix stripping and rendering.
    rule('crashloop', "      pattern: '(?i)crash ?loop'", 'P4'),
  ].join('')}\n`;

  /** 50,000 characters and a twist: the shapes that make backtracking engines explode. */
  const BAITS: Record<string, string> = {
    'a×50000 then !': `${'a'.repeat(50_000)}!`,
    'a×50000': 'a'.repeat(50_000),
    'x×50000 then b': `${'x'.repeat(50_000)}b`,
    '-1×25000 then ! (StatefulSet suffix)': `${'-1'.repeat(25_000)}!`,
    'a-×25000 then ! (generated suffixes)': `${'a-'.repeat(25_000)}!`,
    'a-bcdfg×7000 then ! (Deployment suffix)': `${'a-bcdfg'.repeat(7_000)}!`,
  };

  const PLACEMENTS: Record<
    string,
    (bait: string) => { labels: Record<string, string>; annotations: Record<string, string> }
  > = {
    'in every label and annotation': (bait) => ({
      labels: { alertname: bait, namespace: bait, pod: bait, container: bait, severity: bait },
      annotations: { description: bait, summary: bait },
    }),
    'in the pod label of a crash-looping alert': (bait) => ({
      labels: { alertname: 'KubePodCrashLooping', namespace: 'shop', pod: bait },
      annotations: { description: 'Pod is crash looping' },
    }),
    'in the annotations': (bait) => ({
      labels: { alertname: 'LogBurst', namespace: 'shop' },
      annotations: { description: bait, summary: bait },
    }),
  };

  let target: FuzzApp;
  before(async () => {
    target = await fuzzApp({ rules: await rulesFrom(RULES) });
    await target.app.inject({ method: 'POST', url: '/api/v2/alerts', payload: [] });
  });
  after(async () => {
    await target?.app.close();
  });

  for (const [baitName, bait] of Object.entries(BAITS)) {
    for (const [placementName, place] of Object.entries(PLACEMENTS)) {
      it(`decides ${baitName} ${placementName} on every intake route within ${REDOS_BOUND_MS} ms`, async () => {
        const alert = place(bait);
        const bodies = [
          { url: '/webhook/alertmanager', payload: { version: '4', alerts: [{ status: 'firing', ...alert }] } },
          { url: '/api/v2/alerts', payload: [alert] },
          { url: '/v1/explain', payload: [alert] },
        ];
        for (const { url, payload } of bodies) {
          target.clock.now += CLOCK_STEP_MS;
          const started = performance.now();
          const res = await target.app.inject({ method: 'POST', url, payload });
          const ms = performance.now() - started;
          assert.equal(res.statusCode, 200, `${url}: ${res.body.slice(0, 300)}`);
          const decisions = (res.json() as { decisions: { outcome: Outcome }[] }).decisions;
          assert.equal(decisions.length, 1, url);
          assert.ok(ALL_OUTCOMES.includes(decisions[0]!.outcome), `${url}: outcome ${decisions[0]!.outcome}`);
          assert.ok(ms < REDOS_BOUND_MS, `${url} took ${ms.toFixed(0)} ms`);
        }
      });
    }
  }

  it(`decides a body of bait filling the 1 MiB limit within ${REDOS_BOUND_MS} ms`, async () => {
    const bait = BAITS['a×50000 then !']!;
    const alerts = Array.from({ length: 6 }, (_, i) => ({
      labels: { alertname: `Bait${i}`, namespace: 'shop', pod: bait },
      annotations: { description: bait, summary: bait },
    }));
    const payload = JSON.stringify(alerts);
    assert.ok(
      payload.length > 0.85 * target.config.bodyLimitBytes && payload.length < target.config.bodyLimitBytes,
      `${payload.length} bytes`,
    );
    for (const url of ['/api/v2/alerts', '/v1/explain']) {
      target.clock.now += CLOCK_STEP_MS;
      const started = performance.now();
      const res = await target.app.inject({
        method: 'POST',
        url,
        payload,
        headers: { 'content-type': 'application/json' },
      });
      const ms = performance.now() - started;
      assert.equal(res.statusCode, 200, `${url}: ${res.body.slice(0, 300)}`);
      assert.equal((res.json() as { decisions: unknown[] }).decisions.length, alerts.length);
      assert.ok(ms < REDOS_BOUND_MS, `${url} took ${ms.toFixed(0)} ms for ${payload.length} bytes`);
    }
  });
});
