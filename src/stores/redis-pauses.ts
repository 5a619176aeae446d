/**
 * The pauses (SPEC §11) in Redis: one hash of every pause (id → what is stored), whose TTL is the
 * latest expiry, so that it is gone once they all are; the expired ones are dropped by every
 * write and skipped by every read. Each add and remove is published, so every replica reloads its
 * copy. The store runs each call but `listen` through its own error handling; this module only
 * speaks Redis.
 */

import type { Redis } from 'ioredis';
import { isPause, type Pause } from '../pause.js';
import { pauseExpiresAtMs, type RestoredPauses, type StoreLogger } from './cooldown-store.js';
import type { RedisKeys } from './redis-keys.js';
import type { RedisSubscription } from './redis-subscription.js';

/**
 * Drops the expired (and unreadable) pauses of KEYS[1] at `now`, and sets its TTL to the latest
 * expiry left; deletes it when none is left. Shared by both scripts.
 */
const SETTLE_LUA = `
local function expiry(value)
  local ok, stored = pcall(cjson.decode, value)
  if ok and type(stored) == 'table' and type(stored.expiresAtMs) == 'number' then
    return stored.expiresAtMs
  end
  return nil
end
local function settle(key, now)
  local latest = nil
  local fields = redis.call('HGETALL', key)
  for i = 1, #fields, 2 do
    local at = expiry(fields[i + 1])
    if at == nil or at <= now then
      redis.call('HDEL', key, fields[i])
    elseif latest == nil or at > latest then
      latest = at
    end
  end
  if latest == nil then
    redis.call('DEL', key)
  else
    redis.call('PEXPIRE', key, math.ceil(latest - now))
  end
end
`;

/** KEYS[1] the pauses; ARGV[1] now (epoch ms), ARGV[2] the id, ARGV[3] what is stored, ARGV[4] the channel. */
const ADD_PAUSE_LUA = `${SETTLE_LUA}
local now = tonumber(ARGV[1])
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
settle(KEYS[1], now)
redis.call('PUBLISH', ARGV[4], ARGV[2])
return 1
`;

/**
 * KEYS[1] the pauses; ARGV[1] now (epoch ms), ARGV[2] the id, ARGV[3] the channel, ARGV[4] the
 * tombstone to leave in its place. Answers what was stored when the pause was in force (and
 * publishes its id), else false. The tombstone keeps the pause's expiry: until then no replica
 * writes the pause back (RESTORE_PAUSES_LUA) from a copy that missed the removal.
 */
const REMOVE_PAUSE_LUA = `${SETTLE_LUA}
local now = tonumber(ARGV[1])
local held = redis.call('HGET', KEYS[1], ARGV[2])
local at = held and expiry(held)
if not held or at == nil or at <= now then
  settle(KEYS[1], now)
  return false
end
local ok, stored = pcall(cjson.decode, held)
if not ok or type(stored) ~= 'table' or stored.removed then
  return false
end
redis.call('HSET', KEYS[1], ARGV[2], string.format(ARGV[4], at))
settle(KEYS[1], now)
redis.call('PUBLISH', ARGV[3], ARGV[2])
return held
`;

/**
 * KEYS[1] the pauses; ARGV[1] now (epoch ms), ARGV[2] the channel, then pairs of an id and what
 * to store. Writes each pause the hash knows nothing of (neither in force nor removed) and that
 * has not expired, and publishes when it wrote any. Answers two lists of ids: those written, and
 * those in force already (another replica wrote them back first).
 */
const RESTORE_PAUSES_LUA = `${SETTLE_LUA}
local now = tonumber(ARGV[1])
local written, held = {}, {}
for i = 3, #ARGV, 2 do
  local at = expiry(ARGV[i + 1])
  if at ~= nil and at > now then
    local found = redis.call('HGET', KEYS[1], ARGV[i])
    if not found then
      redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
      written[#written + 1] = ARGV[i]
    else
      local ok, stored = pcall(cjson.decode, found)
      local until_ = expiry(found)
      if ok and type(stored) == 'table' and not stored.removed and until_ ~= nil and until_ > now then
        held[#held + 1] = ARGV[i]
      end
    end
  end
end
if #written > 0 then
  settle(KEYS[1], now)
  redis.call('PUBLISH', ARGV[2], written[1])
end
return {written, held}
`;

export interface PauseCommands {
  pauseAdd(key: string, now: number, id: string, stored: string, channel: string): Promise<number>;
  pauseRemove(key: string, now: number, id: string, channel: string, tombstone: string): Promise<string | null>;
  pauseRestore(key: string, now: number, channel: string, ...idsThenStored: string[]): Promise<[string[], string[]]>;
}

export function definePauseScripts(client: Redis): void {
  client.defineCommand('pauseAdd', { numberOfKeys: 1, lua: ADD_PAUSE_LUA });
  client.defineCommand('pauseRemove', { numberOfKeys: 1, lua: REMOVE_PAUSE_LUA });
  client.defineCommand('pauseRestore', { numberOfKeys: 1, lua: RESTORE_PAUSES_LUA });
}

type PauseClient = Pick<Redis, 'hgetall'> & PauseCommands;

/** What one field of the hash holds: the expiry where the scripts read it, and the pause. */
interface StoredPause {
  expiresAtMs: number;
  pause: Pause;
}

/** A removed pause's field until it would have expired (`%d`: its expiry, filled in by the script). */
const TOMBSTONE = '{"expiresAtMs":%d,"removed":true}';

export class RedisPauses {
  constructor(
    private readonly client: PauseClient,
    private readonly keys: RedisKeys,
    /** Which pauses have expired; Redis keeps its own time for the hash's TTL. */
    private readonly now: () => number,
    private readonly logger: StoreLogger | undefined,
    /** The store's pub/sub connection, which the store closes. */
    private readonly subscription: RedisSubscription,
  ) {}

  async add(pause: Pause, expiresAtMs: number): Promise<void> {
    const stored: StoredPause = { expiresAtMs, pause };
    await this.client.pauseAdd(
      this.keys.pauses(),
      this.now(),
      pause.id,
      JSON.stringify(stored),
      this.keys.pausesChannel(),
    );
  }

  async list(): Promise<Pause[]> {
    const fields = await this.client.hgetall(this.keys.pauses());
    const now = this.now();
    const listed: Pause[] = [];
    for (const value of Object.values(fields)) {
      const stored = storedOrUndefined(value);
      if (stored && stored.expiresAtMs > now) listed.push(stored.pause);
    }
    return listed;
  }

  async remove(id: string): Promise<Pause | null> {
    const held = await this.client.pauseRemove(
      this.keys.pauses(),
      this.now(),
      id,
      this.keys.pausesChannel(),
      TOMBSTONE,
    );
    return held === null ? null : (storedOrUndefined(held)?.pause ?? null);
  }

  async restore(pauses: readonly Pause[]): Promise<RestoredPauses> {
    if (pauses.length === 0) return { written: [], held: [] };
    const pairs = pauses.flatMap((pause) => {
      const stored: StoredPause = { expiresAtMs: pauseExpiresAtMs(pause), pause };
      return [pause.id, JSON.stringify(stored)];
    });
    const [written, held] = await this.client.pauseRestore(
      this.keys.pauses(),
      this.now(),
      this.keys.pausesChannel(),
      ...pairs,
    );
    return { written, held };
  }

  listen(listener: (id: string | null) => void): () => void {
    return this.subscription.listen(this.keys.pausesChannel(), listener, (error, id) =>
      this.logger?.error({ err: error, pause: id }, 'a listener of changed pauses failed'),
    );
  }
}

/** The expiry is the pause's own, read again: a field whose two disagree was not written by a store. */
function storedOrUndefined(value: string): StoredPause | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const { expiresAtMs, pause } = parsed as Partial<StoredPause>;
  if (typeof expiresAtMs !== 'number' || !isPause(pause)) return undefined;
  try {
    return pauseExpiresAtMs(pause) === expiresAtMs ? { expiresAtMs, pause } : undefined;
  } catch {
    return undefined;
  }
}
