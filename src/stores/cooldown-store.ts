import type { AuditEntry, DecisionRecord } from '../decision.js';
import type {
  Attempt,
  EscalationAlert,
  Remediation,
  RemediationEntry,
  RemediationState,
} from '../remediation/model.js';

/** What a cooldown key holds: the Workflow it stands for, and whether that Workflow exists yet. */
export interface CooldownClaim {
  /** metadata.name of the Workflow this claim stands for; retries of the claim re-use it. */
  workflowName: string;
  /** Fingerprint of the alert that took the claim: a redelivery of the same alert may re-use a pending claim. */
  fingerprint: string;
  /** pending: a short lease while the Workflow is being created; committed: the Workflow exists, full cooldown. */
  state: 'pending' | 'committed';
  /** Epoch milliseconds at which the claim was taken. */
  claimedAt: number;
  /** Taken by a dry-run receiver: the Workflow was decided and rendered, never created. */
  dryRun?: true;
}

export type ClaimResult = { acquired: true; claim: CooldownClaim } | { acquired: false; existing: CooldownClaim };

export type { AuditEntry, DecisionRecord };

/**
 * Shared state of all replicas: cooldown claims, the global rate limit and the audit trail.
 * Every method is atomic on its key: two replicas claiming one key at once see exactly one
 * `acquired: true`; commit and release change a key only while it still holds the caller's
 * workflowName (compare-and-set / compare-and-delete).
 * Methods reject with StoreUnavailableError when the backend cannot answer.
 */
export interface CooldownStore {
  readonly kind: 'memory' | 'redis';
  /** SET key claim NX PX leaseMs. */
  claim(key: string, claim: CooldownClaim, leaseMs: number): Promise<ClaimResult>;
  /** Turns the caller's claim into `committed` with a TTL of cooldownMs. Sets it too when the key has expired meanwhile. False when another workflowName holds the key. */
  commit(key: string, workflowName: string, cooldownMs: number): Promise<boolean>;
  /**
   * Keeps the caller's pending claim for ttlMs: a create whose outcome is unknown holds its key,
   * and its name, for the whole cooldown. Writes `claim` back when the key has expired meanwhile;
   * never shortens the key's TTL, never turns a committed claim back into a pending one. False
   * when another workflowName holds the key.
   */
  hold(key: string, claim: CooldownClaim, ttlMs: number): Promise<boolean>;
  /** Deletes the key only if it holds workflowName. */
  release(key: string, workflowName: string): Promise<boolean>;
  /** The claim under key, or null; never changes anything. */
  peek(key: string): Promise<CooldownClaim | null>;
  /**
   * Takes one slot of a budget of `limit` per fixed window of windowMs, shared by every replica.
   * The window the slot was taken in when one was free (and is now taken); null when none was.
   */
  takeRateSlot(limit: number, windowMs: number): Promise<number | null>;
  /** Gives back a slot taken in `window` (a create that certainly made no Workflow); never below zero. */
  returnRateSlot(window: number, windowMs: number): Promise<void>;
  /**
   * Replaces the caller's claim (the key holds workflowName, or nothing) with `claim` for ttlMs:
   * the repair of a cooldown Redis forgot while the cluster still has its Workflow. False when
   * another workflowName holds the key.
   */
  replace(key: string, workflowName: string, claim: CooldownClaim, ttlMs: number): Promise<boolean>;
  /** Appends to the capped audit trail (Redis: XADD MAXLEN ~ maxLen). */
  appendDecision(record: AuditEntry, maxLen: number): Promise<void>;
  /** The newest `limit` entries, newest first. */
  listDecisions(limit: number): Promise<AuditEntry[]>;

  /**
   * Records one state change of a remediation exactly once across replicas: a marker per
   * Workflow and state, set NX (kept retentionMs). The call that sets it also stores `remediation`
   * (kept retentionMs, listed newest first by submittedAt) unless the stored one is in a later
   * state (STATE_RANK: never backwards), and appends `entry` to the audit trail. True only for the
   * call that recorded it; false when the marker was set already or the state would go backwards.
   * All of it atomic. A remediation submitted longer than retentionMs ago is no longer listed.
   * Rejects with a RangeError, storing nothing, when submittedAt is not a date-time.
   */
  recordTransition(
    remediation: Remediation,
    entry: RemediationEntry,
    options: { retentionMs: number; auditMaxLen: number },
  ): Promise<boolean>;
  /**
   * The newest `limit` remediations by submittedAt, only those in `state` when given. A filtered
   * listing looks through the newest 10,000 at most.
   */
  listRemediations(limit: number, state?: RemediationState): Promise<Remediation[]>;
  /** One remediation by `<namespace>/<name>`, or null. */
  getRemediation(workflow: string): Promise<Remediation | null>;

  /**
   * Counts a Workflow created for `key` (an attempt); attempts older than windowMs are forgotten.
   * Idempotent per workflow: while counted, a Workflow keeps the time it was first added with.
   */
  addAttempt(key: string, attempt: Attempt, windowMs: number): Promise<void>;
  /** The attempts of `key` made within the last windowMs, oldest first. */
  listAttempts(key: string, windowMs: number): Promise<Attempt[]>;

  /**
   * Marks an escalation of `key` as firing under `id` for ttlMs (it expires with the alert's
   * endsAt). True when it was not firing before (or had expired): only that caller sends it.
   */
  openEscalation(key: string, id: string, alert: EscalationAlert, ttlMs: number): Promise<boolean>;
  /**
   * Takes the firing escalations of `key` with these ids (all of them for 'all') out of the
   * store and returns them, so exactly one caller sends each resolution. Expired ones are
   * dropped, not returned: their alert has ended already.
   */
  closeEscalations(key: string, ids: readonly string[] | 'all'): Promise<EscalationAlert[]>;
  /** Resolves when the backend answers. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/**
 * submittedAt in epoch ms, which orders the listing of remediations. Both stores read it before
 * anything is stored, so a remediation without a readable one is refused with this error.
 */
export function submittedAtMs(remediation: Remediation): number {
  const ms = Date.parse(remediation.submittedAt);
  if (Number.isNaN(ms)) {
    throw new RangeError(
      `remediation ${remediation.workflow}: submittedAt ${JSON.stringify(remediation.submittedAt)} is not a date-time`,
    );
  }
  return ms;
}

export class StoreUnavailableError extends Error {
  override readonly name: string = 'StoreUnavailableError';
  /** Why, in a few words anyone may read (no address): `connection refused`. The message by default. */
  readonly reason: string;
  /** Why, as the client said it (may name the address); the reason by default. */
  readonly detail: string;
  /** Where the store is (`host:port`), for logs and authenticated readers. */
  readonly address: string | undefined;
  constructor(message: string, options?: { cause?: unknown; reason?: string; detail?: string; address?: string }) {
    super(message, options);
    this.reason = options?.reason ?? message;
    this.detail = options?.detail ?? this.reason;
    this.address = options?.address;
  }
}

/** The store was closed (the process is shutting down): trying again cannot help. */
export class StoreClosedError extends StoreUnavailableError {
  override readonly name: string = 'StoreClosedError';
}
