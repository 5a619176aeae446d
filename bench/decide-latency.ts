/**
 * Scenario 4, in a child process of its own: decision latency per alert (receive → decision, no
 * network) with 10, 100 and 1,000 generated rules. Each sample times one alert from its parsed
 * webhook body to its recorded decision (alertsFromWebhook, then the ingest stages: match, key,
 * target check, cooldown claim in memory, build, dry-run submit, decision log line, metrics, audit). Two alert kinds
 * alternate: one that only the last rule matches (it walks every rule, then hits its cooldown)
 * and one that no rule matches.
 *
 *   node --import tsx bench/decide-latency.ts '{"ruleCounts":[10,100,1000],"warmup":2000,"samples":5000,"runs":3}'
 *
 * Prints one JSON line: LatencyReport.
 */

import { alertsFromWebhook, type WebhookBody } from '../src/pipeline/receive.js';
import { alertSet, type LabelledAlert, remediableAlert, unmatchedAlert, webhookBody } from './alerts.js';
import { inProcessPipeline, ruleSetFrom } from './in-process.js';
import { generatedRules, MATCHING_RULE } from './rules.js';
import { median, percentile } from './stats.js';

export interface LatencyOptions {
  ruleCounts: number[];
  warmup: number;
  samples: number;
  runs: number;
}

export interface LatencyRow {
  rules: number;
  /** Median over runs of each run's percentile, in µs. */
  matchP50Us: number;
  matchP99Us: number;
  noMatchP50Us: number;
  noMatchP99Us: number;
}

export type LatencyReport = { rows: LatencyRow[] };

const POOL = 2000;

function bodies(alerts: LabelledAlert[]): WebhookBody[] {
  return alerts.map((alert) => JSON.parse(webhookBody([alert])) as WebhookBody);
}

async function measure(count: number, options: LatencyOptions): Promise<LatencyRow> {
  const pipeline = inProcessPipeline(await ruleSetFrom(generatedRules(count)));
  // Every pod distinct (its own fingerprint), 20 workloads: after the first claim per workload, cooldown.
  const matching = bodies(alertSet(POOL, (ns, workload, seed) => remediableAlert(ns, workload, seed, 0)));
  const unmatched = bodies(alertSet(POOL, unmatchedAlert));

  let next = 0;
  const decideOne = async (body: WebhookBody, expectMatch: boolean): Promise<number> => {
    const started = performance.now();
    const decisions = await pipeline.ingest(alertsFromWebhook(body));
    const elapsed = performance.now() - started;
    const decision = decisions[0];
    const ok = expectMatch
      ? decision?.rule === MATCHING_RULE && (decision.outcome === 'cooldown' || decision.outcome === 'dry_run')
      : decision?.outcome === 'no_match';
    if (!ok) throw new Error(`unexpected decision with ${count} rules: ${JSON.stringify(decision)}`);
    return elapsed * 1000;
  };
  const sample = async (into?: { match: number[]; noMatch: number[] }) => {
    const i = next++ % POOL;
    const a = await decideOne(matching[i]!, true);
    const b = await decideOne(unmatched[i]!, false);
    into?.match.push(a);
    into?.noMatch.push(b);
  };

  for (let i = 0; i < options.warmup; i++) await sample();
  const runs: { match: number[]; noMatch: number[] }[] = [];
  for (let r = 0; r < options.runs; r++) {
    const run = { match: [] as number[], noMatch: [] as number[] };
    for (let i = 0; i < options.samples; i++) await sample(run);
    run.match.sort((x, y) => x - y);
    run.noMatch.sort((x, y) => x - y);
    runs.push(run);
  }
  return {
    rules: count,
    matchP50Us: median(runs.map((r) => percentile(r.match, 50))),
    matchP99Us: median(runs.map((r) => percentile(r.match, 99))),
    noMatchP50Us: median(runs.map((r) => percentile(r.noMatch, 50))),
    noMatchP99Us: median(runs.map((r) => percentile(r.noMatch, 99))),
  };
}

const options = JSON.parse(process.argv[2] ?? '{}') as LatencyOptions;
const rows: LatencyRow[] = [];
for (const count of options.ruleCounts) rows.push(await measure(count, options));
process.stdout.write(`${JSON.stringify({ rows } satisfies LatencyReport)}\n`);
