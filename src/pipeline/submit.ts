import { decide } from '../decision.js';
import type { WorkflowSubmitter } from '../kube/client.js';
import type { SubmitResult } from '../kube/result.js';
import { type GuardDeps, releaseClaim } from './guard.js';
import type { Built, Claim, Stage } from './stage.js';

export interface SubmitDeps extends GuardDeps {
  settings: GuardDeps['settings'] & { submitTimeoutMs: number };
}

/**
 * Creates the Workflow, then settles the claim. Created (or 409 AlreadyExists: a retry of a create
 * that landed) commits the full cooldown, and so does a submitter that sends nothing (dry-run); a
 * retryable failure keeps the pending claim, so the redelivery re-uses its name; any other failure
 * releases it.
 */
export function submitWorkflow(submitter: WorkflowSubmitter, deps: SubmitDeps): Stage<Built, never> {
  return async (draft) => {
    const { alert, rule, cooldownKey, workflow, claim } = draft;
    const ref = { namespace: workflow.metadata.namespace, name: workflow.metadata.name };
    const started = performance.now();
    const result = await submitter.create(workflow, deps.settings.submitTimeoutMs);
    if (result.kind !== 'not_sent') count(result, rule.remediation.params, (performance.now() - started) / 1000, deps);
    switch (result.kind) {
      case 'not_sent':
        commitInBackground(claim, rule.remediation.cooldownMs, deps);
        return decide(alert, rule, 'dry_run', {
          cooldownKey,
          workflow: ref,
          ...(result.manifest ? { manifest: result.manifest } : {}),
        });
      case 'created':
      case 'exists':
        commitInBackground(claim, rule.remediation.cooldownMs, deps);
        return decide(alert, rule, 'submitted', {
          cooldownKey,
          workflow: ref,
          ...(result.kind === 'exists' ? { reason: 'already exists (a retry of a create that landed)' } : {}),
        });
      case 'failed':
        if (result.retryable) {
          return decide(alert, rule, 'retry', {
            cooldownKey,
            workflow: ref,
            reason: `kubernetes: ${result.reason}`,
            ...(result.retryAfterSeconds ? { retryAfterSeconds: result.retryAfterSeconds } : {}),
          });
        }
        await releaseClaim(claim, deps);
        deps.logger.error(
          {
            rule: rule.name,
            workflow: ref.name,
            namespace: ref.namespace,
            status: result.status,
            reason: result.reason,
          },
          result.status === 403
            ? `kubernetes refused the workflow: kube-sentinel may not create workflows.argoproj.io in namespace ${ref.namespace}`
            : 'kubernetes refused the workflow',
        );
        return decide(alert, rule, 'failed', { cooldownKey, workflow: ref, reason: `kubernetes: ${result.reason}` });
    }
  };
}

/** The submissions metric: by template, result and HTTP code (403 is RBAC, 404 a missing template, …). */
function count(
  result: Exclude<SubmitResult, { kind: 'not_sent' }>,
  params: { workflowTemplate?: string; workflowName?: string },
  seconds: number,
  deps: SubmitDeps,
): void {
  const kind = result.kind === 'failed' ? (result.retryable ? 'transient' : 'permanent') : result.kind;
  const code =
    result.status !== undefined
      ? String(result.status)
      : result.kind === 'failed' && result.cause === 'timeout'
        ? 'timeout'
        : 'connection';
  deps.metrics.submitDuration.observe({ result: kind }, seconds);
  deps.metrics.submissions.inc({ template: params.workflowTemplate ?? params.workflowName ?? '', result: kind, code });
}

/**
 * Not awaited: the answer is `submitted` whether or not the commit lands (a failed commit only
 * leaves the pending lease, and is logged), so the answer need not wait for another round trip to
 * Redis. The command is queued at once on the store's connection, ahead of anything this replica
 * asks later, and closing the store waits for it.
 */
function commitInBackground(claim: Claim | null, cooldownMs: number, deps: SubmitDeps): void {
  if (!claim) return;
  deps.store.commit(claim.key, claim.workflowName, cooldownMs).then(
    (held) => {
      if (!held) {
        deps.logger.warn(
          { key: claim.key, workflow: claim.workflowName },
          'cooldown key was taken by another claim while submitting',
        );
      }
    },
    (err: unknown) => {
      // The Workflow exists; only the cooldown could not be extended past the pending lease.
      deps.metrics.storeErrors.inc({ operation: 'commit' });
      deps.logger.error(
        { err: (err as Error).message, key: claim.key },
        'could not commit the cooldown after submitting',
      );
    },
  );
}
