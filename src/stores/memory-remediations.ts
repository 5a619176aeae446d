/**
 * The closed loop's part of the memory store (SPEC §9): remediations, attempts and escalations,
 * with the Redis store's semantics. Time is the store's injected clock; what has expired is
 * purged when it is touched, and the rest is swept as the maps grow, so memory stays bounded.
 */
import {
  type Attempt,
  type EscalationAlert,
  type Remediation,
  type RemediationState,
  STATE_RANK,
} from '../remediation/model.js';

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
  /** State → when its marker expires. Kept with the record: a marker never outlives it here. */
  markers: Map<RemediationState, number>;
}

export class RemediationBook {
  private readonly kept = new Map<string, KeptRemediation>();

  private readonly maxKept: number;

  constructor(maxKept = MAX_REMEDIATIONS) {
    this.maxKept = Math.max(1, Math.floor(maxKept));
  }

  /** As recordTransition, without the audit entry: true when this call recorded the state. */
  record(remediation: Remediation, submittedAt: number, retentionMs: number, now: number): boolean {
    const current = this.live(remediation.workflow, now);
    const state = remediation.state;
    if ((current?.markers.get(state) ?? 0) > now) return false;
    const expiresAt = now + retentionMs;
    if (current) {
      current.markers.set(state, expiresAt);
      if (STATE_RANK[current.remediation.state] > STATE_RANK[state]) return false;
    }
    const markers = current?.markers ?? new Map([[state, expiresAt]]);
    this.kept.set(remediation.workflow, { remediation, submittedAt, expiresAt, listed: true, markers });
    this.trim(now - retentionMs, now);
    return true;
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
    escalations.firing.set(id, { alert, expiresAt });
    escalations.expiresAt = Math.max(escalations.expiresAt, expiresAt);
    this.keys.set(key, escalations, now);
    return true;
  }

  /** Takes the ids named (every one for 'all') out; those that had expired are dropped, not returned. */
  close(key: string, ids: readonly string[] | 'all', now: number): EscalationAlert[] {
    const escalations = this.keys.live(key, now);
    if (!escalations) return [];
    const taken: EscalationAlert[] = [];
    for (const id of ids === 'all' ? [...escalations.firing.keys()] : ids) {
      const firing = escalations.firing.get(id);
      if (!firing) continue;
      escalations.firing.delete(id);
      if (firing.expiresAt > now) taken.push(firing.alert);
    }
    if (escalations.firing.size === 0) this.keys.delete(key);
    return taken;
  }
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
}
