/**
 * Hot reload of rules. The caller keeps its previous rules when a reload fails (`result.ok` false).
 *
 * We watch the directory, not the file: a ConfigMap mount updates by writing a new timestamped
 * directory and renaming the `..data` symlink over the old one, so the visible file never changes
 * in place and a watch on it (or on its inode) would miss every update. Editors that save by
 * rename behave the same way.
 */

import type { FSWatcher } from 'node:fs';
import { watch } from 'node:fs';
import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { type LoadResult, loadRuleSources } from './load.js';
import { hashRuleSources, readRuleSources } from './sources.js';

export interface WatchOptions {
  onReload(result: LoadResult): void;
  /** Quiet time after the last change before reloading, so a burst of writes is one reload. */
  debounceMs?: number;
  /** Something in the directory changed but the rules files' bytes did not (for debug logs and tests). */
  onUnchanged?(): void;
}

export interface RulesWatcher {
  /**
   * Settles once the current content is recorded and the directory is watched: changes made after
   * it are reported. Changes between the caller's own load and this point count as the baseline.
   */
  readonly ready: Promise<void>;
  close(): void;
}

const DEFAULT_DEBOUNCE_MS = 200;

/** A failed read has no bytes to hash; its messages stand in, so the same failure is reported once. */
function errorHash(errors: readonly string[]): string {
  return `error:${errors.join('\n')}`;
}

export function watchRules(path: string, options: WatchOptions): RulesWatcher {
  const debounceMs = options.debounceMs ?? DEFAULT_DEBOUNCE_MS;
  let closed = false;
  let watcher: FSWatcher | null = null;
  let timer: NodeJS.Timeout | null = null;
  // The content the caller last saw; the first read only records it, since the caller loaded it already.
  let lastHash: string | null = null;
  let reloading = false;
  let changedDuringReload = false;

  const deliver = (result: LoadResult): void => {
    if (closed) return;
    options.onReload(result);
  };

  const reload = async (initial: boolean): Promise<void> => {
    reloading = true;
    let result: LoadResult | null = null;
    let unchanged = false;
    try {
      const read = await readRuleSources(path);
      const hash = read.ok ? hashRuleSources(read.sources) : errorHash(read.errors);
      unchanged = !initial && hash === lastHash;
      if (!initial && !unchanged) result = read.ok ? loadRuleSources(path, read.sources) : read;
      lastHash = hash;
    } catch (err) {
      result = { ok: false, errors: [`${path}: reload failed: ${err instanceof Error ? err.message : String(err)}`] };
    } finally {
      reloading = false;
      // A change that arrived mid-read may not be in what we read: look again.
      if (changedDuringReload && !closed) {
        changedDuringReload = false;
        schedule();
      }
    }
    // Outside the try: an exception thrown by the caller's callback is theirs, not a failed reload.
    if (result !== null) deliver(result);
    else if (unchanged && !closed) options.onUnchanged?.();
  };

  function schedule(): void {
    if (closed) return;
    if (reloading) {
      changedDuringReload = true;
      return;
    }
    if (timer !== null) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      // reload handles its own failures; what escapes is the caller's callback throwing, which is theirs.
      reload(false).catch((err: unknown) =>
        process.nextTick(() => {
          throw err;
        }),
      );
    }, debounceMs);
  }

  const start = async (): Promise<void> => {
    let directory = path;
    try {
      if (!(await stat(path)).isDirectory()) directory = dirname(path);
    } catch {
      // A missing file may appear later; its directory is where it will appear.
      directory = dirname(path);
    }
    if (closed) return;
    try {
      watcher = watch(directory, { persistent: true }, schedule);
    } catch (err) {
      deliver({
        ok: false,
        errors: [`${directory}: cannot watch for rule changes: ${err instanceof Error ? err.message : String(err)}`],
      });
      return;
    }
    watcher.on('error', (err) => {
      deliver({ ok: false, errors: [`${directory}: watching for rule changes failed: ${err.message}`] });
    });
    // Watching before reading the baseline: a change during the read is seen and compared afterwards.
    await reload(true);
  };
  const ready = start();

  return {
    ready,
    close(): void {
      closed = true;
      if (timer !== null) clearTimeout(timer);
      timer = null;
      watcher?.close();
      watcher = null;
    },
  };
}
