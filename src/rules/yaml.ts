/**
 * Walking a parsed YAML document while validating it: every problem is kept with the line of the
 * node at fault, so that a rules file is reported whole as `file:line: message`.
 */

import type { Alias, Node as YamlNode } from 'yaml';
import { isAlias, isMap, isScalar, isSeq, type LineCounter } from 'yaml';
import { formatDuration, parseDuration } from './duration.js';

export interface Problem {
  line: number;
  message: string;
}

export interface Field {
  /** The key node, for "unknown field" and "given here" lines. */
  keyLine: number;
  /** Line of the value, or of the key when the value is empty. */
  line: number;
  value: YamlNode | null;
}

/** One entry of a list of strings, with its line and its path for messages (`match.labels[2]`). */
export interface ListEntry {
  text: string;
  line: number;
  path: string;
}

/** Walks one parsed document, collecting problems with the line of the node at fault. */
export class FileValidator {
  readonly problems: Problem[] = [];
  /** What is valid but probably not what was meant: the file still loads. */
  readonly warnings: Problem[] = [];

  /** `aliases`: what each alias of the document refers to (aliases.ts indexAliases). */
  constructor(
    private readonly aliases: ReadonlyMap<Alias, YamlNode>,
    private readonly lines: LineCounter,
  ) {}

  lineOf(node: YamlNode | null | undefined, fallback = 1): number {
    const offset = node?.range?.[0];
    return offset === undefined ? fallback : this.lines.linePos(offset).line;
  }

  report(line: number, message: string): void {
    this.problems.push({ line, message });
  }

  warn(line: number, message: string): void {
    this.warnings.push({ line, message });
  }

  resolve(node: unknown): YamlNode | null {
    // Not node.resolve(doc): it walks the whole document for every alias.
    if (isAlias(node)) return this.aliases.get(node) ?? null;
    return (node as YamlNode | null | undefined) ?? null;
  }

  /**
   * The fields of a mapping; reports unknown keys by their path (relative to the rule, as users
   * read them: "match.patern") and a node that is not a mapping, named `what`.
   */
  fields(
    node: YamlNode | null,
    path: string,
    line: number,
    allowed: readonly string[],
    what = path,
  ): Map<string, Field> | null {
    if (!isMap(node)) {
      this.report(line, `${what} must be a mapping`);
      return null;
    }
    const fields = new Map<string, Field>();
    for (const pair of node.items) {
      const key = this.resolve(pair.key);
      const keyLine = this.lineOf(key, line);
      const name = isScalar(key) ? String(key.value) : String(key);
      const fieldPath = path === '' ? name : `${path}.${name}`;
      if (!allowed.includes(name)) {
        this.report(keyLine, `unknown field ${JSON.stringify(fieldPath)}`);
        continue;
      }
      const value = this.resolve(pair.value);
      const isEmpty = value === null || (isScalar(value) && value.value === null);
      fields.set(name, {
        keyLine,
        line: isEmpty ? keyLine : this.lineOf(value, keyLine),
        value: isEmpty ? null : value,
      });
    }
    return fields;
  }

  string(field: Field | undefined, path: string): string | undefined {
    if (field === undefined) return undefined;
    if (isScalar(field.value) && typeof field.value.value === 'string') return field.value.value;
    // YAML reads 500, true or 1.10 as non-strings; the fix is quoting what was written.
    const written = isScalar(field.value) && field.value.value !== null ? field.value.source : undefined;
    this.report(field.line, `${path} must be a string${written === undefined ? '' : ` (quote it: "${written}")`}`);
    return undefined;
  }

  boolean(field: Field | undefined, path: string, fallback: boolean): boolean {
    if (field === undefined) return fallback;
    if (isScalar(field.value) && typeof field.value.value === 'boolean') return field.value.value;
    this.report(field.line, `${path} must be true or false`);
    return fallback;
  }

  /** A Go-style duration of at least `minMs`; `fallbackMs` when the field is absent or refused. */
  duration(field: Field | undefined, path: string, fallbackMs: number, minMs: number): number {
    const text = this.string(field, path);
    if (text === undefined || field === undefined) return fallbackMs;
    const ms = parseDuration(text);
    if (ms === null) {
      this.report(field.line, `${path} ${JSON.stringify(text)} is not a duration (like 30s, 10m, 1h30m)`);
      return fallbackMs;
    }
    if (ms < minMs) {
      this.report(field.line, `${path} ${JSON.stringify(text)} must be at least ${formatDuration(minMs)}`);
      return fallbackMs;
    }
    return ms;
  }

  /** The entries of a list of strings, each with its line; reports non-strings by index. */
  stringList(field: Field, path: string): ListEntry[] | undefined {
    if (!isSeq(field.value)) {
      this.report(field.line, `${path} must be a list`);
      return undefined;
    }
    const entries: ListEntry[] = [];
    field.value.items.forEach((item, index) => {
      const node = this.resolve(item);
      const line = this.lineOf(node, field.line);
      const entryPath = `${path}[${index}]`;
      if (isScalar(node) && typeof node.value === 'string') entries.push({ text: node.value, line, path: entryPath });
      else this.report(line, `${entryPath} must be a string`);
    });
    return entries;
  }
}

export function formatProblem(file: string, problem: Problem): string {
  return `${file}:${problem.line}: ${problem.message}`;
}
