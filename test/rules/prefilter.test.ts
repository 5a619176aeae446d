/**
 * With many rules, matching goes through one RE2 set instead of trying each pattern. It must
 * decide exactly as trying each rule in order would: a seeded comparison over generated rules
 * (literals, alternations, (?i), fields, namespaces, label matchers, disabled rules) and alerts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Alert } from '../../src/alert.js';
import { fingerprintOf } from '../../src/pipeline/fingerprint.js';
import { parseRulesText } from '../../src/rules/parse.js';
import { compilePattern } from '../../src/rules/regex.js';
import { buildRuleSet } from '../../src/rules/rule-set.js';
import type { Rule, RuleSet } from '../../src/rules/types.js';
import { Random } from '../support/fuzz.js';

function prng(seed: number): () => number {
  const random = new Random(seed);
  return () => random.next();
}

const WORDS = [
  'timeout',
  'OOMKilled',
  'refused',
  'crash',
  'disk',
  'quota',
  'error-code-17',
  'Backoff',
  'panic',
  'deadlock',
  'db',
  'evicted',
];

function generateRules(random: () => number, count: number): string {
  const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)]!;
  const lines = ['rules:'];
  for (let i = 0; i < count; i++) {
    const pattern = [
      () => pick(WORDS),
      () => `(?i)${pick(WORDS)}|${pick(WORDS)}`,
      () => `${pick(WORDS)} [0-9]+`,
      () => `^${pick(WORDS)}$`,
      () => `(?i)${pick(WORDS)}.*${pick(WORDS)}`,
    ][Math.floor(random() * 5)]!();
    lines.push(
      `  - name: r${i}`,
      `    priority: ${pick(['P1', 'P2', 'P3', 'P4'])}`,
      `    enabled: ${random() > 0.1}`,
      '    match:',
      `      pattern: ${JSON.stringify(pattern)}`,
    );
    if (random() < 0.2)
      lines.push(`      fields: [${pick(['annotations.description', 'labels.reason', 'labels.alertname'])}]`);
    if (random() < 0.2) lines.push(`      namespaces: [${pick(['shop', 'web', '"!shop"'])}]`);
    if (random() < 0.2) lines.push(`      labels: ['severity=~"${pick(['critical', 'warning|critical', 'info'])}"']`);
    lines.push('    remediation:', '      action: trigger-argo-workflow', '      params: {workflow_template: t}');
  }
  return lines.join('\n');
}

function generateAlert(random: () => number): Alert {
  const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)]!;
  const text = () =>
    Array.from({ length: 1 + Math.floor(random() * 4) }, () =>
      random() < 0.5 ? pick(WORDS) : pick(['the', 'pod', '42', 'in', 'TIMEOUT', 'Crash']),
    ).join(' ');
  const labels: Record<string, string> = {
    alertname: random() < 0.3 ? pick(WORDS) : 'SomeAlert',
    namespace: pick(['shop', 'web', 'ops']),
    severity: pick(['critical', 'warning', 'info']),
  };
  if (random() < 0.5) labels.reason = text();
  const annotations: Record<string, string> = {};
  if (random() < 0.7) annotations.description = text();
  if (random() < 0.3) annotations.summary = text();
  return { source: 'alertmanager', status: 'firing', labels, annotations, fingerprint: fingerprintOf(labels) };
}

/** Each pattern compiled on its own, once per pattern text. */
const compiledPatterns = new Map<string, (text: string) => boolean>();
function patternTest(pattern: string): (text: string) => boolean {
  let test = compiledPatterns.get(pattern);
  if (test === undefined) {
    const compiled = compilePattern(pattern);
    assert.ok(compiled.ok);
    test = compiled.test;
    compiledPatterns.set(pattern, test);
  }
  return test;
}

/** Every rule tried in order, each pattern on its own: the meaning the set must keep. */
function reference(ruleSet: RuleSet, alert: Alert): Rule | null {
  for (const rule of ruleSet.rules) {
    if (!rule.enabled) continue;
    const namespace = alert.labels.namespace ?? '';
    if (rule.match.namespaces.length > 0 && !rule.match.namespaces.includes(namespace)) continue;
    if (rule.match.excludedNamespaces.includes(namespace)) continue;
    if (!rule.match.labels.every((m) => m.matches(alert.labels))) continue;
    const test = patternTest(rule.match.pattern);
    const values =
      rule.match.fields.length === 0
        ? [...Object.values(alert.labels), ...Object.values(alert.annotations)]
        : rule.match.fields
            .map((f) => (f.startsWith('labels.') ? alert.labels[f.slice(7)] : alert.annotations[f.slice(12)]))
            .filter((v): v is string => v !== undefined);
    if (values.some((v) => test(v))) return rule;
  }
  return null;
}

describe('matching many rules through one RE2 set', () => {
  for (const seed of [1, 2, 3]) {
    it(`decides like trying every rule in order (seed ${seed}, 300 rules, 3000 alerts)`, () => {
      const random = prng(seed);
      const parsed = parseRulesText(generateRules(random, 300), 'generated.yaml');
      assert.deepEqual(parsed.errors, []);
      const ruleSet = buildRuleSet(parsed.rules, null, ['generated.yaml']);
      let matched = 0;
      for (let i = 0; i < 3000; i++) {
        const alert = generateAlert(random);
        const expected = reference(ruleSet, alert);
        assert.equal(ruleSet.match(alert)?.name ?? null, expected?.name ?? null, JSON.stringify(alert));
        if (expected) matched++;
      }
      assert.ok(matched > 300, `the generated alerts must exercise matches too (${matched})`);
    });
  }

  it('decides like trying every rule in order past 1,000 patterns, where the patterns make several sets', () => {
    const random = prng(4);
    const parsed = parseRulesText(generateRules(random, 1200), 'generated.yaml');
    assert.deepEqual(parsed.errors, []);
    const ruleSet = buildRuleSet(parsed.rules, null, ['generated.yaml']);
    let matched = 0;
    for (let i = 0; i < 100; i++) {
      const alert = generateAlert(random);
      const expected = reference(ruleSet, alert);
      assert.equal(ruleSet.match(alert)?.name ?? null, expected?.name ?? null, JSON.stringify(alert));
      if (expected) matched++;
    }
    assert.ok(matched > 20, `the generated alerts must exercise matches too (${matched})`);
  });
});
