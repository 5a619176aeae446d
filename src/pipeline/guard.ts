import type { Logger } from 'pino';
import { type Decision, decide } from '../decision.js';
import type { WorkflowSubmitter } from '../kube/client.js';
import { type CooldownClaim, type CooldownStore, StoreUnavailableError } from '../stores/cooldown-store.js';
import { workflowNameFor } from './cooldown-key.js';
import type { Metrics } from './metrics.js';
import type { Claim, Claimed, Stage, Targeted } from './stage.js';

export interface GuardSettings {
  cooldownStoreFailure: 'closed' | 'open';
  maxWorkflowsPerMinute: number;
  pendingLeaseMs: number;
}

export interface GuardDeps {
  store: CooldownStore;
  settings: GuardSettings;
  metrics: Metrics;
  logger: Logger;
  now: () => number;
  /** The pipeline's submitter: the claims of a dry-run one say that nothing is submitted. */
  submitter?: Pick<WorkflowSubmitter, 'mode'>;
}

const RATE_WINDOW_MS = 60_000;

/** The reason of a `retry` because the store did not answer; the audit write is skipped then (it would wait out a second timeout). */
export const STORE_UNAVAILABLE = 'cooldown store unavailable';

/** Counts and logs a store that did not answer, and says whether to go on without it; any other error is rethrown. */
function storeFailure(deps: GuardDeps, operation: string, err: unknown): 'open' | 'closed' {
  if (!(err instanceof StoreUnavailableError)) throw err;
  deps.metrics.storeErrors.inc({ operation });
  deps.logger.warn({ err: err.message, operation }, 'cooldown store unavailable');
  return deps.settings.cooldownStoreFailure;
}

function storeUnavailable(draft: Targeted): Decision {
  return decide(draft.alert, draft.rule, 'retry', { cooldownKey: draft.cooldownKey, reason: STORE_UNAVAILABLE });
}

function inCooldown(draft: Targeted, held: CooldownClaim): Decision {
  const name = held.workflowName;
  const reason = held.dryRun
    ? `${name} ${held.state === 'pending' ? 'is being' : 'was'} dry-run (not submitted)`
    : `${name} ${held.state === 'pending' ? 'is being' : 'was'} submitted`;
  return decide(draft.alert, draft.rule, 'cooldown', { cooldownKey: draft.cooldownKey, reason });
}

/**
 * Claims the cooldown key before submitting, so that no replica remediates the same workload twice
 * in a window. A pending claim left by the same alert (a redelivery after a transient failure, or
 * the HA twin of this notification) is re-used with its Workflow name.
 */
export function claimCooldown(deps: GuardDeps): Stage<Targeted, Claimed> {
  return async (draft) => {
    const { alert, rule, cooldownKey: key } = draft;
    const claimedAt = deps.now();
    const ourName = workflowNameFor(rule, key, claimedAt);
    let claim: Claim | null;
    try {
      const claimed: CooldownClaim = {
        workflowName: ourName,
        fingerprint: alert.fingerprint,
        state: 'pending',
        claimedAt,
        ...(deps.submitter?.mode === 'dry-run' ? { dryRun: true } : {}),
      };
      const result = await deps.store.claim(key, claimed, deps.settings.pendingLeaseMs);
      if (result.acquired) claim = { key, workflowName: ourName, ownedByUs: true };
      else if (result.existing.state === 'pending' && result.existing.fingerprint === alert.fingerprint) {
        claim = { key, workflowName: result.existing.workflowName, ownedByUs: false };
      } else return inCooldown(draft, result.existing);
    } catch (err) {
      if (storeFailure(deps, 'claim', err) === 'closed') return storeUnavailable(draft);
      claim = null;
    }
    return { ...draft, workflowName: claim?.workflowName ?? ourName, claim };
  };
}

/**
 * Explain: the claim's answer without taking it. The cooldown is peeked at, never claimed; the
 * rate limit is not consulted (it cannot be peeked at without taking a slot).
 */
export function peekCooldown(deps: GuardDeps): Stage<Targeted, Claimed> {
  return async (draft) => {
    let workflowName = workflowNameFor(draft.rule, draft.cooldownKey, deps.now());
    try {
      const held = await deps.store.peek(draft.cooldownKey);
      if (held) {
        if (held.state !== 'pending' || held.fingerprint !== draft.alert.fingerprint) return inCooldown(draft, held);
        workflowName = held.workflowName;
      }
    } catch (err) {
      if (storeFailure(deps, 'peek', err) === 'closed') return storeUnavailable(draft);
    }
    return { ...draft, workflowName, claim: null };
  };
}

/**
 * The storm guard: a budget of Workflows per minute shared by every replica. A refused alert gives
 * its claim back, so the next notification can act once the budget allows.
 */
export function limitRate(deps: GuardDeps): Stage<Claimed, Claimed> {
  const limit = deps.settings.maxWorkflowsPerMinute;
  if (limit === 0) return (draft) => draft;
  return async (draft) => {
    let allowed: boolean;
    try {
      allowed = await deps.store.takeRateSlot(limit, RATE_WINDOW_MS);
    } catch (err) {
      if (storeFailure(deps, 'rate_limit', err) === 'closed') {
        await releaseClaim(draft.claim, deps);
        return storeUnavailable(draft);
      }
      allowed = true;
    }
    if (allowed) return draft;
    await releaseClaim(draft.claim, deps);
    return decide(draft.alert, draft.rule, 'rate_limited', {
      cooldownKey: draft.cooldownKey,
      reason: `more than ${limit} workflows in the last minute`,
    });
  };
}

/** Gives up a claim this decision took itself; one re-used from a redelivery may be mid-submit elsewhere. */
export async function releaseClaim(claim: Claim | null, deps: GuardDeps): Promise<void> {
  if (!claim?.ownedByUs) return;
  try {
    await deps.store.release(claim.key, claim.workflowName);
  } catch (err) {
    // The pending lease expires by itself; nothing is lost, the key is only held a little longer.
    storeFailure(deps, 'release', err);
  }
}
