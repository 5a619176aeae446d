import type { Logger } from 'pino';
import type { WorkflowSubmitter } from '../kube/client.js';
import type { Metrics } from '../metrics.js';
import type { RuleSet } from '../rules/types.js';
import type { CooldownStore } from '../stores/cooldown-store.js';
import type { Alert } from './alert.js';
import { cooldownKey } from './cooldown-key.js';
import { decide, type Decision } from './decision.js';
import { guardStage, peekStage, releaseQuietly } from './guard.js';
import { matchStage } from './match.js';
import { Outcome } from './outcome.js';
import { recordStage, type RecordDeps } from './record.js';
import { renderWorkflow } from './render.js';
import { submitStage } from './submit.js';

export interface PipelineSettings {
  workflowNamespace: string;
  workflowServiceAccount?: string;
  dryRun: boolean;
  cooldownStoreFailure: 'closed' | 'open';
  maxWorkflowsPerMinute: number;
  submitTimeoutMs: number;
  pendingLeaseMs: number;
  auditMaxLen: number;
  replica: string;
}

export interface PipelineDeps {
  /** The rules in force now; a reload swaps the whole set, so one alert always sees one set. */
  rules: () => RuleSet;
  store: CooldownStore;
  submitter: WorkflowSubmitter;
  settings: PipelineSettings;
  metrics: Metrics;
  logger: Logger;
  now: () => number;
}

export type Mode = 'ingest' | 'explain';

/**
 * The whole flow for one alert, top to bottom:
 * match → render → guard (cooldown claim, rate limit) → submit → record.
 * Rendering comes before the claim so that an invalid target never holds a cooldown.
 */
async function decideAlert(alert: Alert, ruleSet: RuleSet, mode: Mode, deps: PipelineDeps, recordDeps: RecordDeps): Promise<Decision> {
  const decision = await decideUnrecorded(alert, ruleSet, mode, deps);
  recordStage(alert, decision, mode, recordDeps);
  return decision;
}

async function decideUnrecorded(alert: Alert, ruleSet: RuleSet, mode: Mode, deps: PipelineDeps): Promise<Decision> {
  const matched = matchStage(alert, ruleSet);
  if (!('remediation' in matched)) return matched;
  const rule = matched;
  const key = cooldownKey(alert, rule);

  // Rendered with a placeholder name: the real one comes from the claim.
  const rendered = renderWorkflow(alert, rule, deps.settings, key, 'pending');
  if (!rendered.ok) return decide(alert, rule, Outcome.InvalidTarget, { cooldownKey: key, reason: rendered.reason });

  const guardDeps = { store: deps.store, settings: deps.settings, metrics: deps.metrics, logger: deps.logger, now: deps.now };
  const pass = mode === 'explain' ? await peekStage(alert, rule, key, guardDeps) : await guardStage(alert, rule, key, guardDeps);
  if (!('workflowName' in pass)) return pass;

  const workflow = { ...rendered.workflow, metadata: { ...rendered.workflow.metadata, name: pass.workflowName } };
  if (mode === 'explain') {
    return decide(alert, rule, Outcome.DryRun, { cooldownKey: key, workflow: { namespace: workflow.metadata.namespace, name: workflow.metadata.name } });
  }
  try {
    return await submitStage(alert, rule, key, workflow, pass, {
      ...guardDeps,
      submitter: deps.submitter,
      dryRun: deps.settings.dryRun,
      submitTimeoutMs: deps.settings.submitTimeoutMs,
    });
  } catch (err) {
    // An unexpected bug must not leave the key blocked for the whole lease, nor crash the request.
    await releaseQuietly(pass, guardDeps);
    deps.logger.error({ err, rule: rule.name }, 'unexpected error while submitting');
    return decide(alert, rule, Outcome.Retry, { cooldownKey: key, reason: 'internal error' });
  }
}

/** Decides every alert of one request. The rule set is read once, so a reload mid-request is not seen half-way. */
export async function decideAlerts(alerts: readonly Alert[], mode: Mode, deps: PipelineDeps): Promise<Decision[]> {
  const ruleSet = deps.rules();
  if (mode === 'ingest') {
    for (const alert of alerts) deps.metrics.alertsReceived.inc({ source: alert.source, status: alert.status });
  }
  const recordDeps: RecordDeps = { ...deps, replica: deps.settings.replica, auditMaxLen: deps.settings.auditMaxLen };
  return Promise.all(alerts.map((alert) => decideAlert(alert, ruleSet, mode, deps, recordDeps)));
}

/** For explain: the Workflow that would be submitted for an alert, or why none would be. */
export function workflowPreview(alert: Alert, ruleSet: RuleSet, deps: Pick<PipelineDeps, 'settings'>, name: string) {
  const rule = ruleSet.match(alert);
  if (!rule) return null;
  const rendered = renderWorkflow(alert, rule, deps.settings, cooldownKey(alert, rule), name);
  return rendered.ok ? rendered.workflow : null;
}
