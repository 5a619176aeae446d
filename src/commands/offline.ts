import pino from 'pino';
import type { Config } from '../config.js';
import { capturingSubmitter } from '../kube/client.js';
import { createMetrics } from '../pipeline/metrics.js';
import { createPipeline, type Pipeline } from '../pipeline/pipeline.js';
import type { ClusterRouting } from '../pipeline/route.js';
import type { RuleSet } from '../rules/types.js';
import { MemoryCooldownStore } from '../stores/memory.js';

/**
 * The serving pipeline, for `explain` and `test`: the same stages, with nothing that reaches
 * outside the process: an empty in-memory cooldown store, a submitter that only captures the
 * Workflow, no logs. Each call starts with a store of its own. With `clusters` (explain
 * --clusters), alerts are routed as serve routes them.
 */
export function offlinePipeline(
  ruleSet: RuleSet,
  config: Config,
  now: () => number,
  clusters?: ClusterRouting,
): Pipeline {
  return createPipeline({
    ...(clusters ? { clusters } : {}),
    rules: () => ruleSet,
    store: new MemoryCooldownStore({ now }),
    submitter: capturingSubmitter,
    metrics: createMetrics({ defaults: false }),
    logger: pino({ level: 'silent' }),
    now,
    // A rule test is about rules, not about the storm guard; nothing is shared.
    settings: { ...config, maxWorkflowsPerMinute: 0, auditMaxLen: 1, replica: 'offline' },
  });
}
