/**
 * Hot reload of rules. The caller keeps its previous rules when a reload fails (`result.ok` false).
 *
 * We watch the directory, not the file: a ConfigMap mount updates by writing a new timestamped
 * directory and renaming the `..data` symlink over the old one, so the visible file never changes
 * in place and a watch on it (or on its inode) would miss every update. Editors that save by
 * rename behave the same way.
 */
import { watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { hashRuleSources, loadRuleSources, readRuleSources } from './load.js';
import type { LoadResult } from './load.js';

export interface WatchOptions {
  onReload(result: LoadResult): void;
  /** Quiet time after the last change before reloading, so a burst of writes is one reload. */
  debounceMs?: number;
}

export interface RulesWatcher {
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
    try {
      const read = await readRuleSources(path);
      const hash = read.ok ? hashRuleSources(read.sources) : errorHash(read.errors);
      if (initial || hash === lastHash) {
        lastHash = hash;
        return;
      }
      lastHash = hash;
      deliver(read.ok ? loadRuleSources(path, read.sources) : read);
    } catch (err) {
      deliver({ ok: false, errors: [`${path}: reload failed: ${err instanceof Error ? err.message : String(err)}`] });
    } finally {
      reloading = false;
      // A change that arrived mid-read may not be in what we read: look again.
      if (changedDuringReload && !closed) {
        changedDuringReload = false;
        schedule();
      }
    }
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
      void reload(false);
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
    await reload(true);
    if (closed) return;
    try {
      watcher = watch(directory, { persistent: true }, schedule);
    } catch (err) {
      deliver({ ok: false, errors: [`${directory}: cannot watch for rule changes: ${err instanceof Error ? err.message : String(err)}`] });
      return;
    }
    watcher.on('error', (err) => {
      deliver({ ok: false, errors: [`${directory}: watching for rule changes failed: ${err.message}`] });
    });
    // Changes made while the watch was being set up would otherwise go unnoticed.
    schedule();
  };
  void start();

  return {
    close(): void {
      closed = true;
      if (timer !== null) clearTimeout(timer);
      timer = null;
      watcher?.close();
      watcher = null;
    },
  };
}
