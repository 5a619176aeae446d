import type { Logger } from 'pino';
import { own } from '../alert.js';
import { type Decision, decide } from '../decision.js';
import { type Pause, type PauseTarget, pauseCovering, pausedReason } from '../pause.js';
import { StoreUnavailableError } from '../stores/cooldown-store.js';
import { workloadOf } from './cooldown-key.js';
import { type GuardDeps, type GuardSettings, releaseClaim, returnRateSlot, STORE_UNAVAILABLE } from './guard.js';
import type { LocalPauses } from './local-pauses.js';
import type { Metrics } from './metrics.js';
import type { Claimed, Stage, Targeted } from './stage.js';

export interface PauseDeps {
  /** Absent: nothing is ever paused (explain and test offline, which have no receiver's pauses). */
  pauses?: LocalPauses;
  settings: Pick<GuardSettings, 'cooldownStoreFailure'>;
  metrics: Metrics;
  logger: Logger;
  now: () => number;
}

/** What a pause is compared with: the alert's namespace label, its rule, its workload and its routed cluster. */
export function pauseTargetOf(draft: Targeted): PauseTarget {
  return {
    // An empty label counts as absent, as it does in Alertmanager.
    namespace: own(draft.alert.labels, 'namespace') || null,
    rule: draft.rule.name,
    workload: workloadOf(draft.alert.labels),
    cluster: draft.cluster ?? null,
    pod: own(draft.alert.labels, 'pod') || null,
  };
}

/** The pause that covers the draft's alert now, if any (nothing to compare without pauses). */
function coveringPause(draft: Targeted, pauses: readonly Pause[] | undefined, now: number): Pause | undefined {
  if (!pauses || pauses.length === 0) return undefined;
  return pauseCovering(pauses, pauseTargetOf(draft), now);
}

function pausedDecision(draft: Targeted, pause: Pause): Decision {
  return decide(draft.alert, draft.rule, 'paused', { cooldownKey: draft.cooldownKey, reason: pausedReason(pause) });
}

function decideAgainst(draft: Targeted, pauses: readonly Pause[], now: number): Targeted | Decision {
  const pause = coveringPause(draft, pauses, now);
  return pause ? pausedDecision(draft, pause) : draft;
}

/**
 * An alert a pause covers is `paused` (SPEC §11), before anything is claimed: it holds no cooldown
 * and spends no budget, so the first alert after the pause acts at once. The pauses come from this
 * replica's copy, with no round trip; while the copy was never loaded and cannot be, the alert is
 * `retry` as when the cooldown store is down (or, with --cooldown-store-failure=open, decided
 * without pauses).
 */
export function checkPauses(deps: PauseDeps): Stage<Targeted, Targeted> {
  const { pauses } = deps;
  if (!pauses) return (draft) => draft;
  return (draft) => {
    const loaded = pauses.current;
    if (loaded) return decideAgainst(draft, loaded, deps.now());
    return pauses.load().then(
      (firstLoaded) => decideAgainst(draft, firstLoaded, deps.now()),
      (err: unknown) => {
        if (!(err instanceof StoreUnavailableError)) throw err;
        deps.metrics.storeErrors.inc({ operation: 'pauses' });
        deps.logger.warn({ err: err.message, operation: 'pauses' }, 'cooldown store unavailable');
        if (deps.settings.cooldownStoreFailure === 'open') return draft;
        return decide(draft.alert, draft.rule, 'retry', { cooldownKey: draft.cooldownKey, reason: STORE_UNAVAILABLE });
      },
    );
  };
}

/**
 * The same check again just before the Workflow is built and created: a pause answered 201 while
 * an alert it covers was on its way (its opt-out read, its claim, the cluster's answer may each
 * take up to --submit-timeout) must still stop it. From the copy alone; what the alert took on
 * the way (its own claim, its rate slot) is given back, so the first alert after the pause acts.
 */
export function recheckPauses(deps: PauseDeps & GuardDeps): Stage<Claimed, Claimed> {
  const { pauses } = deps;
  if (!pauses) return (draft) => draft;
  // Synchronous unless a pause covers the alert: the stages await only what is a promise.
  return (draft) => {
    const pause = coveringPause(draft, pauses.current, deps.now());
    if (!pause) return draft;
    return releaseClaim(draft.claim, deps)
      .then(() => returnRateSlot(draft.rateWindow, deps))
      .then(() => pausedDecision(draft, pause));
  };
}
