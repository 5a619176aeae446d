/**
 * Hot reload of rules. The caller keeps its previous rules when a reload fails (`result.ok` false).
 *
 * We watch directories, not files: a ConfigMap mount updates by writing a new timestamped
 * directory and renaming the `..data` symlink over the old one, so the visible file never changes
 * in place and a watch on it (or on its inode) would miss every update. Editors that save by
 * rename behave the same way. A watch follows the directory it was set on, though, so when the
 * rules directory itself is replaced (renamed, or a symlink above it swapped, as git-sync does)
 * the old watch goes deaf: at every change the path is resolved again and the watches re-armed on
 * what it leads to now (watch-targets.ts). Behind the watches, the content is hashed every few
 * seconds anyway, so no way of replacing the files goes unseen for long.
 *
 * Whether the rules directory is watched is reported (`health`), for /readyz and the metrics.
 */

import { watch } from 'node:fs';
import type { LoadResult } from './load.js';
import { loadOffThread } from './off-thread.js';
import { hashRuleSources, type RuleSource, readRuleSources } from './sources.js';
import { findWatchTargets, targetKey } from './watch-targets.js';

/** Watching one directory; `onChange` gets the name that changed in it, when the system says. */
export type WatchDirectory = (
  dir: string,
  onChange: (filename: string | null) => void,
  onError: (err: Error) => void,
) => { close(): void };

export interface WatchHealth {
  healthy: boolean;
  /** Why not, naming the directory; null when healthy. */
  problem: string | null;
}

export interface WatchOptions {
  onReload(result: LoadResult): void;
  /** Quiet time after the last change before reloading, so a burst of writes is one reload. */
  debounceMs?: number;
  /** Something changed but the rules files' bytes did not (for debug logs and tests). */
  onUnchanged?(): void;
  /** The watch of the rules directory failed, or works again. */
  onHealth?(health: WatchHealth): void;
  /** How often the content is compared whatever the watches say; 0: never. */
  checkEveryMs?: number;
  /** Runs `check` every `ms` until cancelled (setInterval, unless a test drives it). */
  every?(ms: number, check: () => void): () => void;
  /** Parses, validates and builds read sources (default: in a worker thread, off-thread.ts). */
  load?(path: string, sources: readonly RuleSource[]): Promise<LoadResult>;
  watchDirectory?: WatchDirectory;
}

export interface RulesWatcher {
  /**
   * Settles once the current content is recorded and the directories are watched: changes made
   * after it are reported. Changes between the caller's own load and this point count as the baseline.
   */
  readonly ready: Promise<void>;
  health(): WatchHealth;
  close(): void;
}

const DEFAULT_DEBOUNCE_MS = 200;
export const DEFAULT_CHECK_EVERY_MS = 5_000;

const watchWithFs: WatchDirectory = (dir, onChange, onError) => {
  const watcher = watch(dir, { persistent: true }, (_event, filename) => onChange(filename));
  watcher.on('error', onError);
  return watcher;
};

function everyWithTimers(ms: number, check: () => void): () => void {
  const timer = setInterval(check, ms);
  timer.unref();
  return () => clearInterval(timer);
}

function reason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (code === 'ENOENT') return 'no such file or directory';
  if (code === 'ENOSPC') return 'the system limit of file watches is reached (fs.inotify.max_user_watches)';
  return err instanceof Error ? err.message : String(err);
}

/** A failed read has no bytes to hash; its messages stand in, so the same failure is reported once. */
function errorHash(errors: readonly string[]): string {
  return `error:${errors.join('\n')}`;
}

export function watchRules(path: string, options: WatchOptions): RulesWatcher {
  const debounceMs = options.debounceMs ?? DEFAULT_DEBOUNCE_MS;
  const load = options.load ?? ((at: string, sources: readonly RuleSource[]) => loadOffThread(at, sources));
  const watchDirectory = options.watchDirectory ?? watchWithFs;
  let closed = false;
  let timer: NodeJS.Timeout | null = null;
  // The content the caller last saw; the first read only records it, since the caller loaded it already.
  let lastHash: string | null = null;
  let checking = false;
  let changedDuringCheck = false;
  const armed = new Map<string, { close(): void }>();
  // Why each watch that should exist does not: essential ones make the watcher unhealthy.
  let failures: { dir: string; essential: boolean; why: string }[] = [];
  let health: WatchHealth = { healthy: true, problem: null };

  const setHealth = (): void => {
    const essential = failures.filter((failure) => failure.essential);
    const next: WatchHealth =
      essential.length === 0
        ? { healthy: true, problem: null }
        : {
            healthy: false,
            problem: essential.map((f) => `cannot watch ${f.dir} for rule changes: ${f.why}`).join('; '),
          };
    if (next.problem === health.problem) return;
    health = next;
    if (!closed) options.onHealth?.(health);
  };

  /** Watches what the path leads to now; drops watches on what it no longer does. */
  const arm = async (): Promise<void> => {
    const found = await findWatchTargets(path);
    if (closed) return;
    failures = found.problems.map((p) => ({ dir: p.dir, essential: p.essential, why: reason(p.error) }));
    const wanted = new Map(found.targets.map((target) => [targetKey(target), target]));
    for (const [key, watcher] of armed) {
      if (wanted.has(key)) continue;
      watcher.close();
      armed.delete(key);
    }
    for (const [key, target] of wanted) {
      if (armed.has(key)) continue;
      const onChange = (filename: string | null) => {
        if (target.only === null || filename === null || filename === target.only) schedule(debounceMs);
      };
      const onError = (err: Error) => {
        // The watch is gone: note why, and look again (which re-arms it if it can).
        armed.get(key)?.close();
        armed.delete(key);
        failures.push({ dir: target.dir, essential: target.essential, why: reason(err) });
        setHealth();
        schedule(debounceMs);
      };
      try {
        armed.set(key, watchDirectory(target.dir, onChange, onError));
      } catch (err) {
        failures.push({ dir: target.dir, essential: target.essential, why: reason(err) });
      }
    }
    setHealth();
  };

  /** Re-arms the watches, then reloads if the bytes changed. Only the first run is `initial`. */
  const check = async (initial: boolean): Promise<void> => {
    checking = true;
    let result: LoadResult | null = null;
    let unchanged = false;
    try {
      await arm();
      const read = await readRuleSources(path);
      const hash = read.ok ? hashRuleSources(read.sources) : errorHash(read.errors);
      unchanged = !initial && hash === lastHash;
      lastHash = hash;
      if (!initial && !unchanged && !closed) result = read.ok ? await load(path, read.sources) : read;
    } catch (err) {
      result = { ok: false, errors: [`${path}: reload failed: ${err instanceof Error ? err.message : String(err)}`] };
    } finally {
      checking = false;
      // A change that arrived mid-check may not be in what was read: look again.
      if (changedDuringCheck && !closed) {
        changedDuringCheck = false;
        schedule(debounceMs);
      }
    }
    // Outside the try: an exception thrown by the caller's callback is theirs, not a failed reload.
    if (closed) return;
    if (result !== null) options.onReload(result);
    else if (unchanged) options.onUnchanged?.();
  };

  function schedule(delayMs: number): void {
    if (closed) return;
    if (checking) {
      changedDuringCheck = true;
      return;
    }
    // A periodic check does not postpone a pending change's reload, nor the other way round.
    if (timer !== null && delayMs === 0) return;
    if (timer !== null) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      // check handles its own failures; what escapes is the caller's callback throwing, which is theirs.
      check(false).catch((err: unknown) =>
        process.nextTick(() => {
          throw err;
        }),
      );
    }, delayMs);
  }

  const checkEveryMs = options.checkEveryMs ?? DEFAULT_CHECK_EVERY_MS;
  const stopChecking =
    checkEveryMs > 0 ? (options.every ?? everyWithTimers)(checkEveryMs, () => schedule(0)) : () => {};
  // Watching before reading the baseline: a change during the read is seen and compared afterwards.
  const ready = check(true);

  return {
    ready,
    health: () => health,
    close(): void {
      closed = true;
      stopChecking();
      if (timer !== null) clearTimeout(timer);
      timer = null;
      for (const watcher of armed.values()) watcher.close();
      armed.clear();
    },
  };
}
