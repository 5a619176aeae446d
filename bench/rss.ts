/**
 * Scenario 5b, in a child process of its own (run with --expose-gc): resident memory while one
 * million alerts are decided. Through HTTP that would take longer than the whole bench may, so
 * the alerts go through the pipeline in process (the default rules, in-memory cooldown store,
 * dry-run, decision log lines to /dev/null), in groups of 20 as a webhook delivers them.
 *
 * The stream is what a long-lived receiver sees: every alert a distinct pod (its own
 * fingerprint), half of them remediable over 500 workloads whose cooldown keys are claimed,
 * expire and are claimed again (the clock moves 1 ms per alert, so a 10-minute cooldown turns
 * over every 600,000 alerts), half matching no rule.
 *
 *   node --expose-gc --import tsx bench/rss.ts 1000000
 *
 * Prints one JSON line: RssReport. Memory is read after a full GC, so it is what stays.
 */
import { fileURLToPath } from 'node:url';
import { alertsFromWebhook, type WebhookBody } from '../src/pipeline/receive.js';
import { NAMESPACES, remediableAlert, unmatchedAlert, webhookBody } from './alerts.js';
import { inProcessPipeline, ruleSetAt } from './in-process.js';

export interface RssCheckpoint {
  alerts: number;
  rssMb: number;
  heapUsedMb: number;
}

export interface RssReport {
  checkpoints: RssCheckpoint[];
  seconds: number;
  outcomes: Record<string, number>;
}

const DEFAULT_RULES = fileURLToPath(new URL('../rules/default.yaml', import.meta.url));
const GROUP = 20;
const WORKLOADS = 500;
const WARMUP = 20_000;

const total = Number(process.argv[2] ?? 1_000_000);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run bench/rss.ts with node --expose-gc');

const clock = { now: Date.parse('2026-11-26T12:00:00Z') };
const pipeline = inProcessPipeline(await ruleSetAt(DEFAULT_RULES), { now: () => clock.now, maxWorkflowsPerMinute: 0 });
const outcomes: Record<string, number> = {};

function group(first: number): WebhookBody {
  const alerts = [];
  for (let i = first; i < first + GROUP; i++) {
    const namespace = NAMESPACES[i % NAMESPACES.length]!;
    const workload = `svc-${Math.floor(i / 2) % WORKLOADS}`;
    alerts.push(
      i % 2 === 0 ? remediableAlert(namespace, workload, i, i >> 1) : unmatchedAlert(namespace, workload, i, i >> 1),
    );
  }
  return JSON.parse(webhookBody(alerts)) as WebhookBody;
}

async function decide(from: number, to: number): Promise<void> {
  for (let first = from; first < to; first += GROUP) {
    const decisions = await pipeline.ingest(alertsFromWebhook(group(first)));
    for (const d of decisions) outcomes[d.outcome] = (outcomes[d.outcome] ?? 0) + 1;
    clock.now += GROUP;
  }
}

function checkpoint(alerts: number): RssCheckpoint {
  gc!();
  gc!();
  const usage = process.memoryUsage();
  return { alerts, rssMb: usage.rss / 2 ** 20, heapUsedMb: usage.heapUsed / 2 ** 20 };
}

await decide(0, WARMUP);
const checkpoints = [checkpoint(0)];
const started = performance.now();
const quarter = Math.ceil(total / 4 / GROUP) * GROUP;
for (let done = 0; done < total; ) {
  const next = Math.min(total, done + quarter);
  await decide(WARMUP + done, WARMUP + next);
  done = next;
  checkpoints.push(checkpoint(done));
}
const report: RssReport = { checkpoints, seconds: (performance.now() - started) / 1000, outcomes };
process.stdout.write(`${JSON.stringify(report)}\n`);
