/** Loading rules: every file under a path, validated as one set, or every problem found. */
import { parseFile } from './parse.js';
import { buildRuleSet } from './rule-set.js';
import { type RuleSource, readRuleSources } from './sources.js';
import type { Rule, RuleSet } from './types.js';
import { formatProblem } from './yaml.js';

export type LoadResult = { ok: true; ruleSet: RuleSet; warnings: string[] } | { ok: false; errors: string[] };

/** A load validated, not yet compiled for matching. */
export type CheckedLoad =
  | { ok: true; rules: Rule[]; excludedNamespaces: string[] | null; files: string[]; warnings: string[] }
  | { ok: false; errors: string[] };

/** Validates already-read sources and compiles them for matching. */
export function loadRuleSources(path: string, sources: readonly RuleSource[]): LoadResult {
  const checked = checkRuleSources(path, sources);
  if (!checked.ok) return checked;
  return {
    ok: true,
    ruleSet: buildRuleSet(checked.rules, checked.excludedNamespaces, checked.files),
    warnings: checked.warnings,
  };
}

/** Validates already-read sources as one load: cross-file duplicate names, zero rules overall. */
export function checkRuleSources(path: string, sources: readonly RuleSource[]): CheckedLoad {
  const errors: string[] = [];
  const warnings: string[] = [];
  const rules: Rule[] = [];
  const firstDefinition = new Map<string, { file: string; line: number }>();
  let excludedNamespaces: string[] | null = null;
  let ruleEntries = 0;

  for (const source of sources) {
    const parsed = parseFile(source.bytes.toString('utf8'), source.file);
    ruleEntries += parsed.ruleEntries;
    const problems = [...parsed.problems];
    for (const { name, line } of parsed.names) {
      const first = firstDefinition.get(name);
      if (first === undefined) firstDefinition.set(name, { file: source.file, line });
      // Duplicates within this file were reported by parseFile already.
      else if (first.file !== source.file)
        problems.push({
          line,
          message: `duplicate rule name ${JSON.stringify(name)} (first defined at ${first.file}:${first.line})`,
        });
    }
    problems.sort((a, b) => a.line - b.line);
    errors.push(...problems.map((problem) => formatProblem(source.file, problem)));
    warnings.push(...parsed.warnings.map((warning) => formatProblem(source.file, warning)));
    if (parsed.empty && sources.length > 1) warnings.push(`${source.file}: no rules in this file`);
    if (parsed.excludedNamespaces !== null) {
      excludedNamespaces ??= [];
      for (const namespace of parsed.excludedNamespaces)
        if (!excludedNamespaces.includes(namespace)) excludedNamespaces.push(namespace);
    }
    rules.push(...parsed.rules);
  }

  if (errors.length === 0 && ruleEntries === 0) errors.push(`no rules found in ${path}`);
  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, rules, excludedNamespaces, files: sources.map((source) => source.file), warnings };
}

/** Loads PATH (a rules file, or a directory of them) as one validated RuleSet, or every problem found. */
export async function loadRules(path: string): Promise<LoadResult> {
  const read = await readRuleSources(path);
  if (!read.ok) return read;
  return loadRuleSources(path, read.sources);
}
