import type { Pause } from '../pause.js';
import {
  type Attempt,
  type EscalationAlert,
  FINAL_STATES,
  type Remediation,
  type RemediationEntry,
  type RemediationState,
} from '../remediation/model.js';
import { finishedHour } from './activity-counts.js';
import {
  type Activity,
  type AuditEntry,
  type ClaimResult,
  type CooldownClaim,
  type CooldownStore,
  type EscalationSelection,
  type HeldCooldown,
  listedAtMost,
  markerOf,
  type OpenEscalation,
  type RecordTransitionOptions,
  type RestoredPauses,
  StoreClosedError,
  type StoreLogger,
  submittedAtMs,
} from './cooldown-store.js';
import { ActivityBook } from './memory-activity.js';
import { AuditTrail } from './memory-audit.js';
import { PauseBook } from './memory-pauses.js';
import { AttemptBook, EscalationBook, RemediationBook } from './memory-remediations.js';

interface HeldClaim {
  claim: CooldownClaim;
  expiresAt: number;
}

/** When a cooldown was ended by hand, kept until expiresAt. */
interface EndedMarker {
  at: number;
  expiresAt: number;
}

interface RateWindow {
  taken: number;
  expiresAt: number;
}

/** Below this many keys a sweep is not worth a full scan. */
const MIN_SWEEP_THRESHOLD = 1024;

/**
 * The cooldown store of a single replica: the same contract as Redis, kept in this process.
 * Expiry is judged against the injected clock, so tests move time instead of waiting for it.
 */
export class MemoryCooldownStore implements CooldownStore {
  readonly kind = 'memory' as const;

  private readonly now: () => number;
  private readonly claims = new Map<string, HeldClaim>();
  private readonly rateWindows = new Map<string, RateWindow>();
  private readonly decisions = new AuditTrail();
  private readonly activityBook = new ActivityBook();
  private readonly remediations: RemediationBook;
  private readonly attempts = new AttemptBook();
  private readonly escalations = new EscalationBook();
  private readonly endedMarkers = new Map<string, EndedMarker>();
  private readonly pauses: PauseBook;
  /** One entry per call of onCooldownEnded, so a listener added twice is stopped once per stop. */
  private readonly endedListeners = new Set<{ heard: (key: string | null) => void }>();
  private readonly logger: StoreLogger | undefined;
  /**
   * Expired keys are purged when touched; keys never touched again would stay forever, so a
   * full sweep runs whenever the map has doubled since the last one (amortised O(1) per write).
   */
  private sweepThreshold = MIN_SWEEP_THRESHOLD;
  private closed = false;

  /**
   * maxRemediations: how many remediations are kept at most (MAX_REMEDIATIONS by default), the
   * oldest submitted dropped first. logger: where a listener of ended cooldowns that throws is told.
   */
  constructor(options: { now?: () => number; maxRemediations?: number; logger?: StoreLogger } = {}) {
    this.now = options.now ?? Date.now;
    this.logger = options.logger;
    this.remediations = new RemediationBook(options.maxRemediations);
    this.pauses = new PauseBook(options.logger);
  }

  async claim(key: string, claim: CooldownClaim, leaseMs: number): Promise<ClaimResult> {
    this.assertOpen();
    const existing = this.live(key);
    if (existing) return { acquired: false, existing: { ...existing.claim } };
    this.claims.set(key, { claim: { ...claim }, expiresAt: this.now() + leaseMs });
    this.sweepIfGrown();
    return { acquired: true, claim: { ...claim } };
  }

  async commit(key: string, workflowName: string, cooldownMs: number): Promise<boolean> {
    this.assertOpen();
    const now = this.now();
    const held = this.live(key);
    if (held && held.claim.workflowName !== workflowName) return false;
    // With the lease gone the Workflow still exists, so its cooldown must hold all the same;
    // the alert that claimed it is no longer known here.
    const claim: CooldownClaim = held
      ? { ...held.claim, state: 'committed' }
      : { workflowName, fingerprint: '', state: 'committed', claimedAt: now };
    this.claims.set(key, { claim, expiresAt: now + cooldownMs });
    this.sweepIfGrown();
    return true;
  }

  async hold(key: string, claim: CooldownClaim, ttlMs: number): Promise<boolean> {
    this.assertOpen();
    const now = this.now();
    const held = this.live(key);
    if (held && held.claim.workflowName !== claim.workflowName) return false;
    if (!held) {
      this.claims.set(key, { claim: { ...claim, state: 'pending' }, expiresAt: now + ttlMs });
      this.sweepIfGrown();
    } else if (held.claim.state === 'pending') {
      held.expiresAt = Math.max(held.expiresAt, now + ttlMs);
    }
    return true;
  }

  async release(key: string, workflowName: string): Promise<boolean> {
    this.assertOpen();
    const held = this.live(key);
    if (!held || held.claim.workflowName !== workflowName) return false;
    this.claims.delete(key);
    return true;
  }

  async peek(key: string): Promise<CooldownClaim | null> {
    this.assertOpen();
    const held = this.live(key);
    return held ? { ...held.claim } : null;
  }

  async takeRateSlot(limit: number, windowMs: number): Promise<number | null> {
    this.assertOpen();
    const now = this.now();
    for (const [id, window] of this.rateWindows) {
      if (window.expiresAt <= now) this.rateWindows.delete(id);
    }
    const windowIndex = Math.floor(now / windowMs);
    const id = `${windowMs}:${windowIndex}`;
    let window = this.rateWindows.get(id);
    if (!window) {
      window = { taken: 0, expiresAt: (windowIndex + 1) * windowMs };
      this.rateWindows.set(id, window);
    }
    if (window.taken >= limit) return null;
    window.taken += 1;
    return windowIndex;
  }

  async returnRateSlot(window: number, windowMs: number): Promise<void> {
    this.assertOpen();
    const taken = this.rateWindows.get(`${windowMs}:${window}`);
    if (taken && taken.taken > 0) taken.taken -= 1;
  }

  async replace(key: string, workflowName: string, claim: CooldownClaim, ttlMs: number): Promise<boolean> {
    this.assertOpen();
    const held = this.live(key);
    if (held && held.claim.workflowName !== workflowName) return false;
    this.claims.set(key, { claim: { ...claim }, expiresAt: this.now() + ttlMs });
    this.sweepIfGrown();
    return true;
  }

  async appendDecision(record: AuditEntry, maxLen: number): Promise<void> {
    this.assertOpen();
    this.decisions.push(asStored(record), maxLen);
    this.activityBook.decided(record, this.now());
  }

  async listDecisions(limit: number): Promise<AuditEntry[]> {
    this.assertOpen();
    return this.decisions.newest(limit).map((record) => structuredClone(record));
  }

  async recordTransition(
    remediation: Remediation,
    entry: RemediationEntry,
    options: RecordTransitionOptions,
  ): Promise<boolean> {
    this.assertOpen();
    // Everything that may throw is read before anything is written: a call that fails half way
    // would leave the marker set and the entry unwritten, and its retry would be refused.
    const submittedAt = submittedAtMs(remediation);
    const marker = markerOf(remediation, options);
    const stored = asStored(remediation);
    const storedEntry = asStored(entry);
    const now = this.now();
    const hour = FINAL_STATES.has(stored.state) ? finishedHour(stored, now) : undefined;
    const outcome = this.remediations.record(stored, submittedAt, options.retentionMs, now, marker, options.token);
    if (outcome === 'recorded') {
      this.decisions.push(storedEntry, options.auditMaxLen);
      if (hour !== undefined) this.activityBook.finished(stored.rule, stored.state, hour, now);
    }
    return outcome !== 'refused';
  }

  async listRemediations(limit: number, state?: RemediationState): Promise<Remediation[]> {
    this.assertOpen();
    return this.remediations.list(limit, state, this.now());
  }

  async getRemediation(workflow: string): Promise<Remediation | null> {
    this.assertOpen();
    return this.remediations.get(workflow, this.now());
  }

  async addAttempt(key: string, attempt: Attempt, windowMs: number): Promise<void> {
    this.assertOpen();
    this.attempts.add(key, attempt, windowMs, this.now());
  }

  async listAttempts(key: string, windowMs: number): Promise<Attempt[]> {
    this.assertOpen();
    return this.attempts.list(key, windowMs, this.now());
  }

  async openEscalation(key: string, id: string, alert: EscalationAlert, ttlMs: number): Promise<boolean> {
    this.assertOpen();
    return this.escalations.open(key, id, asStored(alert), ttlMs, this.now());
  }

  async closeEscalations(key: string, which: EscalationSelection): Promise<EscalationAlert[]> {
    this.assertOpen();
    return this.escalations.close(key, which, this.now());
  }

  async listEscalations(limit: number): Promise<OpenEscalation[]> {
    this.assertOpen();
    return this.escalations.list(limit, this.now());
  }

  async activity(hours: number): Promise<Activity> {
    this.assertOpen();
    return this.activityBook.read(hours, this.now());
  }

  async listCooldowns(limit: number): Promise<HeldCooldown[]> {
    this.assertOpen();
    const wanted = listedAtMost(limit);
    const listed: HeldCooldown[] = [];
    for (const key of this.claims.keys()) {
      if (!(listed.length < wanted)) break;
      const held = this.live(key);
      if (held) listed.push({ key, claim: { ...held.claim }, expiresAt: held.expiresAt });
    }
    return listed;
  }

  async endCooldown(key: string, endedMarkerMs: number): Promise<CooldownClaim | null> {
    this.assertOpen();
    const now = this.now();
    const held = this.live(key);
    this.claims.delete(key);
    // Ends by hand are rare: looking through every marker on each costs nothing.
    for (const [ended, marker] of this.endedMarkers) {
      if (marker.expiresAt <= now) this.endedMarkers.delete(ended);
    }
    this.endedMarkers.set(key, { at: now, expiresAt: now + endedMarkerMs });
    // After this call has answered, as a message from Redis comes.
    queueMicrotask(() => this.tellEnded(key));
    return held ? { ...held.claim } : null;
  }

  async cooldownEndedAt(key: string): Promise<number | null> {
    this.assertOpen();
    const marker = this.endedMarkers.get(key);
    if (!marker) return null;
    if (marker.expiresAt <= this.now()) {
      this.endedMarkers.delete(key);
      return null;
    }
    return marker.at;
  }

  /** Nothing is ever missed in one process: the listeners never hear null. */
  onCooldownEnded(listener: (key: string | null) => void): () => void {
    if (this.closed) return () => {};
    const entry = { heard: listener };
    this.endedListeners.add(entry);
    return () => {
      this.endedListeners.delete(entry);
    };
  }

  async addPause(pause: Pause): Promise<void> {
    this.assertOpen();
    this.pauses.add(pause, this.now());
  }

  async listPauses(): Promise<Pause[]> {
    this.assertOpen();
    return this.pauses.list(this.now());
  }

  async removePause(id: string): Promise<Pause | null> {
    this.assertOpen();
    return this.pauses.remove(id, this.now());
  }

  async restorePauses(pauses: readonly Pause[]): Promise<RestoredPauses> {
    this.assertOpen();
    return this.pauses.restore(pauses, this.now());
  }

  onPausesChanged(listener: (id: string | null) => void): () => void {
    return this.closed ? () => {} : this.pauses.listen(listener);
  }

  async ping(): Promise<void> {
    this.assertOpen();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.endedListeners.clear();
    this.pauses.clear();
  }

  private tellEnded(key: string): void {
    for (const entry of [...this.endedListeners]) {
      // Stopped by an earlier listener of this same end.
      if (!this.endedListeners.has(entry)) continue;
      try {
        entry.heard(key);
      } catch (error) {
        this.logger?.error({ err: error, key }, 'a listener of ended cooldowns failed');
      }
    }
  }

  private assertOpen(): void {
    // Same as a closed Redis connection, so callers handle both stores alike.
    if (this.closed) throw new StoreClosedError('cooldown store (memory) is closed', { reason: 'closed' });
  }

  /** The claim under key unless it has expired; an expired one is purged on the way. */
  private live(key: string): HeldClaim | undefined {
    const held = this.claims.get(key);
    if (!held) return undefined;
    if (held.expiresAt <= this.now()) {
      this.claims.delete(key);
      return undefined;
    }
    return held;
  }

  private sweepIfGrown(): void {
    if (this.claims.size < this.sweepThreshold) return;
    const now = this.now();
    for (const [key, held] of this.claims) {
      if (held.expiresAt <= now) this.claims.delete(key);
    }
    this.sweepThreshold = Math.max(MIN_SWEEP_THRESHOLD, this.claims.size * 2);
  }
}

/** A JSON round trip, as in Redis: later changes to the caller's object do not leak in. */
function asStored<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}
