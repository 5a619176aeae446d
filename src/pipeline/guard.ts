import type { Logger } from 'pino';
import { type Decision, decide } from '../decision.js';
import type { WorkflowSubmitter } from '../kube/client.js';
import { type CooldownClaim, type CooldownStore, StoreUnavailableError } from '../stores/cooldown-store.js';
import { workflowNameFor } from './cooldown-key.js';
import { heldForMs, type LocalCooldowns } from './local-cooldowns.js';
import type { Metrics } from './metrics.js';
import type { UnsettledClaim, UnsettledClaims } from './settle.js';
import { type Claim, type Claimed, isDecision, type Stage, type Targeted } from './stage.js';

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
  /** Keys whose commit (or hold) is still being written: answered from here meanwhile. */
  unsettled: UnsettledClaims;
  /** Committed cooldowns this replica has seen, answered without the store until they expire. */
  local: LocalCooldowns;
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

/** A committed cooldown this replica remembers: `cooldown` without asking the store. */
function fromLocal(draft: Targeted, deps: GuardDeps, now: number): Decision | undefined {
  const held = deps.local.get(draft.cooldownKey, now);
  if (!held) return undefined;
  const reason = held.dryRun
    ? `${held.workflowName} was dry-run (not submitted)`
    : `${held.workflowName} was submitted`;
  return decide(draft.alert, draft.rule, 'cooldown', { cooldownKey: draft.cooldownKey, reason });
}

/**
 * A committed claim the store answered with is remembered until it expires: its TTL ran from
 * when it was written, which is no earlier than claimedAt, so claimedAt + the rule's hold never
 * outlasts it.
 */
function rememberCommitted(draft: Targeted, held: CooldownClaim, deps: GuardDeps, askedAt: number): void {
  if (held.state !== 'committed') return;
  const workflowName = held.workflowName;
  deps.local.remember(
    draft.cooldownKey,
    { workflowName, until: held.claimedAt + heldForMs(draft.rule), dryRun: held.dryRun === true },
    askedAt,
  );
}

/**
 * A key whose settlement this replica is still writing to the store: the alert whose create may
 * have landed re-uses the name; any other alert is in cooldown.
 */
function fromUnsettled(draft: Targeted, held: UnsettledClaim): Claim | Decision {
  if (held.settlement === 'hold' && held.fingerprint === draft.alert.fingerprint) {
    return { key: draft.cooldownKey, workflowName: held.workflowName, ownedByUs: false };
  }
  return decide(draft.alert, draft.rule, 'cooldown', {
    cooldownKey: draft.cooldownKey,
    reason:
      held.settlement === 'commit'
        ? `${held.workflowName} was submitted`
        : `${held.workflowName} may have been created (its create timed out)`,
  });
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
    const unsettled = deps.unsettled.get(key, claimedAt);
    if (unsettled) {
      const local = fromUnsettled(draft, unsettled);
      if (isDecision(local)) return local;
      return { ...draft, workflowName: local.workflowName, claim: local };
    }
    const remembered = fromLocal(draft, deps, claimedAt);
    if (remembered) {
      deps.metrics.localCooldowns.inc();
      return remembered;
    }
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
      } else {
        rememberCommitted(draft, result.existing, deps, claimedAt);
        return inCooldown(draft, result.existing);
      }
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
    const unsettled = deps.unsettled.get(draft.cooldownKey, deps.now());
    if (unsettled) {
      const local = fromUnsettled(draft, unsettled);
      return isDecision(local) ? local : { ...draft, workflowName: local.workflowName, claim: null };
    }
    const remembered = fromLocal(draft, deps, deps.now());
    if (remembered) return remembered;
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
    let window: number | null;
    try {
      window = await deps.store.takeRateSlot(limit, RATE_WINDOW_MS);
      if (window !== null) return { ...draft, rateWindow: window };
    } catch (err) {
      if (storeFailure(deps, 'rate_limit', err) === 'closed') {
        await releaseClaim(draft.claim, deps);
        return storeUnavailable(draft);
      }
      return draft;
    }
    await releaseClaim(draft.claim, deps);
    return decide(draft.alert, draft.rule, 'rate_limited', {
      cooldownKey: draft.cooldownKey,
      reason: `more than ${limit} workflows in the last minute`,
    });
  };
}

/**
 * Gives back the rate slot of a create that certainly made no Workflow (an answered failure), so
 * that failures do not spend the budget and starve the alerts that come once the API recovers.
 */
export async function returnRateSlot(window: number | undefined, deps: GuardDeps): Promise<void> {
  if (window === undefined) return;
  try {
    await deps.store.returnRateSlot(window, RATE_WINDOW_MS);
  } catch (err) {
    // The slot stays spent until its window ends: a little less budget, nothing lost.
    storeFailure(deps, 'rate_limit', err);
  }
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
