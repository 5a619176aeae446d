import type { AuditEntry, DecisionRecord } from '../decision.js';
import type { Pause } from '../pause.js';
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

/** A cooldown key as GET /v1/cooldowns lists it. */
export interface HeldCooldown {
  key: string;
  claim: CooldownClaim;
  /** Epoch ms at which the key expires. */
  expiresAt: number;
}

/** listCooldowns never lists more than this many keys at once, whatever limit it is given. */
export const MAX_LISTED_COOLDOWNS = 1000;

/** How many entries a listing given `limit` answers at most: 0 for a limit below 1 (or not a number). */
export function listedAtMost(limit: number): number {
  const wanted = Math.min(MAX_LISTED_COOLDOWNS, Math.floor(limit));
  return wanted >= 1 ? wanted : 0;
}

/** A firing escalation, as GET /v1/escalations lists it. */
export interface OpenEscalation {
  cooldownKey: string;
  id: string;
  alert: EscalationAlert;
  /** Epoch ms at which it was opened; absent for one opened before the store noted it. */
  openedAt?: number;
  /** Epoch ms at which its alert ends unless it is sent again. */
  expiresAt: number;
}

/**
 * What happened within one hour, for the page's chart (SPEC §12). Plain objects (JSON), each
 * name a key of their own, `__proto__` too: read them with Object.hasOwn, or a rule named
 * `constructor` that counted nothing finds Object's.
 */
export interface ActivityCounts {
  /** Decisions by outcome. */
  outcomes: Record<string, number>;
  /** Per rule: its matching decisions, and its remediations that ended, by final state. */
  rules: Record<string, { matches: number; states: Partial<Record<RemediationState, number>> }>;
}

export interface Activity {
  /** Oldest first, `hours` buckets of one hour each, the last one the current hour. */
  buckets: Array<{ start: number } & ActivityCounts>;
  /** Epoch ms of each rule's latest matching decision, however old. */
  lastMatch: Record<string, number>;
}

/** The activity is counted in buckets of one hour, by the store's clock. */
export const ACTIVITY_BUCKET_MS = 3_600_000;

/**
 * Buckets are kept 25 hours: a day's chart reads the current hour and the 23 before it, and the
 * hour that has just ended stays readable by a replica whose clock lags a little.
 */
export const ACTIVITY_KEPT_MS = 25 * ACTIVITY_BUCKET_MS;

/** The hour (its index since the epoch) that epoch ms `at` falls in. */
export function activityHour(at: number): number {
  return Math.floor(at / ACTIVITY_BUCKET_MS);
}

/** The part of a pino logger the stores use. */
export interface StoreLogger {
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export type ClaimResult = { acquired: true; claim: CooldownClaim } | { acquired: false; existing: CooldownClaim };

export type { AuditEntry, DecisionRecord };

export interface RecordTransitionOptions {
  /** How long the record and its markers are kept, in ms. */
  retentionMs: number;
  /** The audit stream's approximate cap. */
  auditMaxLen: number;
  /**
   * Unique to this state change as this caller sees it (a random id), and the same on its
   * retries: a reply lost after the store recorded the change (a command timed out while Redis
   * still ran it) must not turn the retry into a false, or the replica that recorded it would
   * never count or escalate it. The marker holds the token; a retry that finds its own token
   * answers true again and writes nothing. Without one the marker holds '1'.
   */
  token?: string;
}

/** What restorePauses did with the pauses it was given; the others were removed or are over. */
export interface RestoredPauses {
  /** Written back: the store knew nothing of them. */
  written: string[];
  /** In force in the store already. */
  held: string[];
}

/** Which firing escalations of a key closeEscalations takes: by id, all, or by id prefix (`failed:`). */
export type EscalationSelection = readonly string[] | 'all' | { readonly prefixes: readonly string[] };

/**
 * Shared state of all replicas: cooldown claims, the global rate limit, the audit trail and pauses.
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
   * (kept retentionMs, listed newest first by submittedAt) and appends `entry` to the audit
   * trail, unless the state is refused. A state is refused when its STATE_RANK is lower than the
   * stored record's (never backwards), and when the stored record is in a final state and this
   * state differs (a final state is never replaced); a refused state sets its marker, writes
   * nothing else and answers false. True only for the call that recorded it, and for a retry
   * with the same `token` (see RecordTransitionOptions), which writes nothing a second time;
   * false when the marker was set already by another call or the state is refused.
   * All of it atomic. A remediation submitted longer than retentionMs ago is no longer listed.
   * Rejects with a RangeError, storing nothing, when submittedAt is not a date-time or the
   * token is empty.
   */
  recordTransition(
    remediation: Remediation,
    entry: RemediationEntry,
    options: RecordTransitionOptions,
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
   * Takes the firing escalations of `key` named by `which` out of the store and returns them, so
   * exactly one caller sends each resolution: those with these ids, all of them for 'all', or
   * for `{ prefixes }` every one whose id starts with one of the prefixes (one atomic step, so
   * an escalation opened meanwhile is either taken or left firing, never lost). Expired ones are
   * dropped, not returned: their alert has ended already.
   */
  closeEscalations(key: string, which: EscalationSelection): Promise<EscalationAlert[]>;
  /**
   * The escalations firing now (not expired, not closed) of every cooldown key, newest opened
   * first (by openedAt, then expiresAt), at most `limit` and never more than MAX_LISTED_COOLDOWNS.
   * Redis reads the escalations of 10,000 cooldown keys at most (those whose escalations end
   * last), from an index openEscalation writes: never a scan of the keyspace.
   */
  listEscalations(limit: number): Promise<OpenEscalation[]>;
  /**
   * The last `hours` hours of activity (1 to 24), counted by the store itself: each decision
   * appendDecision appends (not a remediation's or an escalation's entry; a repeat folded into
   * another counts all the same) under its outcome, and under its rule's matches when it has a
   * rule; each final state recordTransition records (not a retry, nor a refused state) under its
   * rule's states, in the hour its remediation finished (finishedAt; the store clock's when it
   * does not say or says later), and not at all when that hour is no longer kept. Buckets are the
   * store clock's hours, kept ACTIVITY_KEPT_MS.
   */
  activity(hours: number): Promise<Activity>;
  /**
   * The cooldown keys held now (pending or committed), at most `limit` (and never more than
   * MAX_LISTED_COOLDOWNS), each with its claim and when it expires (epoch ms). In no particular
   * order; a key that expires while listing may be missing, and one that holds no claim is left out.
   */
  listCooldowns(limit: number): Promise<HeldCooldown[]>;
  /**
   * Ends the cooldown under `key` at once, whatever holds it (a person fixed the workload by hand),
   * and notes when (`cooldownEndedAt`, kept endedMarkerMs) so that the cluster's Workflows from
   * before do not hold the key again; then tells every replica (`onCooldownEnded`). Answers the
   * claim it ended, or null when none was held (the note and the message are sent anyway).
   */
  endCooldown(key: string, endedMarkerMs: number): Promise<CooldownClaim | null>;
  /** Epoch ms at which the cooldown of `key` was last ended by hand, or null. */
  cooldownEndedAt(key: string): Promise<number | null>;
  /**
   * Calls `listener` with each key any replica ends, this one included (pub/sub in Redis), never
   * from within the call that ended it; and with null when messages may have been missed (Redis: each
   * time the subscription is up, the first time and after it was lost): forget everything then.
   * A listener that throws is logged, and the others still hear. Returns a function that stops
   * listening.
   */
  onCooldownEnded(listener: (key: string | null) => void): () => void;

  /**
   * Stores a pause (replacing one with its id) until its expiresAt, for every replica, and
   * tells them (`onPausesChanged`). Pauses that have expired are dropped on the way. Rejects with a
   * RangeError, storing nothing, when expiresAt is not a date-time.
   */
  addPause(pause: Pause): Promise<void>;
  /** The pauses in force now (expiresAt later than the store's clock), in no particular order. */
  listPauses(): Promise<Pause[]>;
  /**
   * Removes the pause `id` and tells every replica; answers it, or null when there was none in
   * force (nothing is told then).
   */
  removePause(id: string): Promise<Pause | null>;
  /**
   * Writes back the pauses the store knows nothing of — neither in force nor removed (a removal
   * is remembered until the pause would have expired) — that have not expired: what a replica's
   * copy still holds after a Redis restarted empty or failed over to a replica that had not got
   * them. Answers the ids written and those of the others found in force (another replica wrote
   * them back first), and tells every replica when it wrote any.
   */
  restorePauses(pauses: readonly Pause[]): Promise<RestoredPauses>;
  /**
   * Calls `listener` with the id of each pause any replica adds or removes, this one included,
   * never from within the call that changed it; and with null when changes may have been missed
   * (as onCooldownEnded): load them all again then. A listener that throws is logged, and the
   * others still hear. Returns a function that stops listening.
   */
  onPausesChanged(listener: (id: string | null) => void): () => void;

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

/**
 * A pause's expiresAt in epoch ms. Both stores read it before anything is stored, so a pause
 * without a readable one is refused with this error.
 */
export function pauseExpiresAtMs(pause: Pause): number {
  const ms = Date.parse(pause.expiresAt);
  if (Number.isNaN(ms)) {
    throw new RangeError(`pause ${pause.id}: expiresAt ${JSON.stringify(pause.expiresAt)} is not a date-time`);
  }
  return ms;
}

/**
 * Newest opened first; one opened before the store noted when (no openedAt) after those that
 * say, by expiresAt; then by key and id, so a listing is stable.
 */
export function newestOpenedFirst(a: OpenEscalation, b: OpenEscalation): number {
  return (
    (b.openedAt ?? Number.NEGATIVE_INFINITY) - (a.openedAt ?? Number.NEGATIVE_INFINITY) ||
    b.expiresAt - a.expiresAt ||
    a.cooldownKey.localeCompare(b.cooldownKey) ||
    a.id.localeCompare(b.id)
  );
}

/**
 * What the marker of a recorded state holds: the caller's token, '1' without one. A refused
 * state's marker holds '' (REFUSED_MARKER), which no token equals, so the retry of a refused call
 * is refused again. Both stores read it before anything is stored: an empty token is refused.
 */
export function markerOf(remediation: Remediation, options: RecordTransitionOptions): string {
  if (options.token === undefined) return '1';
  if (options.token === '') {
    throw new RangeError(`remediation ${remediation.workflow}: the token of a state change must not be empty`);
  }
  return options.token;
}

/** The marker of a refused state: no token equals it. */
export const REFUSED_MARKER = '';

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
