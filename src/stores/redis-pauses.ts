/**
 * The pauses (SPEC §11) in Redis: one hash of every pause (id → what is stored), whose TTL is the
 * latest expiry, so that it is gone once they all are; the expired ones are dropped by every
 * write and skipped by every read. Each add and remove is published, so every replica reloads its
 * copy. The store runs each call but `listen` through its own error handling; this module only
 * speaks Redis.
 */

import type { Redis } from 'ioredis';
import { isPause, type Pause } from '../pause.js';
import { pauseExpiresAtMs, type StoreLogger } from './cooldown-store.js';
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
 * KEYS[1] the pauses; ARGV[1] now (epoch ms), ARGV[2] the id, ARGV[3] the channel. Answers what
 * was stored when the pause was in force (and publishes its id), else false.
 */
const REMOVE_PAUSE_LUA = `${SETTLE_LUA}
local now = tonumber(ARGV[1])
local held = redis.call('HGET', KEYS[1], ARGV[2])
local at = held and expiry(held)
if not held then
  return false
end
redis.call('HDEL', KEYS[1], ARGV[2])
settle(KEYS[1], now)
if at == nil or at <= now then
  return false
end
redis.call('PUBLISH', ARGV[3], ARGV[2])
return held
`;

export interface PauseCommands {
  pauseAdd(key: string, now: number, id: string, stored: string, channel: string): Promise<number>;
  pauseRemove(key: string, now: number, id: string, channel: string): Promise<string | null>;
}

export function definePauseScripts(client: Redis): void {
  client.defineCommand('pauseAdd', { numberOfKeys: 1, lua: ADD_PAUSE_LUA });
  client.defineCommand('pauseRemove', { numberOfKeys: 1, lua: REMOVE_PAUSE_LUA });
}

type PauseClient = Pick<Redis, 'hgetall'> & PauseCommands;

/** What one field of the hash holds: the expiry where the scripts read it, and the pause. */
interface StoredPause {
  expiresAtMs: number;
  pause: Pause;
}

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
    const held = await this.client.pauseRemove(this.keys.pauses(), this.now(), id, this.keys.pausesChannel());
    return held === null ? null : (storedOrUndefined(held)?.pause ?? null);
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
