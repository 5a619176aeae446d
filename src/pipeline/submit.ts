import { decide } from '../decision.js';
import type { WorkflowSubmitter } from '../kube/client.js';
import type { SubmitResult } from '../kube/result.js';
import { remediationId } from '../remediation/model.js';
import { releaseClaim, returnRateSlot } from './guard.js';
import { heldForMs } from './local-cooldowns.js';
import { type SettleDeps, type Settlement, settleClaim } from './settle.js';
import type { Built, Claim, Stage } from './stage.js';

export interface SubmitDeps extends SettleDeps {
  settings: SettleDeps['settings'] & { submitTimeoutMs: number };
}

/**
 * Creates the Workflow, then settles the claim:
 * - created, or 409 AlreadyExists for this very name (a retry of a create that landed), and a
 *   submitter that sends nothing (dry-run): the full cooldown is committed;
 * - a create whose outcome is unknown (a timeout or a broken connection after it was sent): the
 *   pending claim and its name are held for the whole cooldown, so every redelivery re-uses the
 *   name and a create that landed is never duplicated; its rate slot stays spent;
 * - any other retryable failure: the pending claim is kept for the redelivery, the rate slot given back;
 * - a permanent failure: the claim is released and the rate slot given back.
 */
export function submitWorkflow(submitter: WorkflowSubmitter, deps: SubmitDeps): Stage<Built, never> {
  return async (draft) => {
    const { alert, rule, cooldownKey, workflow, claim } = draft;
    const ref = { namespace: workflow.metadata.namespace, name: workflow.metadata.name };
    const { approval, maxAttempts, attemptWindowMs } = rule.remediation;
    // A Workflow waiting for approval holds its key until the approval is decided.
    const cooldownMs = heldForMs(rule);
    // An attempt is counted once the Workflow exists (or, dry-run, would); not awaited, like the commit.
    const countAttempt = (): void => {
      if (maxAttempts === 0 || !claim) return;
      deps.store
        .addAttempt(
          cooldownKey,
          { workflow: remediationId(ref.namespace, ref.name, draft.cluster), at: deps.now() },
          attemptWindowMs,
        )
        .catch((err: unknown) => {
          deps.metrics.storeErrors.inc({ operation: 'attempts' });
          deps.logger.warn({ err: (err as Error).message, key: cooldownKey }, 'could not count the attempt');
        });
    };
    const created = approval === 'required' ? 'awaiting_approval' : 'submitted';
    const settle = (settlement: Settlement): void =>
      settleInBackground(claim, settlement, alert.fingerprint, cooldownMs, deps);
    const started = performance.now();
    const result = await submitter.create(workflow, deps.settings.submitTimeoutMs);
    if (result.kind !== 'not_sent') {
      count(result, rule.remediation.params, draft.cluster, (performance.now() - started) / 1000, deps);
    }
    switch (result.kind) {
      case 'not_sent':
        settle('commit');
        countAttempt();
        return decide(alert, rule, approval === 'required' ? 'awaiting_approval' : 'dry_run', {
          cooldownKey,
          workflow: ref,
          ...(approval === 'required'
            ? { reason: 'would be created suspended, awaiting approval (not submitted)' }
            : {}),
          ...(result.manifest ? { manifest: result.manifest } : {}),
        });
      case 'created':
      case 'exists':
        settle('commit');
        countAttempt();
        return decide(alert, rule, created, {
          cooldownKey,
          workflow: ref,
          ...(result.kind === 'exists'
            ? { reason: 'already exists (a retry of a create that landed)' }
            : approval === 'required'
              ? { reason: `created suspended: approve with argo resume -n ${ref.namespace} ${ref.name}` }
              : {}),
        });
      case 'failed':
        if (result.mayHaveLanded) settle('hold');
        else await returnRateSlot(draft.rateWindow, deps);
        if (result.retryable) {
          return decide(alert, rule, 'retry', {
            cooldownKey,
            workflow: ref,
            reason: `kubernetes: ${result.reason}${result.mayHaveLanded ? ' (the create may have landed: a redelivery re-uses the name)' : ''}`,
            ...(result.retryAfterSeconds ? { retryAfterSeconds: result.retryAfterSeconds } : {}),
          });
        }
        if (!result.mayHaveLanded) await releaseClaim(claim, deps);
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

/**
 * The submissions metric: by template, result and HTTP code (403 is RBAC, 404 a missing template,
 * …), and with --clusters by cluster. Without, the series carry no cluster label at all, exactly
 * as before (Prometheus reads a missing label and an empty one alike).
 */
function count(
  result: Exclude<SubmitResult, { kind: 'not_sent' }>,
  params: { workflowTemplate?: string; workflowName?: string },
  cluster: string | undefined,
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
  const where = cluster === undefined ? {} : { cluster };
  deps.metrics.submitDuration.observe({ result: kind, ...where }, seconds);
  deps.metrics.submissions.inc({
    template: params.workflowTemplate ?? params.workflowName ?? '',
    result: kind,
    code,
    ...where,
  });
}

/**
 * Not awaited: the answer need not wait for another round trip to Redis. The first write is
 * queued at once on the store's connection, ahead of anything this replica asks later, and
 * closing the store waits for it; a write that fails is retried (settle.ts) while this replica
 * answers for the key itself.
 */
function settleInBackground(
  claim: Claim | null,
  settlement: Settlement,
  fingerprint: string,
  cooldownMs: number,
  deps: SubmitDeps,
): void {
  if (!claim) return;
  settleClaim(claim, settlement, fingerprint, cooldownMs, deps).then(
    () => undefined,
    (err: unknown) => deps.logger.error({ err, key: claim.key }, 'settling the cooldown failed unexpectedly'),
  );
}
