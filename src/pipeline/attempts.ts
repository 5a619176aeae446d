import type { Logger } from 'pino';
import { type Decision, decide } from '../decision.js';
import { keyHash } from '../kube/workflow.js';
import { type Attempt, type RemediationState, remediationId } from '../remediation/model.js';
import { formatDuration } from '../rules/duration.js';
import type { CooldownStore } from '../stores/cooldown-store.js';
import { StoreUnavailableError } from '../stores/cooldown-store.js';
import type { ClusterRecord, KeyedWorkflow } from './cluster-record.js';
import { type GuardDeps, releaseClaim, STORE_UNAVAILABLE } from './guard.js';
import type { Claimed, Stage } from './stage.js';

export interface AttemptDeps extends GuardDeps {
  /** The cluster as the record of what was done; absent in dry-run (nothing was created). */
  cluster?: ClusterRecord;
  settings: GuardDeps['settings'] & { workflowNamespace: string };
  /** A spent budget: the escalation KubeSentinelRemediationExhausted (once per spent budget). */
  exhausted?: (draft: Claimed, attempts: readonly DescribedAttempt[]) => Promise<void>;
  logger: Logger;
}

/** An attempt with what became of it, for the reason of an `escalated` decision: `submitted` when only the store's count knows of it. */
export interface DescribedAttempt extends Attempt {
  state: RemediationState | 'submitted';
}

/** What the cluster knows of the draft's key, carried from the cooldown check to the budget. */
export interface Recalled extends Claimed {
  inCluster: readonly KeyedWorkflow[];
}

function namespaceOf(draft: Claimed, deps: AttemptDeps): string {
  return draft.rule.remediation.params.namespace ?? deps.settings.workflowNamespace;
}

/**
 * The cluster is the record of what was done; Redis only coordinates. A claim just taken means
 * the store knows of no Workflow for the key — but Redis may have restarted empty, been flushed
 * or failed over. So before creating, the Workflows labelled with the key's hash are looked at:
 * one younger than the cooldown (or still waiting for approval) makes the decision `cooldown`,
 * and the claim is repaired to stand for it. A claim re-used by a redelivery was looked at when
 * it was taken.
 */
export function recallFromCluster(deps: AttemptDeps): Stage<Claimed, Recalled> {
  return async (draft) => {
    const { cluster } = deps;
    if (!cluster || !draft.claim?.ownedByUs) return { ...draft, inCluster: [] };
    let inCluster: KeyedWorkflow[];
    try {
      inCluster = await cluster.workflowsOf(namespaceOf(draft, deps), keyHash(draft.cooldownKey), draft.cluster);
    } catch (err) {
      await releaseClaim(draft.claim, deps);
      return decide(draft.alert, draft.rule, 'retry', {
        cooldownKey: draft.cooldownKey,
        reason: `kubernetes: could not look for this key's Workflows: ${(err as Error).message}`,
      });
    }
    const now = deps.now();
    const { cooldownMs, approvalTimeoutMs } = draft.rule.remediation;
    const candidates = inCluster
      .filter((workflow) => workflow.name !== draft.workflowName)
      .filter((workflow) => now - workflow.createdAt < cooldownMs || workflow.state === 'awaiting_approval');
    // A cooldown ended by hand (DELETE /v1/cooldowns) is not held again by the Workflows from before.
    const endedAt = candidates.length === 0 ? null : await endedAtOf(draft, deps);
    const holding = candidates
      .filter((workflow) => endedAt === null || workflow.createdAt > endedAt)
      .sort((a, b) => b.createdAt - a.createdAt)[0];
    if (!holding) return { ...draft, inCluster };
    const until = Math.max(
      holding.createdAt + cooldownMs,
      holding.state === 'awaiting_approval' ? holding.createdAt + approvalTimeoutMs : 0,
    );
    try {
      const repaired = await deps.store.replace(
        draft.cooldownKey,
        draft.workflowName,
        {
          workflowName: holding.name,
          fingerprint: draft.alert.fingerprint,
          state: 'committed',
          claimedAt: holding.createdAt,
        },
        Math.max(1000, until - now),
      );
      if (repaired) {
        deps.local.remember(draft.cooldownKey, { workflowName: holding.name, until, dryRun: false }, now);
      }
    } catch (err) {
      // The claim stays pending and expires by itself; the cluster still answers for the key.
      if (!(err instanceof StoreUnavailableError)) throw err;
      deps.metrics.storeErrors.inc({ operation: 'repair' });
    }
    deps.logger.warn(
      { key: draft.cooldownKey, workflow: `${holding.namespace}/${holding.name}` },
      'the cooldown store had forgotten a Workflow the cluster still has; claim repaired',
    );
    return decide(draft.alert, draft.rule, 'cooldown', {
      cooldownKey: draft.cooldownKey,
      reason: `${holding.name} was submitted ${ago(now - holding.createdAt)} ago (found in the cluster)`,
    });
  };
}

/** When the key's cooldown was last ended by hand; null when never, or when the store cannot say (nothing is ignored then). */
async function endedAtOf(draft: Claimed, deps: AttemptDeps): Promise<number | null> {
  try {
    return await deps.store.cooldownEndedAt(draft.cooldownKey);
  } catch (err) {
    if (!(err instanceof StoreUnavailableError)) throw err;
    deps.metrics.storeErrors.inc({ operation: 'cooldown_ended' });
    return null;
  }
}

/**
 * The loop breaker (SPEC §9): at most max_attempts Workflows per cooldown key within
 * attempt_window, whatever became of them. Attempts are those the store counted and those the
 * cluster still has, so neither a flushed Redis nor a Workflow deleted by its TTL hides one.
 * A spent budget is `escalated`: no Workflow, the claim given back, a person told.
 */
export function spendAttempt(deps: AttemptDeps & { store: CooldownStore }): Stage<Recalled, Claimed> {
  return async (draft) => {
    const { inCluster, ...claimed } = draft;
    const { maxAttempts, attemptWindowMs } = draft.rule.remediation;
    if (maxAttempts === 0 || !draft.claim) return claimed;
    const now = deps.now();
    let counted: Attempt[];
    try {
      counted = await deps.store.listAttempts(draft.cooldownKey, attemptWindowMs);
    } catch (err) {
      if (!(err instanceof StoreUnavailableError)) throw err;
      deps.metrics.storeErrors.inc({ operation: 'attempts' });
      if (deps.settings.cooldownStoreFailure === 'open') return claimed;
      await releaseClaim(draft.claim, deps);
      return decide(draft.alert, draft.rule, 'retry', { cooldownKey: draft.cooldownKey, reason: STORE_UNAVAILABLE });
    }
    // A redelivery re-using its pending claim is the same attempt, whether or not its Workflow was
    // counted already (an HA twin of the notification, a commit lost after the count landed).
    const own = remediationId(namespaceOf(draft, deps), draft.workflowName, draft.cluster);
    const attempts = new Map<string, DescribedAttempt>();
    for (const attempt of counted) attempts.set(attempt.workflow, { ...attempt, state: 'submitted' });
    for (const workflow of inCluster) {
      if (now - workflow.createdAt >= attemptWindowMs) continue;
      const id = remediationId(workflow.namespace, workflow.name, draft.cluster);
      attempts.set(id, { workflow: id, at: workflow.createdAt, state: workflow.state });
    }
    attempts.delete(own);
    if (attempts.size < maxAttempts) return { ...claimed, attempt: attempts.size + 1 };
    await releaseClaim(draft.claim, deps);
    const described = await describe(
      [...attempts.values()].sort((a, b) => a.at - b.at),
      deps.store,
    );
    if (deps.exhausted) await deps.exhausted(claimed, described);
    return escalated(claimed, described, maxAttempts, attemptWindowMs, now);
  };
}

/** The states the store recorded for attempts the cluster no longer shows (best effort). */
async function describe(attempts: DescribedAttempt[], store: CooldownStore): Promise<DescribedAttempt[]> {
  return Promise.all(
    attempts.map(async (attempt) => {
      if (attempt.state !== 'submitted') return attempt;
      try {
        const recorded = await store.getRemediation(attempt.workflow);
        return recorded ? { ...attempt, state: recorded.state } : attempt;
      } catch {
        return attempt;
      }
    }),
  );
}

function escalated(
  draft: Claimed,
  attempts: readonly DescribedAttempt[],
  maxAttempts: number,
  windowMs: number,
  now: number,
): Decision {
  const list = attempts
    .map((attempt) => `${attempt.workflow} ${attempt.state} ${ago(now - attempt.at)} ago`)
    .join(', ');
  return decide(draft.alert, draft.rule, 'escalated', {
    cooldownKey: draft.cooldownKey,
    reason: `attempt budget spent: ${attempts.length} of ${maxAttempts} within ${formatDuration(windowMs)} (${list})`,
  });
}

/** An age to the second: `1m23s`. */
function ago(ms: number): string {
  return formatDuration(Math.max(0, Math.round(ms / 1000) * 1000));
}
