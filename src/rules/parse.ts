/**
 * Rules files: YAML in, validated rules out, every problem reported at once with the line of the
 * node at fault. Only fully valid rules are returned.
 */
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node as YamlNode } from 'yaml';
import { LABEL_NAME } from '../alert.js';
import type { Priority } from '../decision.js';
import { dnsLabelProblem } from '../kube/names.js';
import { indexAliases } from './aliases.js';
import { CLOSED_LOOP_FIELDS, parseClosedLoop } from './closed-loop.js';
import { formatDuration } from './duration.js';
import { parseMatcher } from './matchers.js';
import { parseParams } from './params.js';
import { compilePattern } from './regex.js';
import type { LabelMatcher, Rule } from './types.js';
import { type Field, FileValidator, formatProblem, type Problem } from './yaml.js';

export { REMEDIATION_DEFAULTS } from './closed-loop.js';

const DEFAULT_COOLDOWN_MS = 5 * 60_000;
// Below a second a cooldown no longer absorbs Alertmanager's redeliveries of the same group.
const MIN_COOLDOWN_MS = 1_000;

const PRIORITY_ALIASES: Readonly<Record<string, Priority>> = {
  p1: 'P1',
  p2: 'P2',
  p3: 'P3',
  p4: 'P4',
  critical: 'P1',
  high: 'P2',
  medium: 'P3',
  low: 'P4',
};

/** `labels.NAME` or `annotations.NAME`: where a pattern looks (`match.fields`). */
function isFieldPath(text: string): boolean {
  const dot = text.indexOf('.');
  const scope = text.slice(0, dot);
  return (scope === 'labels' || scope === 'annotations') && LABEL_NAME.test(text.slice(dot + 1));
}

const TOP_LEVEL_FIELDS = ['excluded_namespaces', 'rules'] as const;
const MATCH_FIELDS = ['pattern', 'labels', 'namespaces', 'fields'] as const;
const REMEDIATION_FIELDS = ['action', 'params', 'cooldown', 'cooldown_key', ...CLOSED_LOOP_FIELDS] as const;
// Fields of remediation that read as well one level up, beside name: found there, they are
// named with where they belong rather than as unknown.
const REMEDIATION_ONLY_FIELDS = REMEDIATION_FIELDS.filter((field) => field !== 'action' && field !== 'params');
const RULE_FIELDS = [
  'name',
  'match',
  'priority',
  'on_resolved',
  'remediation',
  'enabled',
  ...REMEDIATION_ONLY_FIELDS,
] as const;

/** What one file holds, before cross-file checks. */
export interface ParsedFile {
  rules: Rule[];
  /** Every rule name seen, valid rule or not, for duplicate detection across files. */
  names: { name: string; line: number }[];
  /** Number of entries in `rules`, valid or not: a file of broken rules is not "no rules". */
  ruleEntries: number;
  excludedNamespaces: string[] | null;
  empty: boolean;
  problems: Problem[];
  warnings: Problem[];
}

function parseMatch(v: FileValidator, field: Field | undefined, ruleLine: number): Rule['match'] | null {
  const noCriteria = 'match needs a pattern or labels (to match every alert, say pattern: ".*")';
  if (field === undefined) {
    v.report(ruleLine, noCriteria);
    return null;
  }
  const fields = v.fields(field.value, 'match', field.line, MATCH_FIELDS);
  if (fields === null) return null;
  const before = v.problems.length;

  const patternField = fields.get('pattern');
  const pattern = v.string(patternField, 'match.pattern');
  if (pattern !== undefined && patternField !== undefined) {
    if (pattern === '') v.report(patternField.line, 'match.pattern is empty (to match every alert, say pattern: ".*")');
    else {
      const compiled = compilePattern(pattern);
      if (!compiled.ok)
        v.report(patternField.line, `match.pattern is not a valid RE2 regular expression: ${compiled.error}`);
    }
  }

  const labels: LabelMatcher[] = [];
  const labelsField = fields.get('labels');
  if (labelsField !== undefined) {
    for (const entry of v.stringList(labelsField, 'match.labels') ?? []) {
      const matcher = parseMatcher(entry.text);
      if ('error' in matcher) v.report(entry.line, `${entry.path}: ${matcher.error}`);
      else labels.push(matcher);
    }
  }
  if (patternField === undefined && labelsField === undefined) v.report(field.keyLine, noCriteria);

  const namespaces: string[] = [];
  const excludedNamespaces: string[] = [];
  const namespacesField = fields.get('namespaces');
  if (namespacesField !== undefined) {
    for (const entry of v.stringList(namespacesField, 'match.namespaces') ?? []) {
      const excluded = entry.text.startsWith('!');
      const namespace = excluded ? entry.text.slice(1) : entry.text;
      const problem = dnsLabelProblem(namespace);
      if (problem !== null) v.report(entry.line, `${entry.path} ${JSON.stringify(namespace)} ${problem}`);
      else (excluded ? excludedNamespaces : namespaces).push(namespace);
    }
  }

  const selected: string[] = [];
  const fieldsField = fields.get('fields');
  if (fieldsField !== undefined) {
    for (const entry of v.stringList(fieldsField, 'match.fields') ?? []) {
      if (isFieldPath(entry.text)) selected.push(entry.text);
      else v.report(entry.line, `${entry.path} ${JSON.stringify(entry.text)} must be labels.NAME or annotations.NAME`);
    }
  }

  if (v.problems.length > before) return null;
  return { pattern: pattern ?? '', labels, namespaces, excludedNamespaces, fields: selected };
}

function parseRemediation(v: FileValidator, field: Field | undefined, ruleLine: number): Rule['remediation'] | null {
  if (field === undefined) {
    v.report(ruleLine, 'remediation is required');
    return null;
  }
  const fields = v.fields(field.value, 'remediation', field.line, REMEDIATION_FIELDS);
  if (fields === null) return null;
  const before = v.problems.length;

  const actionField = fields.get('action');
  const action = v.string(actionField, 'remediation.action');
  if (actionField === undefined) v.report(field.keyLine, 'remediation.action is required (trigger-argo-workflow)');
  else if (action !== undefined && action !== 'trigger-argo-workflow') {
    v.report(
      actionField.line,
      `remediation.action ${JSON.stringify(action)} is not supported; the only action is trigger-argo-workflow`,
    );
  }

  const params = parseParams(v, fields.get('params'), field.keyLine);

  const cooldownMs = v.duration(fields.get('cooldown'), 'remediation.cooldown', DEFAULT_COOLDOWN_MS, MIN_COOLDOWN_MS);

  let cooldownKey: string[] | null = null;
  const keyField = fields.get('cooldown_key');
  if (keyField !== undefined) {
    const entries = v.stringList(keyField, 'remediation.cooldown_key');
    if (isSeq(keyField.value) && keyField.value.items.length === 0) {
      v.report(
        keyField.line,
        'remediation.cooldown_key must list at least one label name (omit it for namespace + workload)',
      );
    }
    cooldownKey = [];
    for (const entry of entries ?? []) {
      if (!LABEL_NAME.test(entry.text))
        v.report(entry.line, `${entry.path} ${JSON.stringify(entry.text)} is not a label name`);
      else if (cooldownKey.includes(entry.text))
        v.report(entry.line, `${entry.path} ${JSON.stringify(entry.text)} is listed twice`);
      else cooldownKey.push(entry.text);
    }
  }

  const closedLoop = parseClosedLoop(v, fields);

  if (v.problems.length > before || params === null || closedLoop === null) return null;
  // Attempts of one key are at least a cooldown apart: a window that cannot hold one more than the
  // budget never escalates, and the loop it was meant to break goes on.
  const { maxAttempts, attemptWindowMs } = closedLoop;
  if (maxAttempts > 0 && maxAttempts * cooldownMs >= attemptWindowMs) {
    v.warn(
      (fields.get('max_attempts') ?? fields.get('attempt_window') ?? fields.get('cooldown') ?? field).line,
      `remediation.attempt_window ${formatDuration(attemptWindowMs)} holds at most ${Math.ceil(attemptWindowMs / cooldownMs)} Workflows ${formatDuration(cooldownMs)} apart: a budget of ${maxAttempts} is never spent; make the window longer than max_attempts × cooldown`,
    );
  }
  return { action: 'trigger-argo-workflow', params, cooldownMs, cooldownKey, ...closedLoop };
}

function parseRule(
  v: FileValidator,
  node: YamlNode | null,
  index: number,
  line: number,
  file: string,
  parsed: ParsedFile,
): void {
  const fields = v.fields(node, '', line, RULE_FIELDS, `rules[${index}]`);
  if (fields === null) return;
  const before = v.problems.length;

  const nameField = fields.get('name');
  const name = v.string(nameField, 'name');
  if (nameField === undefined) v.report(line, 'name is required');
  else if (name !== undefined) {
    const problem = dnsLabelProblem(name);
    if (problem !== null) v.report(nameField.line, `name ${JSON.stringify(name)} ${problem}`);
    else parsed.names.push({ name, line: nameField.line });
  }

  const match = parseMatch(v, fields.get('match'), line);

  let priority: Priority | undefined;
  const priorityField = fields.get('priority');
  const priorityText = v.string(priorityField, 'priority');
  if (priorityField === undefined) v.report(line, 'priority is required (P1-P4, or critical, high, medium, low)');
  else if (priorityText !== undefined) {
    priority = PRIORITY_ALIASES[priorityText.toLowerCase()];
    if (priority === undefined)
      v.report(
        priorityField.line,
        `priority ${JSON.stringify(priorityText)} is not one of P1, P2, P3, P4, critical, high, medium, low`,
      );
  }

  for (const misplaced of REMEDIATION_ONLY_FIELDS) {
    const field = fields.get(misplaced);
    if (field !== undefined)
      v.report(field.keyLine, `${misplaced} belongs under remediation (remediation.${misplaced}), not beside name`);
  }

  const onResolved = v.boolean(fields.get('on_resolved'), 'on_resolved', false);
  const enabled = v.boolean(fields.get('enabled'), 'enabled', true);
  const remediation = parseRemediation(v, fields.get('remediation'), line);

  if (
    v.problems.length > before ||
    name === undefined ||
    match === null ||
    priority === undefined ||
    remediation === null
  )
    return;
  parsed.rules.push({ name, priority, enabled, onResolved, match, remediation, source: { file, line } });
}

export function parseFile(text: string, file: string): ParsedFile {
  const parsed: ParsedFile = {
    rules: [],
    names: [],
    ruleEntries: 0,
    excludedNamespaces: null,
    empty: false,
    problems: [],
    warnings: [],
  };
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const at = (offset: number | undefined): number => (offset === undefined ? 1 : lines.linePos(offset).line);
  for (const warning of doc.warnings) parsed.warnings.push({ line: at(warning.pos[0]), message: warning.message });
  if (doc.errors.length > 0) {
    // The tree after a syntax error is a guess; checking it would report phantom problems.
    for (const error of doc.errors) parsed.problems.push({ line: at(error.pos[0]), message: error.message });
    return parsed;
  }
  const aliases = indexAliases(doc);
  if (aliases.problem !== null) {
    // Past the alias limits, walking the document is what would cost: nothing else is checked.
    parsed.problems.push({ line: at(aliases.problem.offset), message: aliases.problem.message });
    return parsed;
  }
  const v = new FileValidator(aliases.targets, lines);
  const top = v.resolve(doc.contents);
  if (top === null || (isScalar(top) && top.value === null)) {
    parsed.empty = true;
    return parsed;
  }
  if (!isMap(top)) {
    v.report(v.lineOf(top), 'the top level must be a mapping with a "rules" list');
    parsed.problems.push(...v.problems);
    return parsed;
  }
  const fields = v.fields(top, '', 1, TOP_LEVEL_FIELDS);

  const excludedField = fields?.get('excluded_namespaces');
  if (excludedField !== undefined) {
    if (excludedField.value === null) parsed.excludedNamespaces = [];
    else {
      parsed.excludedNamespaces = [];
      for (const entry of v.stringList(excludedField, 'excluded_namespaces') ?? []) {
        const problem = dnsLabelProblem(entry.text);
        if (problem !== null) v.report(entry.line, `${entry.path} ${JSON.stringify(entry.text)} ${problem}`);
        else parsed.excludedNamespaces.push(entry.text);
      }
    }
  }

  const rulesField = fields?.get('rules');
  if (rulesField !== undefined) {
    if (!isSeq(rulesField.value)) v.report(rulesField.line, 'rules must be a list');
    else {
      rulesField.value.items.forEach((item, index) => {
        const node = v.resolve(item);
        parsed.ruleEntries += 1;
        parseRule(v, node, index, v.lineOf(node, rulesField.line), file, parsed);
      });
    }
  } else if (excludedField === undefined) {
    parsed.empty = true;
  }

  const firstLine = new Map<string, number>();
  for (const { name, line } of parsed.names) {
    const seen = firstLine.get(name);
    if (seen !== undefined)
      v.report(line, `duplicate rule name ${JSON.stringify(name)} (first defined at ${file}:${seen})`);
    else firstLine.set(name, line);
  }
  // Keep only the first of a duplicated name, so parseRulesText never returns two rules of one name.
  if (parsed.names.length !== firstLine.size) {
    parsed.rules = parsed.rules.filter((rule) => rule.source.line <= (firstLine.get(rule.name) ?? rule.source.line));
  }

  parsed.problems.push(...v.problems);
  parsed.problems.sort((a, b) => a.line - b.line);
  parsed.warnings.push(...v.warnings);
  parsed.warnings.sort((a, b) => a.line - b.line);
  return parsed;
}

/** Validates one file's text; `file` names it in messages. Only fully valid rules are returned. */
export function parseRulesText(
  text: string,
  file: string,
): { rules: Rule[]; excludedNamespaces: string[] | null; errors: string[] } {
  const parsed = parseFile(text, file);
  return {
    rules: parsed.rules,
    excludedNamespaces: parsed.excludedNamespaces,
    errors: parsed.problems.map((problem) => formatProblem(file, problem)),
  };
}
