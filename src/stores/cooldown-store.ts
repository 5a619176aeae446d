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
  /** Deletes the key only if it holds workflowName. */
  release(key: string, workflowName: string): Promise<boolean>;
  /** The claim under key, or null; never changes anything. */
  peek(key: string): Promise<CooldownClaim | null>;
  /**
   * Takes one slot of a budget of `limit` per fixed window of windowMs, shared by every replica.
   * True when a slot was free (and is now taken).
   */
  takeRateSlot(limit: number, windowMs: number): Promise<boolean>;
  /** Appends to the capped audit trail (Redis: XADD MAXLEN ~ maxLen). */
  appendDecision(record: DecisionRecord, maxLen: number): Promise<void>;
  /** The newest `limit` records, newest first. */
  listDecisions(limit: number): Promise<DecisionRecord[]>;
  /** Resolves when the backend answers. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export class StoreUnavailableError extends Error {
  override readonly name = 'StoreUnavailableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
