/**
 * Kube Sentinel's pipeline without HTTP, wired as `serve` wires it (settings from the same
 * defaults, decision log lines at info written to /dev/null, metrics on), but with the in-memory
 * cooldown store and dry-run: what the in-process scenarios (decision latency, RSS over 1M
 * alerts) time and weigh.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { loadConfig } from '../src/config.js';
import { dryRunSubmitter } from '../src/kube/client.js';
import { createMetrics } from '../src/pipeline/metrics.js';
import { createPipeline, type Pipeline } from '../src/pipeline/pipeline.js';
import { loadRules } from '../src/rules/load.js';
import type { RuleSet } from '../src/rules/types.js';
import { MemoryCooldownStore } from '../src/stores/memory.js';

export async function ruleSetFrom(yaml: string): Promise<RuleSet> {
  const file = join(mkdtempSync(join(tmpdir(), 'ks-bench-rules-')), 'rules.yaml');
  writeFileSync(file, yaml);
  return ruleSetAt(file);
}

export async function ruleSetAt(path: string): Promise<RuleSet> {
  const loaded = await loadRules(path);
  if (!loaded.ok) throw new Error(`bench rules do not load:\n${loaded.errors.join('\n')}`);
  return loaded.ruleSet;
}

export function inProcessPipeline(
  ruleSet: RuleSet,
  options: { now?: () => number; maxWorkflowsPerMinute?: number } = {},
): Pipeline {
  const now = options.now ?? Date.now;
  const config = loadConfig(['--dry-run'], {});
  return createPipeline({
    rules: () => ruleSet,
    store: new MemoryCooldownStore({ now }),
    submitter: dryRunSubmitter,
    metrics: createMetrics(),
    logger: pino(
      { level: 'info', base: { service: 'kube-sentinel' } },
      pino.destination({ dest: '/dev/null', sync: true }),
    ),
    now,
    settings: {
      ...config,
      maxWorkflowsPerMinute: options.maxWorkflowsPerMinute ?? config.maxWorkflowsPerMinute,
      replica: 'bench',
    },
  });
}
