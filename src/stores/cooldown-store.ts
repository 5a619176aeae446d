import type { DecisionRecord } from '../decision.js';

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

export type { DecisionRecord };

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
  /** Appends to the capped audit trail (Redis: XADD MAXLEN ~ maxLen). */
  appendDecision(record: DecisionRecord, maxLen: number): Promise<void>;
  /** The newest `limit` records, newest first. */
  listDecisions(limit: number): Promise<DecisionRecord[]>;
  /** Resolves when the backend answers. */
  ping(): Promise<void>;
  close(): Promise<void>;
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
