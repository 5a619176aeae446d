/**
 * The cooldowns a person sees and ends by hand (SPEC §10): the listing of held keys, the end of
 * one with its marker, and the message every replica hears so that it drops the key from its
 * memory. The store runs each call but `listen` through its own error handling; this module
 * only speaks Redis.
 */

import type { Redis } from 'ioredis';
import { atMostEvery } from '../throttle.js';
import { type CooldownClaim, type HeldCooldown, MAX_LISTED_COOLDOWNS, type StoreLogger } from './cooldown-store.js';
import { groupBySlot, type RedisConnection } from './redis-connection.js';
import type { RedisKeys } from './redis-keys.js';
import { parseClaim, positiveMs } from './redis-values.js';

/** Keys SCAN looks at per call: a listing walks a large keyspace in a few hundred round trips, none of them long. */
const SCAN_COUNT = 500;
/** After a cluster node's subscriber ended, the next one opens after this, doubling while they fail. */
const FIRST_RESUBSCRIBE_DELAY_MS = 50;
const MAX_RESUBSCRIBE_DELAY_MS = 2000;
/** A subscriber that keeps failing makes an error per reconnect attempt; one log line per interval is enough. */
const ERROR_LOG_INTERVAL_MS = 10_000;

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

/** What the listing and the subscriber need of the connection's mode. */
type Connection = Pick<RedisConnection, 'cluster' | 'subscriber' | 'scanTargets'>;

type EndedListener = (key: string | null) => void;

export class RedisCooldowns {
  /** Opened on the first listener, for as long as the store: a connection in subscriber mode takes no other command. */
  private subscriber: Redis | undefined;
  /** One entry per call of listen, so a listener added twice is stopped once per stop. */
  private readonly listeners = new Set<{ heard: EndedListener }>();
  private readonly errorLogDue: () => number | undefined;
  private closed = false;
  /** Subscribers opened since one was last subscribed: the next waits longer. */
  private resubscribes = 0;

  constructor(
    private readonly client: CooldownClient,
    private readonly connection: Connection,
    private readonly keys: RedisKeys,
    /** Stamps the ended marker, and turns a PTTL into an expiry. */
    private readonly now: () => number,
    private readonly logger: StoreLogger | undefined,
    /** `host:port`, for log lines. */
    private readonly address: string,
  ) {
    this.errorLogDue = atMostEvery(ERROR_LOG_INTERVAL_MS, () => this.now());
  }

  async list(limit: number): Promise<HeldCooldown[]> {
    const wanted = Math.min(MAX_LISTED_COOLDOWNS, Math.floor(limit));
    if (!(wanted >= 1)) return [];
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
  listen(listener: EndedListener): () => void {
    if (this.closed) return () => {};
    const entry = { heard: listener };
    this.listeners.add(entry);
    this.subscriber ??= this.subscribe();
    return () => {
      this.listeners.delete(entry);
    };
  }

  /** Synchronous: nothing is left to send on a subscriber, so it is dropped at once. */
  close(): void {
    this.closed = true;
    this.listeners.clear();
    this.subscriber?.disconnect();
  }

  private subscribe(): Redis {
    const channel = this.keys.cooldownEndedChannel();
    // Subscribed anew on every 'ready' rather than by ioredis's autoResubscribe, so that the
    // listeners learn when the subscription is back, and a refused SUBSCRIBE is tried again.
    const subscriber = this.connection.subscriber();
    subscriber.on('ready', () => {
      subscriber.subscribe(channel).then(
        () => {
          this.resubscribes = 0;
          this.deliver(null);
        },
        (error: Error) => {
          this.logError(error);
          // Connected but not subscribed, nothing would be heard: reconnect and try again.
          if (!this.closed && subscriber.status === 'ready') subscriber.disconnect(true);
        },
      );
    });
    // A cluster node's connection ends with its node: another one takes over, and says null once
    // subscribed (an end published meanwhile was not heard).
    subscriber.on('end', () => {
      if (this.closed || this.subscriber !== subscriber) return;
      this.subscriber = undefined;
      const delay = Math.min(MAX_RESUBSCRIBE_DELAY_MS, FIRST_RESUBSCRIBE_DELAY_MS * 2 ** this.resubscribes++);
      setTimeout(() => {
        if (!this.closed && this.listeners.size > 0) this.subscriber ??= this.subscribe();
      }, delay).unref();
    });
    subscriber.on('message', (from: string, key: string) => {
      if (from === channel) this.deliver(key);
    });
    subscriber.on('error', (error: Error) => this.logError(error));
    return subscriber;
  }

  private deliver(key: string | null): void {
    for (const entry of [...this.listeners]) {
      // Stopped by an earlier listener of this same message.
      if (!this.listeners.has(entry)) continue;
      try {
        entry.heard(key);
      } catch (error) {
        this.logger?.error({ err: error, key }, 'a listener of ended cooldowns failed');
      }
    }
  }

  private logError(error: Error): void {
    if (this.closed || !this.logger) return;
    const suppressed = this.errorLogDue();
    if (suppressed === undefined) return;
    this.logger.error(
      { err: error, address: this.address, suppressedSinceLastLog: suppressed },
      'cooldown store (redis) subscriber error; cooldowns other replicas end are not heard until it is back',
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
