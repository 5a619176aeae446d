import type { Logger } from 'pino';
import type { Metrics } from '../metrics.js';
import type { Rule } from '../rules/types.js';
import { StoreUnavailableError, type CooldownClaim, type CooldownStore } from '../stores/cooldown-store.js';
import type { Alert } from './alert.js';
import { workflowNameFor } from './cooldown-key.js';
import { decide, type Decision } from './decision.js';
import { Outcome } from './outcome.js';

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
}

/** What the guard hands to submit: the Workflow name, and whether a claim must be committed or released. */
export interface Pass {
  workflowName: string;
  /** The claim this decision holds (its own, or a pending one re-used by a redelivery); null without a guard. */
  claim: { key: string; workflowName: string; ownedByUs: boolean } | null;
}

const RATE_WINDOW_MS = 60_000;

/** The reason of a `retry` because the store did not answer; the audit write is skipped then (it would wait out a second timeout). */
export const STORE_UNAVAILABLE = 'cooldown store unavailable';

function storeFailure(deps: GuardDeps, operation: string, err: unknown): 'open' | 'closed' {
  if (!(err instanceof StoreUnavailableError)) throw err;
  deps.metrics.storeErrors.inc({ operation });
  deps.logger.warn({ err: err.message, operation }, 'cooldown store unavailable');
  return deps.settings.cooldownStoreFailure;
}

/**
 * Stage 3 (ingest): claim the cooldown key before submitting, so that no replica remediates the
 * same workload twice in a window. A pending claim left by the same alert (a redelivery after a
 * transient failure, or the HA twin of this notification) is re-used with its Workflow name.
 */
export async function guardStage(alert: Alert, rule: Rule, key: string, deps: GuardDeps): Promise<Decision | Pass> {
  const claimedAt = deps.now();
  const ourName = workflowNameFor(rule, key, claimedAt);
  let pass: Pass;
  try {
    const result = await deps.store.claim(
      key,
      { workflowName: ourName, fingerprint: alert.fingerprint, state: 'pending', claimedAt },
      deps.settings.pendingLeaseMs,
    );
    if (result.acquired) {
      pass = { workflowName: ourName, claim: { key, workflowName: ourName, ownedByUs: true } };
    } else {
      const held = result.existing;
      if (held.state === 'pending' && held.fingerprint === alert.fingerprint) {
        pass = { workflowName: held.workflowName, claim: { key, workflowName: held.workflowName, ownedByUs: false } };
      } else {
        return inCooldown(alert, rule, key, held);
      }
    }
  } catch (err) {
    if (storeFailure(deps, 'claim', err) === 'closed') {
      return decide(alert, rule, Outcome.Retry, { cooldownKey: key, reason: STORE_UNAVAILABLE });
    }
    pass = { workflowName: ourName, claim: null };
  }

  if (deps.settings.maxWorkflowsPerMinute > 0) {
    let allowed: boolean;
    try {
      allowed = await deps.store.takeRateSlot(deps.settings.maxWorkflowsPerMinute, RATE_WINDOW_MS);
    } catch (err) {
      if (storeFailure(deps, 'rate_limit', err) === 'closed') {
        await releaseQuietly(pass, deps);
        return decide(alert, rule, Outcome.Retry, { cooldownKey: key, reason: STORE_UNAVAILABLE });
      }
      allowed = true;
    }
    if (!allowed) {
      await releaseQuietly(pass, deps);
      return decide(alert, rule, Outcome.RateLimited, {
        cooldownKey: key,
        reason: `more than ${deps.settings.maxWorkflowsPerMinute} workflows in the last minute`,
      });
    }
  }
  return pass;
}

/**
 * Explain: the same decision without side effects. The cooldown is peeked at, never claimed,
 * and the rate limit is not consulted (it cannot be peeked at without taking a slot).
 */
export async function peekStage(alert: Alert, rule: Rule, key: string, deps: GuardDeps): Promise<Decision | Pass> {
  const ourName = workflowNameFor(rule, key, deps.now());
  try {
    const held = await deps.store.peek(key);
    if (!held) return { workflowName: ourName, claim: null };
    if (held.state === 'pending' && held.fingerprint === alert.fingerprint) return { workflowName: held.workflowName, claim: null };
    return inCooldown(alert, rule, key, held);
  } catch (err) {
    if (storeFailure(deps, 'peek', err) === 'closed') {
      return decide(alert, rule, Outcome.Retry, { cooldownKey: key, reason: STORE_UNAVAILABLE });
    }
    return { workflowName: ourName, claim: null };
  }
}

function inCooldown(alert: Alert, rule: Rule, key: string, held: CooldownClaim): Decision {
  return decide(alert, rule, Outcome.Cooldown, {
    cooldownKey: key,
    reason: held.state === 'pending' ? `${held.workflowName} is being submitted` : `${held.workflowName} was submitted`,
  });
}

/** Gives up a claim this decision took itself; one re-used from a redelivery may be mid-submit elsewhere. */
export async function releaseQuietly(pass: Pass, deps: GuardDeps): Promise<void> {
  if (!pass.claim?.ownedByUs) return;
  try {
    await deps.store.release(pass.claim.key, pass.claim.workflowName);
  } catch (err) {
    // The pending lease expires by itself; nothing is lost, the key is only held a little longer.
    storeFailure(deps, 'release', err);
  }
}
