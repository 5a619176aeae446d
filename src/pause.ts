import { type Static, Type } from '@sinclair/typebox';

/**
 * A pause (SPEC §11): while it is in force, every alert it covers is decided `paused`, before any
 * cooldown is claimed or anything is created. Alertmanager's silences never see what Prometheus
 * and the Loki ruler post to /api/v2/alerts; a pause does.
 *
 * Its selectors are ANDed: it covers an alert when every selector it has equals the alert's.
 * A pause with no selector covers every alert.
 */
export const Pause = Type.Object({
  id: Type.String(),
  /** The alert's `namespace` label. */
  namespace: Type.Optional(Type.String()),
  /** The name of the rule that matched the alert. */
  rule: Type.Optional(Type.String()),
  /**
   * The alert's workload (a deployment, statefulset, daemonset or job_name label, else its pod
   * without generated suffixes), or the exact name of its pod: one pod can be paused by the name
   * `kubectl get pods` shows.
   */
  workload: Type.Optional(Type.String()),
  /** With --clusters, the cluster the alert is routed to. */
  cluster: Type.Optional(Type.String()),
  reason: Type.String(),
  createdBy: Type.String(),
  createdAt: Type.String({ format: 'date-time' }),
  expiresAt: Type.String({ format: 'date-time' }),
});
export type Pause = Static<typeof Pause>;

/** The fields of a pause that say what it covers, each compared with the alert's own. */
export const PAUSE_SELECTORS = ['namespace', 'rule', 'workload', 'cluster'] as const;
export type PauseSelector = (typeof PAUSE_SELECTORS)[number];

/**
 * What a pause is compared with: null where the alert has none (no namespace label, no workload,
 * one cluster); `pod`, the alert's pod label, which a pause's workload may name too.
 */
export type PauseTarget = Record<PauseSelector, string | null> & { pod?: string | null };

const REQUIRED_TEXT = ['id', 'reason', 'createdBy', 'createdAt', 'expiresAt'] as const;

/**
 * A value read back from a store is a pause: its fields are text where they must be. (TypeBox's
 * own check would need the date-time format registered, which the stores do not do.)
 */
export function isPause(value: unknown): value is Pause {
  if (typeof value !== 'object' || value === null) return false;
  const fields = value as Record<string, unknown>;
  return (
    REQUIRED_TEXT.every((name) => typeof fields[name] === 'string') &&
    PAUSE_SELECTORS.every((name) => fields[name] === undefined || typeof fields[name] === 'string')
  );
}

/** True when every selector the pause has equals the target's (a pause without selectors covers everything). */
function pauseCovers(pause: Pause, target: PauseTarget): boolean {
  for (const selector of PAUSE_SELECTORS) {
    const wanted = pause[selector];
    if (wanted === undefined || wanted === target[selector]) continue;
    if (selector !== 'workload' || wanted !== target.pod) return false;
  }
  return true;
}

/**
 * The pause in force at `now` (epoch ms) that covers the target, or undefined. Of several, the
 * one that ends last: it is the one that says how long the alert stays paused.
 */
export function pauseCovering(pauses: readonly Pause[], target: PauseTarget, now: number): Pause | undefined {
  let found: Pause | undefined;
  let foundUntil = Number.NEGATIVE_INFINITY;
  for (const pause of pauses) {
    const until = Date.parse(pause.expiresAt);
    // An unreadable expiresAt (NaN) is never in force.
    if (!(until > now) || until <= foundUntil || !pauseCovers(pause, target)) continue;
    found = pause;
    foundUntil = until;
  }
  return found;
}

/** The reason of a `paused` decision: which pause, who set it, why and until when. */
export function pausedReason(pause: Pause): string {
  return `paused until ${pause.expiresAt} by ${pause.createdBy}: ${pause.reason} (pause ${pause.id})`;
}
