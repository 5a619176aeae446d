/**
 * Matching, the hot path: a loaded rule set answers which rule acts on an alert. Everything a
 * match needs is worked out once, when the set is built; all patterns run through one RE2 set.
 */
import { type Alert, own } from '../alert.js';
import type { Priority } from '../decision.js';
import { compilePattern, type PatternSet, patternSetSteps } from './regex.js';
import { runAll, type Steps } from './slices.js';
import type { LabelMatcher, Rule, RuleSet } from './types.js';

const DEFAULT_EXCLUDED_NAMESPACES = ['kube-system'];

const PRIORITY_RANK: Readonly<Record<Priority, number>> = { P1: 0, P2: 1, P3: 2, P4: 3 };

/** A rule with everything the hot path needs computed once at load. */
interface CompiledRule {
  rule: Rule;
  test: ((text: string) => boolean) | null;
  matchers: readonly LabelMatcher[];
  allowed: ReadonlySet<string> | null;
  denied: ReadonlySet<string> | null;
  labelFields: readonly string[] | null;
  annotationFields: readonly string[] | null;
}

function patternFinds(compiled: CompiledRule, alert: Alert): boolean {
  const test = compiled.test;
  if (test === null) return true;
  if (compiled.labelFields === null || compiled.annotationFields === null) {
    for (const key in alert.labels) {
      const value = own(alert.labels, key);
      if (value !== undefined && test(value)) return true;
    }
    for (const key in alert.annotations) {
      const value = own(alert.annotations, key);
      if (value !== undefined && test(value)) return true;
    }
    return false;
  }
  for (const key of compiled.labelFields) {
    const value = own(alert.labels, key);
    if (value !== undefined && test(value)) return true;
  }
  for (const key of compiled.annotationFields) {
    const value = own(alert.annotations, key);
    if (value !== undefined && test(value)) return true;
  }
  return false;
}

function ruleMatches(compiled: CompiledRule, alert: Alert): boolean {
  return namespaceAndLabelsMatch(compiled, alert) && patternFinds(compiled, alert);
}

function namespaceAndLabelsMatch(compiled: CompiledRule, alert: Alert): boolean {
  if (compiled.allowed !== null || compiled.denied !== null) {
    const namespace = own(alert.labels, 'namespace') ?? '';
    if (compiled.allowed !== null && !compiled.allowed.has(namespace)) return false;
    if (compiled.denied?.has(namespace)) return false;
  }
  for (const matcher of compiled.matchers) if (!matcher.matches(alert.labels)) return false;
  return true;
}

function compileRule(rule: Rule): CompiledRule {
  let test: CompiledRule['test'] = null;
  if (rule.match.pattern !== '') {
    const compiled = compilePattern(rule.match.pattern);
    if (!compiled.ok) throw new Error(`rule ${rule.name}: invalid pattern: ${compiled.error}`);
    test = compiled.test;
  }
  const selected = rule.match.fields;
  const pick = (prefix: string): string[] =>
    selected.filter((f) => f.startsWith(prefix)).map((f) => f.slice(prefix.length));
  return {
    rule,
    test,
    matchers: rule.match.labels,
    allowed: rule.match.namespaces.length > 0 ? new Set(rule.match.namespaces) : null,
    denied: rule.match.excludedNamespaces.length > 0 ? new Set(rule.match.excludedNamespaces) : null,
    labelFields: selected.length > 0 ? pick('labels.') : null,
    annotationFields: selected.length > 0 ? pick('annotations.') : null,
  };
}

/**
 * The immutable set used for matching. `rules` must already be in file order (file name order,
 * then position); this orders them by priority, keeping file order within a priority.
 * `excludedNamespaces` null means no file set it: the default `[kube-system]`.
 */
export function buildRuleSet(
  rules: readonly Rule[],
  excludedNamespaces: readonly string[] | null,
  files: readonly string[],
): RuleSet {
  return runAll(ruleSetSteps(rules, excludedNamespaces, files));
}

/** buildRuleSet, yielding after each pattern compiled: a reload runs it in slices (slices.ts). */
export function* ruleSetSteps(
  rules: readonly Rule[],
  excludedNamespaces: readonly string[] | null,
  files: readonly string[],
): Steps<RuleSet> {
  const ordered = [...rules].sort((a, b) => PRIORITY_RANK[a.priority] - PRIORITY_RANK[b.priority]);
  const active: CompiledRule[] = [];
  for (const rule of ordered) {
    if (!rule.enabled) continue;
    active.push(compileRule(rule));
    yield;
  }
  const prefilter = yield* patternPrefilter(active);
  return Object.freeze({
    rules: Object.freeze(ordered),
    excludedNamespaces: Object.freeze([...(excludedNamespaces ?? DEFAULT_EXCLUDED_NAMESPACES)]),
    files: Object.freeze([...files]),
    match(alert: Alert): Rule | null {
      const found = prefilter?.(alert);
      if (found === undefined) {
        for (const compiled of active) if (ruleMatches(compiled, alert)) return compiled.rule;
        return null;
      }
      for (let i = 0; i < active.length; i++) {
        const compiled = active[i]!;
        if (compiled.test !== null && !found.has(i)) continue;
        if (namespaceAndLabelsMatch(compiled, alert)) return compiled.rule;
      }
      return null;
    },
  });
}

/**
 * Patterns per RE2 set. Compiling a set is one call that cannot be interrupted: a reload builds
 * the rule set in slices (slices.ts), and compiling 6,000 patterns at once blocked the event loop
 * for seconds. A bigger load gets one set per 1,000 patterns, a pass over a text each; 1,000
 * rules, the most the bench measures, still make one set.
 */
const PATTERNS_PER_SET = 1_000;

/**
 * With many rules, trying every pattern on every value is what costs: the patterns go into RE2
 * sets, and one pass per set over each label or annotation value says which rules' patterns find
 * a match there (honouring each rule's `fields`). Returns the indexes (into `active`) whose pattern
 * matched, or undefined when there is no set (the plain loop then decides).
 */
function* patternPrefilter(active: readonly CompiledRule[]): Steps<((alert: Alert) => Set<number> | undefined) | null> {
  const owners: number[] = [];
  active.forEach((compiled, index) => {
    if (compiled.test !== null) owners.push(index);
  });
  // A set of two or more patterns costs one pass per text, where trying them one by one costs a
  // pass per pattern (bench/README.md, decision latency by rule count).
  if (owners.length < 2) return null;
  const sets: { set: PatternSet; owners: number[] }[] = [];
  for (let start = 0; start < owners.length; start += PATTERNS_PER_SET) {
    const members = owners.slice(start, start + PATTERNS_PER_SET);
    const set = yield* patternSetSteps(members.map((index) => active[index]!.rule.match.pattern));
    if (set === null) return null;
    sets.push({ set, owners: members });
  }
  const scan = (
    values: Record<string, string>,
    fieldsOf: (c: CompiledRule) => readonly string[] | null,
    found: Set<number>,
  ) => {
    for (const key in values) {
      const value = own(values, key);
      if (value === undefined) continue;
      for (const { set, owners } of sets) {
        for (const member of set.matching(value)) {
          const index = owners[member]!;
          const fields = fieldsOf(active[index]!);
          if (fields === null || fields.includes(key)) found.add(index);
        }
      }
    }
  };
  return (alert) => {
    try {
      const found = new Set<number>();
      scan(alert.labels, (c) => c.labelFields, found);
      scan(alert.annotations, (c) => c.annotationFields, found);
      return found;
    } catch {
      // e.g. the set's automaton ran out of its memory budget on a pathological text
      return undefined;
    }
  };
}
