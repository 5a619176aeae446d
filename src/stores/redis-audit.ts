/**
 * The audit trail in Redis: a capped stream, newest entry last. Repeats of a non-acting decision
 * are folded into the entry they repeat (SPEC §11): that entry is taken out of the stream and
 * added again at its end, counted, so the trail lists entries by their latest occurrence and one
 * alert resent every minute for days stays one entry.
 */
import type { Redis } from 'ioredis';
import { type AuditEntry, type DecisionRecord, folded, foldingKey } from '../decision.js';
import { Batcher } from './batch.js';
import { ACTIVITY_KEPT_MS, type Activity } from './cooldown-store.js';
import { fieldsOf, readActivity, tallyDecisions } from './redis-activity.js';
import type { RedisKeys } from './redis-keys.js';

/**
 * How long the note of a fingerprint's latest entry is kept: a repeat that comes later starts an
 * entry of its own. Alertmanager's default repeat_interval is 4h, Prometheus resends every minute.
 */
export const FOLD_NOTE_TTL_MS = 24 * 60 * 60 * 1000;

/**
 * KEYS[1] the stream, then the fold notes (one per fingerprint of the batch), then the activity
 * buckets the batch counts in, and last the rules' latest matches. ARGV[1] the stream's
 * approximate cap, ARGV[2] the notes' TTL in ms, ARGV[3] how many entries, ARGV[4] how many
 * counts, ARGV[5] how long a bucket is kept in ms; then per entry: its JSON, its folding key (''
 * for an entry that is never folded), the index of its note in KEYS (0 for none), how many
 * decisions it stands for, and the time of the first of them; then per count: the index of its
 * bucket in KEYS, the field and how much to add; then pairs of a rule and the time of its latest
 * match, which never moves back (replicas' clocks differ a little).
 *
 * A note `<id> <count> <firstAt> <foldingKey>` says which entry was the fingerprint's latest. An
 * entry whose folding key equals its note's, while the noted entry is still in the stream (XDEL
 * answers 1; the cap may have trimmed it), replaces it with the counts added up; any other entry
 * of that fingerprint (an action) ends the folding by dropping the note.
 */
const APPEND_LUA = `
local stream, cap, ttl = KEYS[1], ARGV[1], ARGV[2]
local entries, counts, bucketTtl = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
for i = 6, 5 + 5 * entries, 5 do
  local json, fold, note, count, first = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3]), ARGV[i + 4]
  if note > 0 and fold ~= '' then
    local last = redis.call('GET', KEYS[note])
    if last then
      local id, counted, firstAt, key = string.match(last, '^(%S+) (%d+) (%S+) (.*)$')
      if key == fold and redis.call('XDEL', stream, id) == 1 then
        count = count + tonumber(counted)
        first = firstAt
      end
    end
  end
  local id
  if count > 1 then
    id = redis.call('XADD', stream, 'MAXLEN', '~', cap, '*', 'json', json, 'count', count, 'first', first)
  else
    id = redis.call('XADD', stream, 'MAXLEN', '~', cap, '*', 'json', json)
  end
  if note > 0 then
    if fold ~= '' then
      redis.call('SET', KEYS[note], id .. ' ' .. count .. ' ' .. first .. ' ' .. fold, 'PX', ttl)
    else
      redis.call('DEL', KEYS[note])
    end
  end
end
local tallied = 6 + 5 * entries
for i = tallied, tallied + 3 * counts - 1, 3 do
  local bucket = KEYS[tonumber(ARGV[i])]
  redis.call('HINCRBY', bucket, ARGV[i + 1], ARGV[i + 2])
  redis.call('PEXPIRE', bucket, bucketTtl)
end
local lastMatch = KEYS[#KEYS]
for i = tallied + 3 * counts, #ARGV, 2 do
  local held = tonumber(redis.call('HGET', lastMatch, ARGV[i]))
  if not held or held < tonumber(ARGV[i + 1]) then
    redis.call('HSET', lastMatch, ARGV[i], ARGV[i + 1])
  end
end
return 1
`;

export type AuditCommands = {
  appendDecisions(numberOfKeys: number, ...keysThenArgs: (string | number)[]): Promise<number>;
};

export function defineAuditScripts(client: Redis): void {
  // The number of keys varies with the batch: given first on every call.
  client.defineCommand('appendDecisions', { lua: APPEND_LUA });
}

/** One entry to append, as the store queues it. */
interface AuditItem {
  entry: AuditEntry;
  maxLen: number;
  /** The store's clock when it was appended: the hour its decision is counted in. */
  at: number;
}

/** Entries of one batch after the repeats within it were added up. */
interface Folding {
  /** The latest of the repeats: the one written. */
  entry: AuditEntry;
  fold: string;
  fingerprint: string | undefined;
  count: number;
  firstAt: string;
}

type AuditKeys = Pick<RedisKeys, 'decisions' | 'foldNote' | 'activity' | 'lastMatch'>;

/**
 * The script's arguments for one batch. Repeats within the batch are added up here first, into
 * the fingerprint's latest entry of the batch (a storm's repeats cost Redis one entry, not one
 * each); the activity is counted here too, each decision once, folded or not.
 */
function appendArguments(keys: AuditKeys, items: readonly AuditItem[]): (string | number)[] {
  // Insertion-ordered: an entry moved to the end is deleted and added again.
  const entries = new Set<Folding>();
  const latest = new Map<string, Folding>();
  for (const { entry } of items) {
    const fold = foldingKey(entry) ?? '';
    const fingerprint = 'kind' in entry ? undefined : entry.fingerprint;
    const previous = fingerprint === undefined ? undefined : latest.get(fingerprint);
    if (previous && fold !== '' && previous.fold === fold) {
      previous.entry = entry;
      previous.count++;
      // Listed at its latest occurrence, as a repeat in a later batch would be.
      entries.delete(previous);
      entries.add(previous);
      continue;
    }
    const folding = { entry, fold, fingerprint, count: 1, firstAt: entry.at };
    entries.add(folding);
    if (fingerprint !== undefined) latest.set(fingerprint, folding);
  }
  const notes = [...latest.keys()];
  const noteIndex = new Map(notes.map((fingerprint, i) => [fingerprint, i + 2]));
  // One cap per call (the largest asked for); in practice every record carries the same one.
  const maxLen = Math.max(0, ...items.map((item) => Math.floor(item.maxLen)));
  const tally = tallyDecisions(items);
  const hours = [...tally.hours.keys()];
  const firstBucket = 2 + notes.length;
  const counts = [...tally.hours.values()].flatMap((hour, i) =>
    fieldsOf(hour.counts()).flatMap(([field, count]) => [firstBucket + i, field, count]),
  );
  return [
    2 + notes.length + hours.length,
    keys.decisions(),
    ...notes.map((fingerprint) => keys.foldNote(fingerprint)),
    ...hours.map((hour) => keys.activity(hour)),
    keys.lastMatch(),
    maxLen,
    FOLD_NOTE_TTL_MS,
    entries.size,
    counts.length / 3,
    ACTIVITY_KEPT_MS,
    ...[...entries].flatMap((e) => [
      JSON.stringify(e.entry),
      e.fold,
      e.fingerprint === undefined ? 0 : (noteIndex.get(e.fingerprint) ?? 0),
      e.count,
      e.firstAt,
    ]),
    ...counts,
    ...[...tally.lastMatch].flat(),
  ];
}

type AuditClient = AuditCommands & Pick<Redis, 'xrevrange' | 'pipeline'>;

/**
 * The audit trail of the Redis store and the activity counted with it. The store runs each call
 * through its own error handling; this class only speaks Redis.
 */
export class RedisAudit {
  /** Records asked for in one event-loop turn go to Redis as one script call (one slot: `{records}`). */
  private readonly records: Batcher<AuditItem, void>;

  constructor(
    private readonly client: AuditClient,
    private readonly keys: RedisKeys,
    /** The hour a decision is counted in, and the hours the activity reads. */
    private readonly now: () => number,
    maxBatch: number,
  ) {
    this.records = new Batcher<AuditItem, void>(async (items) => {
      const [numberOfKeys, ...keysThenArgs] = appendArguments(keys, items);
      await client.appendDecisions(numberOfKeys as number, ...keysThenArgs);
      return items.map(() => undefined);
    }, maxBatch);
  }

  append(entry: AuditEntry, maxLen: number): Promise<void> {
    return this.records.add({ entry, maxLen, at: this.now() });
  }

  async list(limit: number): Promise<AuditEntry[]> {
    const count = Math.floor(limit);
    if (!(count >= 1)) return [];
    const entries = await this.client.xrevrange(this.keys.decisions(), '+', '-', 'COUNT', count);
    const records: AuditEntry[] = [];
    for (const [, fields] of entries) {
      const record = parseAuditEntry(fields);
      if (record) records.push(record);
    }
    return records;
  }

  activity(hours: number): Promise<Activity> {
    return readActivity(this.client, this.keys, hours, this.now());
  }

  /** Sends what is waiting now; resolves once every batch sent has its answer (for close). */
  drain(): Promise<void> {
    return this.records.drain();
  }
}

/** An entry of the stream as GET /v1/decisions shows it; undefined for one that cannot be read. */
function parseAuditEntry(fields: readonly string[]): AuditEntry | undefined {
  let entry: AuditEntry | undefined;
  let count = 1;
  let first: string | undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const value = fields[i + 1] ?? '';
    if (fields[i] === 'json') entry = parseJsonObject(value);
    else if (fields[i] === 'count') count = Number(value);
    else if (fields[i] === 'first') first = value;
  }
  if (!entry || 'kind' in entry || first === undefined || !Number.isInteger(count)) return entry;
  return folded(entry as DecisionRecord, count, first);
}

function parseJsonObject(text: string): AuditEntry | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as AuditEntry) : undefined;
  } catch {
    return undefined;
  }
}
