/**
 * The closed loop's part of the memory store (SPEC §9): remediations, attempts and escalations,
 * with the Redis store's semantics. Time is the store's injected clock; what has expired is
 * purged when it is touched, and the rest is swept as the maps grow, so memory stays bounded.
 */
import {
  type Attempt,
  type EscalationAlert,
  FINAL_STATES,
  type Remediation,
  type RemediationState,
  STATE_RANK,
} from '../remediation/model.js';
import {
  type EscalationSelection,
  listedAtMost,
  newestOpenedFirst,
  type OpenEscalation,
  REFUSED_MARKER,
} from './cooldown-store.js';

/** The memory store keeps at most this many remediations by default; past it the oldest submitted goes. */
export const MAX_REMEDIATIONS = 10_000;

/** Below this many keys a sweep is not worth a full scan. */
const MIN_SWEEP_THRESHOLD = 1024;

interface KeptRemediation {
  remediation: Remediation;
  submittedAt: number;
  expiresAt: number;
  /** False once submitted before the retention: still found by get, as Redis trims only its index. */
  listed: boolean;
  /** State → its marker. Kept with the record: a marker never outlives it here. */
  markers: Map<RemediationState, Marker>;
}

interface Marker {
  /** The recording call's token ('1' without one), REFUSED_MARKER for a refused state. */
  value: string;
  expiresAt: number;
}

/**
 * What became of one call of recordTransition: `recorded` writes the audit entry, `retried` (a
 * retry of the call that recorded it, by its token) answers true and writes nothing again.
 */
export type TransitionOutcome = 'recorded' | 'retried' | 'refused';

export class RemediationBook {
  private readonly kept = new Map<string, KeptRemediation>();

  private readonly maxKept: number;

  constructor(maxKept = MAX_REMEDIATIONS) {
    this.maxKept = Math.max(1, Math.floor(maxKept));
  }

  /**
   * As recordTransition, without the audit entry. `marker`: what the marker of a recorded state
   * holds (the token, or '1'); `token`: the caller's, when it gave one.
   */
  record(
    remediation: Remediation,
    submittedAt: number,
    retentionMs: number,
    now: number,
    marker: string,
    token: string | undefined,
  ): TransitionOutcome {
    const current = this.live(remediation.workflow, now);
    const state = remediation.state;
    const held = current?.markers.get(state);
    if (held && held.expiresAt > now) return token !== undefined && held.value === token ? 'retried' : 'refused';
    const expiresAt = now + retentionMs;
    if (current) {
      const stored = current.remediation.state;
      if (STATE_RANK[stored] > STATE_RANK[state] || (FINAL_STATES.has(stored) && stored !== state)) {
        current.markers.set(state, { value: REFUSED_MARKER, expiresAt });
        return 'refused';
      }
      current.markers.set(state, { value: marker, expiresAt });
    }
    const markers = current?.markers ?? new Map([[state, { value: marker, expiresAt }]]);
    this.kept.set(remediation.workflow, { remediation, submittedAt, expiresAt, listed: true, markers });
    this.trim(now - retentionMs, now);
    return 'recorded';
  }

  list(limit: number, state: RemediationState | undefined, now: number): Remediation[] {
    const wanted = Math.max(0, Math.floor(limit));
    if (wanted === 0) return [];
    const live: KeptRemediation[] = [];
    for (const [workflow, kept] of this.kept) {
      if (kept.expiresAt <= now) this.kept.delete(workflow);
      else if (kept.listed && (state === undefined || kept.remediation.state === state)) live.push(kept);
    }
    // As Redis orders a sorted set read backwards: equal times by the Workflow, descending.
    live.sort(
      (a, b) =>
        b.submittedAt - a.submittedAt ||
        (a.remediation.workflow < b.remediation.workflow
          ? 1
          : a.remediation.workflow > b.remediation.workflow
            ? -1
            : 0),
    );
    return live.slice(0, wanted).map((kept) => structuredClone(kept.remediation));
  }

  get(workflow: string, now: number): Remediation | null {
    const kept = this.live(workflow, now);
    return kept ? structuredClone(kept.remediation) : null;
  }

  private live(workflow: string, now: number): KeptRemediation | undefined {
    const kept = this.kept.get(workflow);
    if (kept && kept.expiresAt <= now) {
      this.kept.delete(workflow);
      return undefined;
    }
    return kept;
  }

  /**
   * Drops what expired, stops listing what was submitted before `oldest` (Redis trims its index
   * so), then drops the oldest submitted past the cap.
   */
  private trim(oldest: number, now: number): void {
    let first: KeptRemediation | undefined;
    for (const [workflow, kept] of this.kept) {
      if (kept.expiresAt <= now) this.kept.delete(workflow);
      else {
        if (kept.submittedAt < oldest) kept.listed = false;
        if (!first || kept.submittedAt < first.submittedAt) first = kept;
      }
    }
    if (this.kept.size > this.maxKept && first) this.kept.delete(first.remediation.workflow);
  }
}

interface KeyAttempts {
  /** Oldest first. */
  attempts: Attempt[];
  expiresAt: number;
}

export class AttemptBook {
  private readonly keys = new Sweeping<KeyAttempts>();

  add(key: string, attempt: Attempt, windowMs: number, now: number): void {
    const agedOut = now - windowMs;
    const kept = this.keys.live(key, now)?.attempts.filter((earlier) => earlier.at > agedOut) ?? [];
    if (!kept.some((earlier) => earlier.workflow === attempt.workflow)) {
      kept.push({ workflow: attempt.workflow, at: attempt.at });
      kept.sort((a, b) => a.at - b.at);
    }
    const expiresAt = Math.max(this.keys.live(key, now)?.expiresAt ?? 0, now + windowMs);
    this.keys.set(key, { attempts: kept, expiresAt }, now);
  }

  list(key: string, windowMs: number, now: number): Attempt[] {
    const agedOut = now - windowMs;
    const attempts = this.keys.live(key, now)?.attempts ?? [];
    return attempts.filter((attempt) => attempt.at > agedOut).map((attempt) => ({ ...attempt }));
  }
}

interface FiringEscalation {
  alert: EscalationAlert;
  openedAt: number;
  expiresAt: number;
}

interface KeyEscalations {
  firing: Map<string, FiringEscalation>;
  /** The longest-lived escalation's expiry: the key goes with it. */
  expiresAt: number;
}

export class EscalationBook {
  private readonly keys = new Sweeping<KeyEscalations>();

  open(key: string, id: string, alert: EscalationAlert, ttlMs: number, now: number): boolean {
    const escalations = this.keys.live(key, now) ?? { firing: new Map<string, FiringEscalation>(), expiresAt: 0 };
    if ((escalations.firing.get(id)?.expiresAt ?? 0) > now) return false;
    const expiresAt = now + ttlMs;
    escalations.firing.set(id, { alert, openedAt: now, expiresAt });
    escalations.expiresAt = Math.max(escalations.expiresAt, expiresAt);
    this.keys.set(key, escalations, now);
    return true;
  }

  /**
   * Takes the ids named (every one for 'all', those starting with a prefix for `{ prefixes }`)
   * out; those that had expired are dropped, not returned.
   */
  close(key: string, which: EscalationSelection, now: number): EscalationAlert[] {
    const escalations = this.keys.live(key, now);
    if (!escalations) return [];
    const taken: EscalationAlert[] = [];
    for (const id of selected([...escalations.firing.keys()], which)) {
      const firing = escalations.firing.get(id);
      if (!firing) continue;
      escalations.firing.delete(id);
      if (firing.expiresAt > now) taken.push(firing.alert);
    }
    if (escalations.firing.size === 0) this.keys.delete(key);
    return taken;
  }

  /** Those firing now, newest opened first. */
  list(limit: number, now: number): OpenEscalation[] {
    const wanted = listedAtMost(limit);
    if (wanted === 0) return [];
    const listed: OpenEscalation[] = [];
    for (const [cooldownKey, escalations] of this.keys.liveEntries(now)) {
      for (const [id, { alert, openedAt, expiresAt }] of escalations.firing) {
        if (expiresAt > now) listed.push({ cooldownKey, id, alert: structuredClone(alert), openedAt, expiresAt });
      }
    }
    return listed.sort(newestOpenedFirst).slice(0, wanted);
  }
}

function selected(ids: string[], which: EscalationSelection): readonly string[] {
  if (which === 'all') return ids;
  if ('prefixes' in which) {
    const { prefixes } = which;
    return ids.filter((id) => prefixes.some((prefix) => id.startsWith(prefix)));
  }
  return which;
}

/**
 * A map whose values expire: an expired value is purged when read, and values never read again
 * are swept whenever the map has doubled since the last sweep (amortised O(1) per write).
 */
class Sweeping<V extends { expiresAt: number }> {
  private readonly values = new Map<string, V>();
  private threshold = MIN_SWEEP_THRESHOLD;

  live(key: string, now: number): V | undefined {
    const value = this.values.get(key);
    if (value && value.expiresAt <= now) {
      this.values.delete(key);
      return undefined;
    }
    return value;
  }

  set(key: string, value: V, now: number): void {
    this.values.set(key, value);
    if (this.values.size < this.threshold) return;
    for (const [other, held] of this.values) {
      if (held.expiresAt <= now) this.values.delete(other);
    }
    this.threshold = Math.max(MIN_SWEEP_THRESHOLD, this.values.size * 2);
  }

  delete(key: string): void {
    this.values.delete(key);
  }

  /** Every value that has not expired, with its key; the expired ones are purged on the way. */
  *liveEntries(now: number): Generator<[string, V]> {
    for (const [key, value] of this.values) {
      if (value.expiresAt <= now) this.values.delete(key);
      else yield [key, value];
    }
  }
}
