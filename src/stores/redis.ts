import type { Pause } from '../pause.js';
import type {
  Attempt,
  EscalationAlert,
  Remediation,
  RemediationEntry,
  RemediationState,
} from '../remediation/model.js';
import { atMostEvery } from '../throttle.js';
import { Batcher } from './batch.js';
import {
  type Activity,
  type AuditEntry,
  type ClaimResult,
  type CooldownClaim,
  type CooldownStore,
  type EscalationSelection,
  type HeldCooldown,
  markerOf,
  type OpenEscalation,
  pauseExpiresAtMs,
  type RecordTransitionOptions,
  type RestoredPauses,
  StoreClosedError,
  type StoreLogger,
  StoreUnavailableError,
  submittedAtMs,
} from './cooldown-store.js';
import { RedisAudit } from './redis-audit.js';
import { ReplicatedBatches } from './redis-batches.js';
import {
  connectionAttemptSettled,
  connectRedis,
  isConnecting,
  type RedisConnection,
  type RedisSource,
} from './redis-connection.js';
import { RedisCooldowns } from './redis-cooldowns.js';
import { describeRedisError } from './redis-errors.js';
import { RedisKeys } from './redis-keys.js';
import { RedisPauses } from './redis-pauses.js';
import { RedisRemediations } from './redis-remediations.js';
import {
  CLAIM_BATCH,
  type ClaimItem,
  COMMIT_BATCH,
  type CommitItem,
  defineScripts,
  type ScriptedRedis,
  type SettleMode,
} from './redis-scripts.js';
import { RedisSubscription } from './redis-subscription.js';
import { isPendingClaimOf, parseClaim, positiveMs } from './redis-values.js';

export interface RedisCooldownStoreOptions {
  /** A standalone Redis (`redis://` or `rediss://`); or `source`, one of the three modes. */
  url?: string;
  source?: RedisSource;
  /** A claim or a commit counts once this many replicas acknowledged it (WAIT); 0 does not wait. */
  waitReplicas?: number;
  /** Prepended to every key, so several deployments can share one Redis. */
  keyPrefix?: string;
  /** How long a command may wait for its answer before it fails as unavailable. */
  commandTimeoutMs?: number;
  /** Picks the rate-limit window and ages out attempts, escalations and remediations; Redis keeps its own time for TTLs. */
  now?: () => number;
  logger?: StoreLogger;
}

const DEFAULT_KEY_PREFIX = 'kube-sentinel:';
const DEFAULT_COMMAND_TIMEOUT_MS = 2000;
const QUIT_TIMEOUT_MS = 1000;
/** A Redis outage makes ioredis emit an error per reconnect attempt; one log line per interval is enough. */
const ERROR_LOG_INTERVAL_MS = 10_000;

/** At most this many claims or audit records go in one script call. */
const MAX_BATCH = 256;

/**
 * The cooldown store shared by every replica. Commands never queue while Redis is away: they
 * fail at once (or after commandTimeoutMs) with StoreUnavailableError, and the client keeps
 * reconnecting in the background so the store recovers by itself.
 */
export class RedisCooldownStore implements CooldownStore {
  readonly kind = 'redis' as const;
  /** `host:port` (or the socket path): never the URL, which may hold the password. */
  readonly address: string;

  private readonly connection: RedisConnection;
  private readonly client: ScriptedRedis;
  private readonly keys: RedisKeys;
  private readonly batches: ReplicatedBatches;
  private readonly commandTimeoutMs: number;
  private readonly now: () => number;
  private readonly logger: StoreLogger | undefined;
  /**
   * Claims, commits and audit records asked for in one event-loop turn go to Redis as one script
   * call each (one per slot on a cluster).
   */
  private readonly claims = new Batcher<ClaimItem, string | null | Error>(
    (items) =>
      this.batches.run(
        items,
        CLAIM_BATCH,
        // What the caller may act on must survive a failover: a claim taken (nil), or its alert's
        // pending claim found (a retry re-uses it). Another claim found only holds the caller off.
        (answer, item) => answer === null || (typeof answer === 'string' && isPendingClaimOf(answer, item.value)),
      ),
    MAX_BATCH,
  );
  /** Commits, holds and replaces (the same script, one mode per key). */
  private readonly commits = new Batcher<CommitItem, number | Error>(
    (items) => this.batches.run(items, COMMIT_BATCH, (answer) => answer === 1),
    MAX_BATCH,
  );
  private readonly audit: RedisAudit;
  private readonly remediations: RedisRemediations;
  private readonly cooldowns: RedisCooldowns;
  private readonly pauses: RedisPauses;
  private readonly subscription: RedisSubscription;
  private closing: Promise<void> | undefined;
  /** Reads the clock only when called, after the constructor has set it. */
  private readonly errorLogDue = atMostEvery(ERROR_LOG_INTERVAL_MS, () => this.now());
  /**
   * What ioredis last said about the connection (refused, timed out, a wrong password), until it
   * is ready again: a command refused for want of a connection fails with this as its cause,
   * rather than with "Stream isn't writeable".
   */
  private connectionError: Error | undefined;

  constructor(options: RedisCooldownStoreOptions) {
    this.commandTimeoutMs = options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    this.now = options.now ?? Date.now;
    this.logger = options.logger;
    const source: RedisSource | undefined =
      options.source ?? (options.url === undefined ? undefined : { kind: 'standalone', url: options.url });
    if (source === undefined) throw new TypeError('RedisCooldownStore needs a url or a source');
    this.connection = connectRedis(source, { commandTimeoutMs: this.commandTimeoutMs });
    this.client = this.connection.client as ScriptedRedis;
    this.address = this.connection.address;
    this.keys = new RedisKeys(options.keyPrefix ?? DEFAULT_KEY_PREFIX, this.connection.cluster);
    this.batches = new ReplicatedBatches(this.connection, this.client, {
      waitReplicas: options.waitReplicas ?? 0,
      // WAIT answers within this; the command's own timeout (the same as the store's) must not cut it first.
      waitTimeoutMs: Math.max(1, Math.floor(this.commandTimeoutMs / 2)),
      connectTimeoutMs: this.commandTimeoutMs,
    });
    this.client.on('error', (error: Error) => {
      this.connectionError = error;
      this.logConnectionError(error);
    });
    this.client.on('ready', () => {
      this.connectionError = undefined;
    });
    defineScripts(this.client);
    const { client, connection, keys, now, logger } = this;
    this.audit = new RedisAudit(client, keys, now, MAX_BATCH);
    this.remediations = new RedisRemediations(client, keys, now);
    const channels = [keys.cooldownEndedChannel(), keys.pausesChannel()];
    this.subscription = new RedisSubscription(connection, channels, now, logger, this.address);
    this.cooldowns = new RedisCooldowns(client, connection, keys, now, logger, this.subscription);
    this.pauses = new RedisPauses(client, keys, now, logger, this.subscription);
  }

  async claim(key: string, claim: CooldownClaim, leaseMs: number): Promise<ClaimResult> {
    const item = { key: this.keys.cooldown(key), value: JSON.stringify(claim), ttl: positiveMs(leaseMs) };
    return this.run('claim', async () => {
      // SET NX, and when the key is held, what holds it: one script call for the whole batch.
      const existing = await this.claims.add(item);
      if (existing instanceof Error) throw existing;
      if (existing === null) return { acquired: true, claim: { ...claim } };
      return { acquired: false, existing: parseClaim(existing, key) };
    });
  }

  async commit(key: string, workflowName: string, cooldownMs: number): Promise<boolean> {
    const absent: CooldownClaim = { workflowName, fingerprint: '', state: 'committed', claimedAt: this.now() };
    return this.settle('commit', key, workflowName, absent, cooldownMs);
  }

  async hold(key: string, claim: CooldownClaim, ttlMs: number): Promise<boolean> {
    return this.settle('hold', key, claim.workflowName, { ...claim, state: 'pending' }, ttlMs);
  }

  async replace(key: string, workflowName: string, claim: CooldownClaim, ttlMs: number): Promise<boolean> {
    return this.settle('replace', key, workflowName, claim, ttlMs);
  }

  /** `absent`: the claim written when the key is gone (and, for replace, in place of the caller's). */
  private settle(
    mode: SettleMode,
    key: string,
    workflowName: string,
    absent: CooldownClaim,
    ttlMs: number,
  ): Promise<boolean> {
    const item = {
      key: this.keys.cooldown(key),
      workflowName,
      ttl: positiveMs(ttlMs),
      absent: JSON.stringify(absent),
      mode,
    };
    return this.run(mode, async () => {
      const done = await this.commits.add(item);
      if (done instanceof Error) throw done;
      return done === 1;
    });
  }

  async release(key: string, workflowName: string): Promise<boolean> {
    return this.run(
      'release',
      async () => (await this.client.cooldownRelease(this.keys.cooldown(key), workflowName)) === 1,
    );
  }

  async peek(key: string): Promise<CooldownClaim | null> {
    return this.run('peek', async () => {
      const value = await this.client.get(this.keys.cooldown(key));
      return value === null ? null : parseClaim(value, key);
    });
  }

  async takeRateSlot(limit: number, windowMs: number): Promise<number | null> {
    const windowIndex = Math.floor(this.now() / windowMs);
    // Twice the window so a replica whose clock lags a little still finds the counter.
    const ttl = positiveMs(windowMs * 2);
    return this.run('takeRateSlot', async () =>
      (await this.client.takeRateSlot(this.keys.rate(windowIndex), limit, ttl)) === 1 ? windowIndex : null,
    );
  }

  async returnRateSlot(window: number, _windowMs: number): Promise<void> {
    await this.run('returnRateSlot', () => this.client.returnRateSlot(this.keys.rate(window)));
  }

  async appendDecision(record: AuditEntry, maxLen: number): Promise<void> {
    await this.run('appendDecision', () => this.audit.append(record, maxLen));
  }

  async listDecisions(limit: number): Promise<AuditEntry[]> {
    return this.run('listDecisions', () => this.audit.list(limit));
  }

  async activity(hours: number): Promise<Activity> {
    return this.run('activity', () => this.audit.activity(hours));
  }

  async recordTransition(
    remediation: Remediation,
    entry: RemediationEntry,
    options: RecordTransitionOptions,
  ): Promise<boolean> {
    const submittedAt = submittedAtMs(remediation);
    const marker = markerOf(remediation, options);
    return this.run('recordTransition', () =>
      this.remediations.recordTransition(remediation, submittedAt, marker, entry, options),
    );
  }

  async listRemediations(limit: number, state?: RemediationState): Promise<Remediation[]> {
    return this.run('listRemediations', () => this.remediations.listRemediations(limit, state));
  }

  async getRemediation(workflow: string): Promise<Remediation | null> {
    return this.run('getRemediation', () => this.remediations.getRemediation(workflow));
  }

  async addAttempt(key: string, attempt: Attempt, windowMs: number): Promise<void> {
    await this.run('addAttempt', () => this.remediations.addAttempt(key, attempt, windowMs));
  }

  async listAttempts(key: string, windowMs: number): Promise<Attempt[]> {
    return this.run('listAttempts', () => this.remediations.listAttempts(key, windowMs));
  }

  async openEscalation(key: string, id: string, alert: EscalationAlert, ttlMs: number): Promise<boolean> {
    return this.run('openEscalation', () => this.remediations.openEscalation(key, id, alert, ttlMs));
  }

  async closeEscalations(key: string, which: EscalationSelection): Promise<EscalationAlert[]> {
    return this.run('closeEscalations', () => this.remediations.closeEscalations(key, which));
  }

  async listEscalations(limit: number): Promise<OpenEscalation[]> {
    return this.run('listEscalations', () => this.remediations.listEscalations(limit));
  }

  async listCooldowns(limit: number): Promise<HeldCooldown[]> {
    return this.run('listCooldowns', () => this.cooldowns.list(limit));
  }

  async endCooldown(key: string, endedMarkerMs: number): Promise<CooldownClaim | null> {
    return this.run('endCooldown', () => this.cooldowns.end(key, endedMarkerMs));
  }

  async cooldownEndedAt(key: string): Promise<number | null> {
    return this.run('cooldownEndedAt', () => this.cooldowns.endedAt(key));
  }

  onCooldownEnded(listener: (key: string | null) => void): () => void {
    return this.cooldowns.listen(listener);
  }

  async addPause(pause: Pause): Promise<void> {
    const expiresAt = pauseExpiresAtMs(pause);
    await this.run('addPause', () => this.pauses.add(pause, expiresAt));
  }

  async listPauses(): Promise<Pause[]> {
    return this.run('listPauses', () => this.pauses.list());
  }

  async removePause(id: string): Promise<Pause | null> {
    return this.run('removePause', () => this.pauses.remove(id));
  }

  async restorePauses(pauses: readonly Pause[]): Promise<RestoredPauses> {
    return this.run('restorePauses', () => this.pauses.restore(pauses));
  }

  onPausesChanged(listener: (id: string | null) => void): () => void {
    return this.pauses.listen(listener);
  }

  async ping(): Promise<void> {
    await this.run('ping', () => this.client.ping());
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.subscription.close();
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        // What was asked for before closing (the last requests' audit records) goes out before QUIT.
        Promise.allSettled([this.claims.drain(), this.commits.drain(), this.audit.drain()]).then(() =>
          this.client.quit(),
        ),
        new Promise((resolve) => {
          timer = setTimeout(resolve, QUIT_TIMEOUT_MS);
        }),
      ]);
    } catch {
      // quit fails while disconnected; disconnect below still stops the reconnect loop.
    } finally {
      clearTimeout(timer);
      this.client.disconnect();
      this.batches.close();
    }
  }

  /**
   * Runs one store operation, turning every failure into StoreUnavailableError. Nothing is awaited
   * before a connected store queues the command: an operation asked for just before close() (the
   * last decision's audit record) is in the batch close() drains, never sent after QUIT.
   */
  private async run<T>(operation: string, command: () => Promise<T>): Promise<T> {
    if (this.closing !== undefined) {
      throw new StoreClosedError(`cooldown store (redis) is closed: ${operation} refused`, { reason: 'closed' });
    }
    if (isConnecting(this.client)) await connectionAttemptSettled(this.client, this.commandTimeoutMs);
    try {
      return await command();
    } catch (error) {
      if (error instanceof StoreUnavailableError) throw error;
      const cause = this.client.status !== 'ready' && this.connectionError ? this.connectionError : error;
      const { reason, detail } = describeRedisError(cause, this.commandTimeoutMs);
      throw new StoreUnavailableError(`cooldown store (redis at ${this.address}) ${operation} failed: ${detail}`, {
        cause,
        reason,
        detail,
        address: this.address,
      });
    }
  }

  private logConnectionError(error: Error): void {
    if (this.closing || !this.logger) return;
    const suppressed = this.errorLogDue();
    if (suppressed === undefined) return;
    this.logger.error(
      { err: error, address: this.address, suppressedSinceLastLog: suppressed },
      'cooldown store (redis) connection error; commands fail until it reconnects',
    );
  }
}
