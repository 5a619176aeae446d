import type { Pause } from '../pause.js';
import type { CooldownStore, StoreLogger } from '../stores/cooldown-store.js';
import { atMostEvery } from '../throttle.js';

/** The backstop: a change message lost without the subscription noticing is made good within this. */
export const PAUSES_REFRESH_MS = 5_000;
const FAILURE_LOG_INTERVAL_MS = 30_000;

export interface LocalPausesOptions {
  store: Pick<CooldownStore, 'listPauses' | 'onPausesChanged' | 'restorePauses'>;
  /** Throttles the log line of a failing reload. */
  now: () => number;
  logger?: Pick<StoreLogger, 'warn'>;
  /** How often the copy is reloaded whatever the messages say (PAUSES_REFRESH_MS). */
  refreshEveryMs?: number;
  /** Runs `tick` every `ms` until cancelled (setInterval, unless a test drives it). */
  every?(ms: number, tick: () => void): () => void;
}

function everyWithTimers(ms: number, tick: () => void): () => void {
  const timer = setInterval(tick, ms);
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * This replica's copy of the pauses (SPEC §11), so that deciding an alert costs no round trip to
 * the store. It is loaded at start, loaded again on every change any replica publishes (and on
 * null, when messages may have been missed), and every few seconds as a backstop. Expiry is not
 * its business: the decision compares each pause's expiresAt with its own clock, so a pause that
 * ends lets the next alert through without waiting for anything.
 *
 * A load that fails leaves the copy as it was (and is logged); one that answers after a later
 * one, or after a change this replica made itself, is dropped, so the copy never goes back in time.
 */
export class LocalPauses {
  private pauses: readonly Pause[] | undefined;
  /** Loads and local changes begun, and the latest of them now in the copy. */
  private begun = 0;
  private applied = 0;
  /** The load a decision waits for while the copy was never loaded, shared by all of them. */
  private firstLoad: Promise<void> | undefined;
  private readonly listeners = new Set<{ heard: () => void }>();
  private stops: (() => void)[] | undefined;
  private readonly failureLogDue: () => number | undefined;

  constructor(private readonly options: LocalPausesOptions) {
    this.failureLogDue = atMostEvery(FAILURE_LOG_INTERVAL_MS, options.now);
  }

  /** Listens, loads, and starts the backstop; a second call does nothing. */
  start(): void {
    if (this.stops) return;
    const { store, every = everyWithTimers, refreshEveryMs = PAUSES_REFRESH_MS } = this.options;
    this.stops = [store.onPausesChanged(() => this.refresh()), every(refreshEveryMs, () => this.refresh())];
    this.load().catch((err: unknown) => this.logFailure(err));
  }

  stop(): void {
    for (const stop of this.stops ?? []) stop();
    this.stops = [];
    this.listeners.clear();
  }

  /** The copy, or undefined while it was never loaded. */
  get current(): readonly Pause[] | undefined {
    return this.pauses;
  }

  /**
   * The copy, loaded first when it never was (one load however many wait for it). Rejects as the
   * store does when it cannot be loaded.
   */
  async load(): Promise<readonly Pause[]> {
    if (this.pauses) return this.pauses;
    this.firstLoad ??= this.reload().finally(() => {
      this.firstLoad = undefined;
    });
    await this.firstLoad;
    return this.pauses ?? [];
  }

  /**
   * Reads every pause from the store into the copy, unless something newer got there first. A
   * pause in force in the copy that the store knows nothing of (not even its removal) was lost by
   * the store — a Redis restarted empty, or failed over to a replica that had not got it — and is
   * written back: a pause must not end early because Redis forgot it.
   */
  async reload(): Promise<void> {
    const ours = ++this.begun;
    const { store, now, logger } = this.options;
    let pauses = await store.listPauses();
    const listed = new Set(pauses.map((pause) => pause.id));
    const at = now();
    const lost = (this.pauses ?? []).filter((pause) => !listed.has(pause.id) && Date.parse(pause.expiresAt) > at);
    if (lost.length > 0) {
      const { written, held } = await store.restorePauses(lost);
      if (written.length > 0) {
        logger?.warn(
          { restored: written },
          'the store had lost pauses still in force (a Redis restarted empty?); written back from this replica’s copy',
        );
      }
      // Those another replica wrote back after this listing are kept too: none ends early here.
      const kept = new Set([...written, ...held]);
      pauses = [...pauses, ...lost.filter((pause) => kept.has(pause.id))];
    }
    if (ours < this.applied) return;
    this.applied = ours;
    this.apply(pauses);
  }

  /** A pause this replica has just stored: in its copy at once, whatever a load begun before says. */
  added(pause: Pause): void {
    if (this.pauses) this.change([...this.pauses.filter((p) => p.id !== pause.id), pause]);
  }

  /** A pause this replica has just removed: out of its copy at once. */
  removed(id: string): void {
    if (this.pauses) this.change(this.pauses.filter((p) => p.id !== id));
  }

  /** Calls `listener` after every change of the copy. Returns a function that stops it. */
  onChanged(listener: () => void): () => void {
    const entry = { heard: listener };
    this.listeners.add(entry);
    return () => {
      this.listeners.delete(entry);
    };
  }

  private change(pauses: readonly Pause[]): void {
    this.applied = ++this.begun;
    this.apply(pauses);
  }

  private apply(pauses: readonly Pause[]): void {
    this.pauses = pauses;
    for (const entry of [...this.listeners]) {
      if (this.listeners.has(entry)) entry.heard();
    }
  }

  private refresh(): void {
    this.reload().catch((err: unknown) => this.logFailure(err));
  }

  private logFailure(err: unknown): void {
    const suppressed = this.failureLogDue();
    if (suppressed === undefined) return;
    this.options.logger?.warn(
      { err: (err as Error).message, suppressedSinceLastLog: suppressed, loaded: this.pauses !== undefined },
      this.pauses
        ? 'could not reload the pauses; deciding with the copy loaded before'
        : 'could not load the pauses; alerts are decided retry until they are (with --cooldown-store-failure=open, without pauses)',
    );
  }
}
