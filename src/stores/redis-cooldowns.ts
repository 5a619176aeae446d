/**
 * The cooldowns a person sees and ends by hand (SPEC §10): the listing of held keys, the end of
 * one with its marker, and the message every replica hears so that it drops the key from its
 * memory. The store runs each call but `listen` through its own error handling; this module
 * only speaks Redis.
 */

import type { Redis } from 'ioredis';
import { type CooldownClaim, type HeldCooldown, listedAtMost, type StoreLogger } from './cooldown-store.js';
import { groupBySlot, type RedisConnection } from './redis-connection.js';
import type { RedisKeys } from './redis-keys.js';
import type { RedisSubscription } from './redis-subscription.js';
import { parseClaim, positiveMs } from './redis-values.js';

/** Keys SCAN looks at per call: a listing walks a large keyspace in a few hundred round trips, none of them long. */
const SCAN_COUNT = 500;

/**
 * KEYS cooldown keys. Answers per key its value and PTTL, or false when it is gone or holds
 * another type: the keys come from a SCAN, and may have changed since.
 */
const HELD_COOLDOWNS_LUA = `
local answers = {}
for i, key in ipairs(KEYS) do
  local value = redis.pcall('GET', key)
  if type(value) == 'string' then
    answers[i] = { value, redis.call('PTTL', key) }
  else
    answers[i] = false
  end
end
return answers
`;

/**
 * KEYS[1] the cooldown key, KEYS[2] its ended marker; ARGV[1] now (epoch ms, the store's clock),
 * ARGV[2] how long the marker is kept in ms, ARGV[3] the channel, ARGV[4] the key as the caller
 * named it. Deletes the key whatever it holds, sets the marker, publishes the key; answers what
 * the key held when it was a string, else false. The message goes out in the same step as the
 * marker, so a replica that hears it and looks finds the marker.
 */
const END_COOLDOWN_LUA = `
local held = redis.pcall('GET', KEYS[1])
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
if type(held) == 'string' then
  return held
end
return false
`;

export interface CooldownCommands {
  cooldownsHeld(numberOfKeys: number, ...keys: string[]): Promise<([string, number] | null)[]>;
  cooldownEnd(
    key: string,
    marker: string,
    now: number,
    markerMs: number,
    channel: string,
    named: string,
  ): Promise<string | null>;
}

export function defineCooldownScripts(client: Redis): void {
  // The listing names as many keys as the SCAN found: given first on every call.
  client.defineCommand('cooldownsHeld', { lua: HELD_COOLDOWNS_LUA });
  client.defineCommand('cooldownEnd', { numberOfKeys: 2, lua: END_COOLDOWN_LUA });
}

type CooldownClient = Pick<Redis, 'get'> & CooldownCommands;

/** What the listing needs of the connection's mode. */
type Connection = Pick<RedisConnection, 'cluster' | 'scanTargets'>;

export class RedisCooldowns {
  constructor(
    private readonly client: CooldownClient,
    private readonly connection: Connection,
    private readonly keys: RedisKeys,
    /** Stamps the ended marker, and turns a PTTL into an expiry. */
    private readonly now: () => number,
    private readonly logger: StoreLogger | undefined,
    /** The store's pub/sub connection, which the store closes. */
    private readonly subscription: RedisSubscription,
  ) {}

  async list(limit: number): Promise<HeldCooldown[]> {
    const wanted = listedAtMost(limit);
    if (wanted === 0) return [];
    // SCAN may return a key twice: a set keeps each once. A cluster is scanned master by master.
    const found = new Set<string>();
    for (const server of this.connection.scanTargets()) {
      let cursor = '0';
      do {
        const [next, keys] = await server.scan(cursor, 'MATCH', this.keys.cooldownPattern(), 'COUNT', SCAN_COUNT);
        cursor = next;
        for (const key of keys) {
          if (found.size === wanted) break;
          found.add(key);
        }
      } while (cursor !== '0' && found.size < wanted);
      if (found.size === wanted) break;
    }
    if (found.size === 0) return [];
    const keys = [...found];
    // The script names many keys: one call per slot on a cluster.
    const groups = groupBySlot(keys, (key) => key, this.connection.cluster);
    const answers = await Promise.all(groups.map((group) => this.client.cooldownsHeld(group.length, ...group)));
    const now = this.now();
    const listed: HeldCooldown[] = [];
    for (const [g, group] of groups.entries()) {
      for (const [i, stored] of group.entries()) {
        const answer = answers[g]?.[i];
        // A key without a TTL was not written by a store: cooldowns always expire.
        if (!answer || !(answer[1] > 0)) continue;
        const key = this.keys.cooldownKeyOf(stored);
        const claim = key === undefined ? undefined : claimOrUndefined(answer[0], key);
        if (key !== undefined && claim) listed.push({ key, claim, expiresAt: now + answer[1] });
      }
    }
    return listed;
  }

  async end(key: string, endedMarkerMs: number): Promise<CooldownClaim | null> {
    const held = await this.client.cooldownEnd(
      this.keys.cooldown(key),
      this.keys.cooldownEnded(key),
      this.now(),
      positiveMs(endedMarkerMs),
      this.keys.cooldownEndedChannel(),
      key,
    );
    // Something that was not a claim is gone all the same: there is no claim to answer.
    return held === null ? null : (claimOrUndefined(held, key) ?? null);
  }

  async endedAt(key: string): Promise<number | null> {
    const marker = await this.client.get(this.keys.cooldownEnded(key));
    if (marker === null) return null;
    const at = Number(marker);
    return Number.isFinite(at) ? at : null;
  }

  /** Never throws: a subscriber that cannot connect logs, keeps trying, and says null once it is back. */
  listen(listener: (key: string | null) => void): () => void {
    return this.subscription.listen(this.keys.cooldownEndedChannel(), listener, (error, key) =>
      this.logger?.error({ err: error, key }, 'a listener of ended cooldowns failed'),
    );
  }
}

/** A key that holds something else than a claim (someone else's) is skipped, not an error. */
function claimOrUndefined(value: string, key: string): CooldownClaim | undefined {
  try {
    return parseClaim(value, key);
  } catch {
    return undefined;
  }
}
