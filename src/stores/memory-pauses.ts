import type { Pause } from '../pause.js';
import { pauseExpiresAtMs, type RestoredPauses, type StoreLogger } from './cooldown-store.js';

type ChangedListener = (id: string | null) => void;

/**
 * The pauses of the memory store, with the same contract as Redis: kept until they expire by the
 * store's clock, and each change told to the listeners after the call that made it has answered.
 */
export class PauseBook {
  private readonly byId = new Map<string, { pause: Pause; expiresAt: number }>();
  /** Removed pauses, until they would have expired: never restored (see restore). */
  private readonly removed = new Map<string, number>();
  /** One entry per call of listen, so a listener added twice is stopped once per stop. */
  private readonly listeners = new Set<{ heard: ChangedListener }>();

  constructor(private readonly logger: StoreLogger | undefined) {}

  add(pause: Pause, now: number): void {
    const expiresAt = pauseExpiresAtMs(pause);
    this.dropExpired(now);
    // A JSON round trip, as in Redis: later changes to the caller's object do not leak in.
    if (expiresAt > now) this.byId.set(pause.id, { pause: JSON.parse(JSON.stringify(pause)) as Pause, expiresAt });
    this.tellLater(pause.id);
  }

  list(now: number): Pause[] {
    this.dropExpired(now);
    return [...this.byId.values()].map(({ pause }) => ({ ...pause }));
  }

  remove(id: string, now: number): Pause | null {
    this.dropExpired(now);
    const held = this.byId.get(id);
    if (!held) return null;
    this.byId.delete(id);
    this.removed.set(id, held.expiresAt);
    this.tellLater(id);
    return { ...held.pause };
  }

  /** Adds each pause this book knows nothing of (neither in force nor removed) and that has not expired. */
  restore(pauses: readonly Pause[], now: number): RestoredPauses {
    this.dropExpired(now);
    const restored: RestoredPauses = { written: [], held: [] };
    for (const pause of pauses) {
      const expiresAt = pauseExpiresAtMs(pause);
      if (expiresAt <= now || this.removed.has(pause.id)) continue;
      if (this.byId.has(pause.id)) {
        restored.held.push(pause.id);
        continue;
      }
      this.byId.set(pause.id, { pause: JSON.parse(JSON.stringify(pause)) as Pause, expiresAt });
      restored.written.push(pause.id);
    }
    if (restored.written[0] !== undefined) this.tellLater(restored.written[0]);
    return restored;
  }

  /** Nothing is ever missed in one process: the listeners never hear null. */
  listen(listener: ChangedListener): () => void {
    const entry = { heard: listener };
    this.listeners.add(entry);
    return () => {
      this.listeners.delete(entry);
    };
  }

  clear(): void {
    this.listeners.clear();
  }

  private dropExpired(now: number): void {
    for (const [id, held] of this.byId) if (held.expiresAt <= now) this.byId.delete(id);
    for (const [id, expiresAt] of this.removed) if (expiresAt <= now) this.removed.delete(id);
  }

  /** After the call has answered, as a message from Redis comes. */
  private tellLater(id: string): void {
    queueMicrotask(() => {
      for (const entry of [...this.listeners]) {
        // Stopped by an earlier listener of this same change.
        if (!this.listeners.has(entry)) continue;
        try {
          entry.heard(id);
        } catch (error) {
          this.logger?.error({ err: error, pause: id }, 'a listener of changed pauses failed');
        }
      }
    });
  }
}
