import pino from 'pino';
import { pipelineSettings } from './app.js';
import type { Config } from './config.js';
import { dryRunSubmitter } from './kube/client.js';
import { createMetrics } from './metrics.js';
import type { Alert } from './pipeline/alert.js';
import type { Decision } from './pipeline/decision.js';
import { decideAlerts, workflowPreview, type Mode, type PipelineDeps } from './pipeline/pipeline.js';
import type { RuleSet } from './rules/types.js';
import { MemoryCooldownStore } from './stores/memory.js';

/**
 * The pipeline without a cluster, a shared store or logs: for `explain` and `test`, which must
 * have no side effects. Each call to `offlinePipeline` starts with an empty cooldown store.
 */
export function offlinePipeline(ruleSet: RuleSet, config: Config, now: () => number) {
  const deps: PipelineDeps = {
    rules: () => ruleSet,
    store: new MemoryCooldownStore({ now }),
    submitter: dryRunSubmitter,
    metrics: createMetrics({ defaults: false }),
    logger: pino({ level: 'silent' }),
    now,
    settings: {
      ...pipelineSettings(config, dryRunSubmitter),
      // A rule test is about rules, not about the storm guard; nothing is shared, nothing audited.
      maxWorkflowsPerMinute: 0,
      auditMaxLen: 1,
      replica: 'offline',
    },
  };
  return {
    decide: (alerts: Alert[], mode: Mode): Promise<Decision[]> => decideAlerts(alerts, mode, deps),
    preview: (alert: Alert, name: string) => workflowPreview(alert, ruleSet, deps, name),
  };
}
