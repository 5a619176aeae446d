import {
  type Attempt,
  type EscalationAlert,
  FINAL_STATES,
  isRemediationState,
  REMEDIATION_STATES,
  type Remediation,
  type RemediationEntry,
  type RemediationState,
  STATE_RANK,
} from '../remediation/model.js';
import { finishedHour } from './activity-counts.js';
import {
  ACTIVITY_KEPT_MS,
  activityHour,
  type EscalationSelection,
  listedAtMost,
  newestOpenedFirst,
  type OpenEscalation,
  REFUSED_MARKER,
  type RecordTransitionOptions,
} from './cooldown-store.js';
import { stateField } from './redis-activity.js';
import type { RedisKeys } from './redis-keys.js';
import type { RemediationCommands } from './redis-remediation-scripts.js';
import { positiveMs } from './redis-values.js';

/** The plain commands the closed loop's reads need besides its scripts. */
interface RemediationClient extends RemediationCommands {
  get(key: string): Promise<string | null>;
  mget(keys: string[]): Promise<(string | null)[]>;
  zrevrange(key: string, start: number, stop: number): Promise<string[]>;
  zrangebyscore(key: string, min: string, max: string, withScores: 'WITHSCORES'): Promise<string[]>;
  hgetall(key: string): Promise<Record<string, string>>;
}

/** A filtered listing reads at most this many remediations: a rare state never scans the whole week. */
const MAX_SCANNED = 10_000;
const MIN_PAGE = 100;
const MAX_PAGE = 1_000;

/** The escalations listing reads the escalations of at most this many cooldown keys. */
const MAX_INDEXED_ESCALATION_KEYS = 10_000;

/** STATE_RANK and FINAL_STATES as script arguments: state, rank, 1 when final (else 0), … */
const STATE_ARGS = REMEDIATION_STATES.flatMap((state) => [state, STATE_RANK[state], FINAL_STATES.has(state) ? 1 : 0]);

/**
 * The closed loop's part of the Redis store (SPEC §9): remediations, attempts and escalations.
 * The store runs each call through its own error handling; this class only speaks Redis.
 */
export class RedisRemediations {
  constructor(
    private readonly client: RemediationClient,
    private readonly keys: RedisKeys,
    /** Ages out attempts, escalations and the remediation index; Redis keeps its own time for TTLs. */
    private readonly now: () => number,
  ) {}

  /**
   * `submittedAt`: the remediation's, in epoch ms (submittedAtMs); `marker`: what a recorded
   * state's marker holds (markerOf). Both read before the store is asked.
   */
  async recordTransition(
    remediation: Remediation,
    submittedAt: number,
    marker: string,
    entry: RemediationEntry,
    options: RecordTransitionOptions,
  ): Promise<boolean> {
    const retentionMs = positiveMs(options.retentionMs);
    const now = this.now();
    // A final state is counted in the activity of the hour it finished by the call that records
    // it; not at all when that hour is no longer kept.
    const hour = FINAL_STATES.has(remediation.state) ? finishedHour(remediation, now) : undefined;
    const finished = hour === undefined ? '' : stateField(remediation.rule, remediation.state);
    const recorded = await this.client.recordTransition(
      this.keys.marker(remediation.workflow, remediation.state),
      this.keys.remediation(remediation.workflow),
      this.keys.remediationIndex(),
      this.keys.decisions(),
      this.keys.activity(hour ?? activityHour(now)),
      JSON.stringify(remediation),
      remediation.state,
      retentionMs,
      submittedAt,
      remediation.workflow,
      now - retentionMs,
      JSON.stringify(entry),
      Math.max(0, Math.floor(options.auditMaxLen)),
      marker,
      options.token ?? '',
      REFUSED_MARKER,
      finished,
      ACTIVITY_KEPT_MS,
      ...STATE_ARGS,
    );
    return recorded === 1;
  }

  /**
   * Newest first, a page at a time, until `limit` match. Reads need not be atomic: a remediation
   * recorded meanwhile shifts the pages, so one seen already is not listed twice. (Redis Cluster:
   * the MGET of a page names many records, like the scripts that name several keys.)
   */
  async listRemediations(limit: number, state?: RemediationState): Promise<Remediation[]> {
    const wanted = Math.floor(limit);
    if (!(wanted >= 1)) return [];
    const pageSize = Math.min(MAX_PAGE, Math.max(MIN_PAGE, wanted));
    const listed: Remediation[] = [];
    const seen = new Set<string>();
    const gone: string[] = [];
    for (let offset = 0; offset < MAX_SCANNED && listed.length < wanted; offset += pageSize) {
      const workflows = await this.client.zrevrange(this.keys.remediationIndex(), offset, offset + pageSize - 1);
      if (workflows.length === 0) break;
      const records = await this.client.mget(workflows.map((workflow) => this.keys.remediation(workflow)));
      for (const [i, workflow] of workflows.entries()) {
        if (seen.has(workflow)) continue;
        seen.add(workflow);
        const record = records[i];
        if (record === null || record === undefined) {
          gone.push(workflow);
          continue;
        }
        const remediation = parseRemediation(record);
        if (remediation && (state === undefined || remediation.state === state)) listed.push(remediation);
        if (listed.length === wanted) break;
      }
      if (workflows.length < pageSize) break;
    }
    if (gone.length > 0) await this.forget(gone);
    return listed;
  }

  async getRemediation(workflow: string): Promise<Remediation | null> {
    const record = await this.client.get(this.keys.remediation(workflow));
    return record === null ? null : (parseRemediation(record) ?? null);
  }

  async addAttempt(key: string, attempt: Attempt, windowMs: number): Promise<void> {
    const window = positiveMs(windowMs);
    await this.client.addAttempt(this.keys.attempts(key), attempt.at, attempt.workflow, this.now() - window, window);
  }

  async listAttempts(key: string, windowMs: number): Promise<Attempt[]> {
    const since = this.now() - positiveMs(windowMs);
    const flat = await this.client.zrangebyscore(this.keys.attempts(key), `(${since}`, '+inf', 'WITHSCORES');
    const attempts: Attempt[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      attempts.push({ workflow: flat[i] as string, at: Number(flat[i + 1]) });
    }
    return attempts;
  }

  /**
   * The key goes into the escalation index first: a failure there fails the call before anything
   * is opened, and its retry opens it (the other way round, the retry would find it open and no
   * one would send it). An entry that outlives what it names (the escalation was found firing
   * already, or was closed) is skipped by the listing, and dropped once its score has passed.
   */
  async openEscalation(key: string, id: string, alert: EscalationAlert, ttlMs: number): Promise<boolean> {
    const now = this.now();
    const ttl = positiveMs(ttlMs);
    const expiresAt = now + ttl;
    await this.client.indexEscalation(this.keys.escalationIndex(), key, expiresAt, now, ttl);
    const field = JSON.stringify({ alert, expiresAt, openedAt: now });
    return (await this.client.openEscalation(this.keys.escalations(key), id, field, now, ttl)) === 1;
  }

  async closeEscalations(key: string, which: EscalationSelection): Promise<EscalationAlert[]> {
    const [mode, args] =
      which === 'all'
        ? (['all', []] as const)
        : 'prefixes' in which
          ? (['prefixes', which.prefixes] as const)
          : (['ids', which] as const);
    if (mode !== 'all' && args.length === 0) return [];
    const taken = await this.client.closeEscalations(this.keys.escalations(key), this.now(), mode, ...args);
    return taken.flatMap((field) => {
      const alert = parseEscalation(field);
      return alert ? [alert] : [];
    });
  }

  /**
   * The keys the escalation index names (those whose escalations end last, when there are more
   * than it reads), then each one's hash, all asked at once: one round trip per node of a
   * cluster. A key that is not a hash (someone else's) is skipped. Escalations opened before the
   * index was written (an upgrade) are not listed until their key opens one again; they end
   * within --escalation-ttl all the same.
   */
  async listEscalations(limit: number): Promise<OpenEscalation[]> {
    const wanted = listedAtMost(limit);
    if (wanted === 0) return [];
    const now = this.now();
    const indexed = await this.client.indexedEscalations(this.keys.escalationIndex(), now, MAX_INDEXED_ESCALATION_KEYS);
    const hashes = await Promise.all(
      indexed.map((cooldownKey) => this.client.hgetall(this.keys.escalations(cooldownKey)).catch(skipWrongType)),
    );
    const listed: OpenEscalation[] = [];
    for (const [i, cooldownKey] of indexed.entries()) {
      for (const [id, value] of Object.entries(hashes[i] ?? {})) {
        const firing = parseFiring(value);
        if (firing && firing.expiresAt > now) listed.push({ cooldownKey, id, ...firing });
      }
    }
    return listed.sort(newestOpenedFirst).slice(0, wanted);
  }

  /** Drops Workflows whose record has expired from the index, lazily, when a listing finds them. */
  private async forget(workflows: string[]): Promise<void> {
    const records = workflows.map((workflow) => this.keys.remediation(workflow));
    await this.client.forgetRemediations(1 + records.length, this.keys.remediationIndex(), ...records, ...workflows);
  }
}

/** A record that is not a remediation (someone else's key) is skipped rather than listed. */
function parseRemediation(value: string): Remediation | undefined {
  const record = parseObject(value);
  if (typeof record?.workflow !== 'string' || !isRemediationState(record.state)) {
    return undefined;
  }
  return record as unknown as Remediation;
}

/** A field of escalations as the open script wrote it; openedAt is missing from those written before it was noted. */
function parseFiring(value: string): Omit<OpenEscalation, 'cooldownKey' | 'id'> | undefined {
  const field = parseObject(value);
  const alert = alertOf(field);
  const expiresAt = field?.expiresAt;
  if (!alert || typeof expiresAt !== 'number') return undefined;
  const openedAt = field?.openedAt;
  return { alert, expiresAt, ...(typeof openedAt === 'number' ? { openedAt } : {}) };
}

/** HGETALL of a key that holds another type answers WRONGTYPE: not escalations, so nothing. */
function skipWrongType(error: unknown): Record<string, string> {
  if (error instanceof Error && error.message.startsWith('WRONGTYPE')) return {};
  throw error;
}

function parseEscalation(value: string): EscalationAlert | undefined {
  return alertOf(parseObject(value));
}

function alertOf(field: Record<string, unknown> | undefined): EscalationAlert | undefined {
  const alert = field?.alert;
  if (typeof alert !== 'object' || alert === null || Array.isArray(alert)) return undefined;
  return alert as EscalationAlert;
}

function parseObject(value: string): Record<string, unknown> | undefined {
  try {
    const parsed: unknown = JSON.parse(value);
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
      return parsed as Record<string, unknown>;
    }
  } catch {
    // Not JSON: not ours.
  }
  return undefined;
}
