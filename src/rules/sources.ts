/**
 * Reading rules from disk: a file, or every `*.yaml`/`*.yml` of a directory such as a ConfigMap
 * mount, and a hash of what was read, so that a reload happens only when the content changed.
 */
import { createHash } from 'node:crypto';
import type { Stats } from 'node:fs';
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** One rules file as read from disk; `bytes` feed the reload hash, so unchanged files cause no reload. */
export interface RuleSource {
  file: string;
  bytes: Buffer;
}

export type ReadResult = { ok: true; sources: RuleSource[] } | { ok: false; errors: string[] };

/**
 * A rules file may be at most 1 MiB (a ConfigMap holds at most that much), and the files of one
 * load together at most 4 MiB: parsing YAML costs about a second per MiB, and every byte is read
 * again at each reload. A bigger file is refused before it is read.
 */
export const MAX_RULES_FILE_BYTES = 1024 * 1024;
export const MAX_RULES_TOTAL_BYTES = 4 * 1024 * 1024;

function fsProblem(path: string, err: unknown): string {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (code === 'ENOENT') return `${path}: no such file or directory`;
  if (code === 'EACCES') return `${path}: permission denied`;
  return `${path}: ${err instanceof Error ? err.message : String(err)}`;
}

function isRulesFileName(name: string): boolean {
  return !name.startsWith('.') && (name.endsWith('.yaml') || name.endsWith('.yml'));
}

/** "1 MiB (1048576 bytes)": the limit as people think of it, and exactly. */
function limit(bytes: number): string {
  return `${bytes / (1024 * 1024)} MiB (${bytes} bytes)`;
}

/** Why FILE, BYTES long, after TOTAL bytes of earlier files, is refused; null when within the limits. */
function sizeProblem(file: string, bytes: number, total: number): { message: string; overTotal: boolean } | null {
  if (bytes > MAX_RULES_FILE_BYTES)
    return {
      message: `${file}:1: file is ${bytes} bytes, over the limit of ${limit(MAX_RULES_FILE_BYTES)}`,
      overTotal: false,
    };
  if (total + bytes > MAX_RULES_TOTAL_BYTES)
    return {
      message: `${file}:1: the rules files come to ${total + bytes} bytes with this one, over the limit of ${limit(MAX_RULES_TOTAL_BYTES)} for all of them`,
      overTotal: true,
    };
  return null;
}

/**
 * The bytes of every rules file under PATH: the file itself, or each `*.yaml`/`*.yml` directly in
 * the directory, in name order. Names starting with '.' are skipped: in a ConfigMap mount those are
 * `..data` and the timestamped directories that the visible symlinks point into. Files are read
 * again when ..data was swapped while they were read, so a load never mixes two versions.
 */
export async function readRuleSources(path: string): Promise<ReadResult> {
  for (let attempt = 1; ; attempt++) {
    const read = await readOnce(path);
    if (read.destinations === null || attempt === READ_ATTEMPTS) return read.result;
    // A ConfigMap update swapped ..data while the files were read one by one: some may be old,
    // some new. Read them again, so that one load is one version.
    if ((await destinationsOf(read.files)) === read.destinations) return read.result;
  }
}

const READ_ATTEMPTS = 3;

/** Where each file's path leads: swapping a symlink on the way there (..data) changes it. */
async function destinationsOf(files: readonly string[]): Promise<string> {
  const real = await Promise.all(files.map((file) => realpath(file).catch(() => '')));
  return real.join('\0');
}

/** One read of every rules file, and where their paths led before (null for fewer than two files). */
async function readOnce(path: string): Promise<{ result: ReadResult; files: string[]; destinations: string | null }> {
  const failed = (errors: string[]) => ({ result: { ok: false as const, errors }, files: [], destinations: null });
  let info: Stats;
  try {
    info = await stat(path);
  } catch (err) {
    return failed([fsProblem(path, err)]);
  }
  const files: { file: string; size: number }[] = [];
  if (info.isDirectory()) {
    let names: string[];
    try {
      names = await readdir(path);
    } catch (err) {
      return failed([fsProblem(path, err)]);
    }
    names.sort();
    for (const name of names) {
      if (!isRulesFileName(name)) continue;
      const file = join(path, name);
      try {
        // stat, not lstat: ConfigMap entries are symlinks to the real files.
        const entry = await stat(file);
        if (entry.isFile()) files.push({ file, size: entry.size });
      } catch (err) {
        return failed([fsProblem(file, err)]);
      }
    }
  } else {
    files.push({ file: path, size: info.size });
  }
  const paths = files.map(({ file }) => file);
  const destinations = paths.length > 1 ? await destinationsOf(paths) : null;
  const sources: RuleSource[] = [];
  const errors: string[] = [];
  let total = 0;
  for (const { file, size } of files) {
    // Checked before reading (a huge file is never read) and after (it may have grown meanwhile).
    let problem = sizeProblem(file, size, total);
    if (problem === null) {
      try {
        const bytes = await readFile(file);
        problem = sizeProblem(file, bytes.length, total);
        if (problem === null) sources.push({ file, bytes });
        total += bytes.length;
      } catch (err) {
        errors.push(fsProblem(file, err));
        continue;
      }
    }
    if (problem !== null) {
      errors.push(problem.message);
      // Past the total, every later file would repeat the same complaint.
      if (problem.overTotal) break;
    }
  }
  const result: ReadResult = errors.length > 0 ? { ok: false, errors } : { ok: true, sources };
  return { result, files: paths, destinations };
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
