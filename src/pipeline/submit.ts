import type { SubmitResult } from '../errors.js';
import type { WorkflowSubmitter } from '../kube/client.js';
import type { Workflow } from '../kube/workflow.js';
import type { Rule } from '../rules/types.js';
import type { Alert } from './alert.js';
import { decide, type Decision } from './decision.js';
import { releaseQuietly, type GuardDeps, type Pass } from './guard.js';
import { Outcome } from './outcome.js';

export interface SubmitDeps extends GuardDeps {
  submitter: WorkflowSubmitter;
  /** Already true when the submitter cannot submit (no cluster). */
  dryRun: boolean;
  submitTimeoutMs: number;
}

/**
 * Stage 5: create the Workflow, then settle the claim. Created (or 409 AlreadyExists: a retry of
 * a create that landed) commits the full cooldown; a transient failure keeps the pending claim,
 * so the redelivery re-uses its name; a permanent failure releases it.
 */
export async function submitStage(alert: Alert, rule: Rule, key: string, workflow: Workflow, pass: Pass, deps: SubmitDeps): Promise<Decision> {
  const target = { namespace: workflow.metadata.namespace, name: workflow.metadata.name };
  const template = rule.remediation.params.workflowTemplate ?? rule.remediation.params.workflowName ?? '';
  if (deps.dryRun) {
    commitInBackground(pass, rule, deps);
    return decide(alert, rule, Outcome.DryRun, { cooldownKey: key, workflow: target });
  }
  const started = performance.now();
  const result = await deps.submitter.create(workflow, deps.submitTimeoutMs);
  deps.metrics.submitDuration.observe({ result: result.kind }, (performance.now() - started) / 1000);
  deps.metrics.submissions.inc({ template, result: result.kind, code: codeOf(result) });
  switch (result.kind) {
    case 'created':
    case 'exists':
      commitInBackground(pass, rule, deps);
      return decide(alert, rule, Outcome.Submitted, {
        cooldownKey: key,
        workflow: target,
        ...(result.kind === 'exists' ? { reason: 'already exists (a retry of a create that landed)' } : {}),
      });
    case 'transient':
      return decide(alert, rule, Outcome.Retry, {
        cooldownKey: key,
        workflow: target,
        reason: `kubernetes: ${result.reason}`,
        ...(result.retryAfterSeconds ? { retryAfterSeconds: result.retryAfterSeconds } : {}),
      });
    case 'permanent':
      await releaseQuietly(pass, deps);
      deps.logger.error(
        { rule: rule.name, workflow: target.name, namespace: target.namespace, status: result.status, reason: result.reason },
        result.status === 403
          ? `kubernetes refused the workflow: kube-sentinel may not create workflows.argoproj.io in namespace ${target.namespace}`
          : 'kubernetes refused the workflow',
      );
      return decide(alert, rule, Outcome.Failed, { cooldownKey: key, workflow: target, reason: `kubernetes: ${result.reason}` });
  }
}

/** The HTTP status behind a result, for the metric: 403 is RBAC, 404 a missing template, … */
function codeOf(result: SubmitResult): string {
  switch (result.kind) {
    case 'created':
      return '201';
    case 'exists':
      return '409';
    case 'permanent':
      return String(result.status);
    case 'transient':
      return /^\d{3}\b/.exec(result.reason)?.[0] ?? (result.reason.startsWith('timeout') ? 'timeout' : 'connection');
  }
}

/**
 * Not awaited: the answer is `submitted` whether or not the commit lands (a failed commit only
 * leaves the pending lease, and is logged), so the answer need not wait for another round trip to
 * Redis. The command is queued at once on the store's connection, ahead of anything this replica
 * asks later, and closing the store waits for it.
 */
function commitInBackground(pass: Pass, rule: Rule, deps: SubmitDeps): void {
  void commit(pass, rule, deps);
}

async function commit(pass: Pass, rule: Rule, deps: SubmitDeps): Promise<void> {
  if (!pass.claim) return;
  try {
    const held = await deps.store.commit(pass.claim.key, pass.claim.workflowName, rule.remediation.cooldownMs);
    if (!held) deps.logger.warn({ key: pass.claim.key, workflow: pass.claim.workflowName }, 'cooldown key was taken by another claim while submitting');
  } catch (err) {
    // The Workflow exists; only the cooldown could not be extended past the pending lease.
    deps.metrics.storeErrors.inc({ operation: 'commit' });
    deps.logger.error({ err: (err as Error).message, key: pass.claim.key }, 'could not commit the cooldown after submitting');
  }
}
