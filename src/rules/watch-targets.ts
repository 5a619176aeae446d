/**
 * What to watch so that no way of replacing the rules goes unseen: the directory holding them,
 * the directory holding that one's entry (a rename of the rules directory, a swapped symlink in
 * its place), and the directory holding each symlink on the way there (git-sync swaps a `current`
 * link above the rules). A file watch follows an inode, not a path: after a swap it watches the
 * old directory, so targets are worked out again at every change and compared by identity.
 */
import { lstat, realpath, stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';

export interface WatchTarget {
  /** The directory to watch (as the path reaches it). */
  dir: string;
  /** Only changes to this entry of `dir` matter; null: any change in it. */
  only: string | null;
  /** The directory itself, not its name: its real path and inode. A swap changes it. */
  identity: string;
  /** Without this one the rules' own changes go unseen (the others see the rules replaced). */
  essential: boolean;
}

/** Problems finding a target: the target is left out and its problem reported. */
export interface TargetsFound {
  targets: WatchTarget[];
  problems: { dir: string; essential: boolean; error: unknown }[];
}

async function identityOf(dir: string): Promise<string> {
  const [real, info] = await Promise.all([realpath(dir), stat(dir)]);
  return `${real} (${info.dev}:${info.ino})`;
}

/** The directories that hold the rules at PATH (a file or a directory) and every way to them. */
export async function findWatchTargets(path: string): Promise<TargetsFound> {
  const absolute = resolve(path);
  let rulesDir = dirname(absolute);
  try {
    if ((await stat(absolute)).isDirectory()) rulesDir = absolute;
  } catch {
    // A missing path: its directory is where it will appear.
  }
  const wanted: Omit<WatchTarget, 'identity'>[] = [{ dir: rulesDir, only: null, essential: true }];
  if (dirname(rulesDir) !== rulesDir)
    wanted.push({ dir: dirname(rulesDir), only: basename(rulesDir), essential: false });
  // Every symlink above the rules directory: replacing it is replacing the rules.
  for (let above = dirname(rulesDir); dirname(above) !== above; above = dirname(above)) {
    try {
      if ((await lstat(above)).isSymbolicLink())
        wanted.push({ dir: dirname(above), only: basename(above), essential: false });
    } catch {
      // A missing ancestor: the rules directory's own target reports it.
    }
  }

  const found: TargetsFound = { targets: [], problems: [] };
  const seen = new Set<string>();
  for (const target of wanted) {
    try {
      const watched = { ...target, identity: await identityOf(target.dir) };
      const key = targetKey(watched);
      if (seen.has(key)) continue;
      seen.add(key);
      found.targets.push(watched);
    } catch (err) {
      found.problems.push({ dir: target.dir, essential: target.essential, error: err });
    }
  }
  return found;
}

/** The key a watch on TARGET is kept under: equal keys watch the same directory for the same entry. */
export function targetKey(target: WatchTarget): string {
  return `${target.identity}/${target.only ?? ''}`;
}
