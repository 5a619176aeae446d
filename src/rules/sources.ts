/**
 * Reading rules from disk: a file, or every `*.yaml`/`*.yml` of a directory such as a ConfigMap
 * mount, and a hash of what was read, so that a reload happens only when the content changed.
 */
import { createHash } from 'node:crypto';
import type { Stats } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** One rules file as read from disk; `bytes` feed the reload hash, so unchanged files cause no reload. */
export interface RuleSource {
  file: string;
  bytes: Buffer;
}

export type ReadResult = { ok: true; sources: RuleSource[] } | { ok: false; errors: string[] };

function fsProblem(path: string, err: unknown): string {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (code === 'ENOENT') return `${path}: no such file or directory`;
  if (code === 'EACCES') return `${path}: permission denied`;
  return `${path}: ${err instanceof Error ? err.message : String(err)}`;
}

function isRulesFileName(name: string): boolean {
  return !name.startsWith('.') && (name.endsWith('.yaml') || name.endsWith('.yml'));
}

/**
 * The bytes of every rules file under PATH: the file itself, or each `*.yaml`/`*.yml` directly in
 * the directory, in name order. Names starting with '.' are skipped: in a ConfigMap mount those are
 * `..data` and the timestamped directories that the visible symlinks point into.
 */
export async function readRuleSources(path: string): Promise<ReadResult> {
  let info: Stats;
  try {
    info = await stat(path);
  } catch (err) {
    return { ok: false, errors: [fsProblem(path, err)] };
  }
  const files: string[] = [];
  if (info.isDirectory()) {
    let names: string[];
    try {
      names = await readdir(path);
    } catch (err) {
      return { ok: false, errors: [fsProblem(path, err)] };
    }
    names.sort();
    for (const name of names) {
      if (!isRulesFileName(name)) continue;
      const file = join(path, name);
      try {
        // stat, not lstat: ConfigMap entries are symlinks to the real files.
        if ((await stat(file)).isFile()) files.push(file);
      } catch (err) {
        return { ok: false, errors: [fsProblem(file, err)] };
      }
    }
  } else {
    files.push(path);
  }
  const sources: RuleSource[] = [];
  const errors: string[] = [];
  for (const file of files) {
    try {
      sources.push({ file, bytes: await readFile(file) });
    } catch (err) {
      errors.push(fsProblem(file, err));
    }
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, sources };
}

/** Identifies the content of a load: file names and bytes. Equal hashes mean nothing to reload. */
export function hashRuleSources(sources: readonly RuleSource[]): string {
  const hash = createHash('sha256');
  for (const source of sources) {
    hash.update(source.file);
    hash.update('\0');
    hash.update(String(source.bytes.length));
    hash.update('\0');
    hash.update(source.bytes);
  }
  return hash.digest('hex');
}
