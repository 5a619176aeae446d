/**
 * The store's one pub/sub connection: every replica hears through it what another one changed
 * (a cooldown ended by hand, a pause added or removed), each channel's listeners their channel's
 * messages. Its listeners hear null each time the subscription is up, the first time and after it
 * was lost: what was published meanwhile was not heard.
 */

import type { Redis } from 'ioredis';
import { atMostEvery } from '../throttle.js';
import type { StoreLogger } from './cooldown-store.js';
import type { RedisConnection } from './redis-connection.js';

/** After a cluster node's subscriber ended, the next one opens after this, doubling while they fail. */
const FIRST_RESUBSCRIBE_DELAY_MS = 50;
const MAX_RESUBSCRIBE_DELAY_MS = 2000;
/** A subscriber that keeps failing makes an error per reconnect attempt; one log line per interval is enough. */
const ERROR_LOG_INTERVAL_MS = 10_000;

interface Listening {
  channel: string;
  heard: (message: string | null) => void;
  /** Told when `heard` throws; the other listeners still hear. */
  failed: (error: unknown, message: string | null) => void;
}

export class RedisSubscription {
  /** Opened on the first listener, for as long as the store: a connection in subscriber mode takes no other command. */
  private subscriber: Redis | undefined;
  /** One entry per call of listen, so a listener added twice is stopped once per stop. */
  private readonly listeners = new Set<Listening>();
  private readonly errorLogDue: () => number | undefined;
  private closed = false;
  /** Subscribers opened since one was last subscribed: the next waits longer. */
  private resubscribes = 0;

  constructor(
    private readonly connection: Pick<RedisConnection, 'subscriber'>,
    /** Every channel the store listens on, subscribed together whichever is listened to first. */
    private readonly channels: readonly string[],
    now: () => number,
    private readonly logger: StoreLogger | undefined,
    /** `host:port`, for log lines. */
    private readonly address: string,
  ) {
    this.errorLogDue = atMostEvery(ERROR_LOG_INTERVAL_MS, now);
  }

  /** Never throws: a subscriber that cannot connect logs, keeps trying, and says null once it is back. */
  listen(
    channel: string,
    heard: (message: string | null) => void,
    failed: (error: unknown, message: string | null) => void,
  ): () => void {
    if (this.closed) return () => {};
    const entry = { channel, heard, failed };
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
    // Subscribed anew on every 'ready' rather than by ioredis's autoResubscribe, so that the
    // listeners learn when the subscription is back, and a refused SUBSCRIBE is tried again.
    const subscriber = this.connection.subscriber();
    subscriber.on('ready', () => {
      subscriber.subscribe(...this.channels).then(
        () => {
          this.resubscribes = 0;
          this.deliver(undefined, null);
        },
        (error: Error) => {
          this.logError(error);
          // Connected but not subscribed, nothing would be heard: reconnect and try again.
          if (!this.closed && subscriber.status === 'ready') subscriber.disconnect(true);
        },
      );
    });
    // A cluster node's connection ends with its node: another one takes over, and says null once
    // subscribed (what was published meanwhile was not heard).
    subscriber.on('end', () => {
      if (this.closed || this.subscriber !== subscriber) return;
      this.subscriber = undefined;
      const delay = Math.min(MAX_RESUBSCRIBE_DELAY_MS, FIRST_RESUBSCRIBE_DELAY_MS * 2 ** this.resubscribes++);
      setTimeout(() => {
        if (!this.closed && this.listeners.size > 0) this.subscriber ??= this.subscribe();
      }, delay).unref();
    });
    subscriber.on('message', (from: string, message: string) => {
      if (this.channels.includes(from)) this.deliver(from, message);
    });
    subscriber.on('error', (error: Error) => this.logError(error));
    return subscriber;
  }

  /** `channel` undefined: null to every listener, whatever its channel. */
  private deliver(channel: string | undefined, message: string | null): void {
    for (const entry of [...this.listeners]) {
      // Stopped by an earlier listener of this same message.
      if (!this.listeners.has(entry) || (channel !== undefined && entry.channel !== channel)) continue;
      try {
        entry.heard(message);
      } catch (error) {
        entry.failed(error, message);
      }
    }
  }

  private logError(error: Error): void {
    if (this.closed || !this.logger) return;
    const suppressed = this.errorLogDue();
    if (suppressed === undefined) return;
    this.logger.error(
      { err: error, address: this.address, suppressedSinceLastLog: suppressed },
      'cooldown store (redis) subscriber error; what other replicas change (ended cooldowns, pauses) is not heard until it is back',
    );
  }
}
