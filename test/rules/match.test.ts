import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Alert } from '../../src/alert.js';
import { parseRulesText } from '../../src/rules/parse.js';
import { buildRuleSet } from '../../src/rules/rule-set.js';
import type { Rule, RuleSet } from '../../src/rules/types.js';

/** One rule as YAML list item; `match` is a flow mapping, `extra` more rule fields. */
function rule(name: string, priority: string, match: string, extra: string[] = []): string {
  return [
    `  - name: ${name}`,
    `    priority: ${priority}`,
    `    match: ${match}`,
    '    remediation: {action: trigger-argo-workflow, params: {workflow_template: t}}',
    ...extra.map((line) => `    ${line}`),
    '',
  ].join('\n');
}

/** A RuleSet from files given in file order, each a list of rule items. */
function ruleSetOf(...files: string[][]): RuleSet {
  const rules: Rule[] = [];
  const names: string[] = [];
  files.forEach((items, index) => {
    const file = `${index + 10}-rules.yaml`;
    const parsed = parseRulesText(`rules:\n${items.join('')}`, file);
    assert.deepEqual(parsed.errors, [], `fixture ${file} must be valid`);
    rules.push(...parsed.rules);
    names.push(file);
  });
  return buildRuleSet(rules, null, names);
}

function alert(labels: Record<string, string>, annotations: Record<string, string> = {}): Alert {
  return { source: 'alertmanager', status: 'firing', labels, annotations, fingerprint: '0123456789abcdef' };
}

describe('RuleSet.match', () => {
  const cases: { behaviour: string; files: string[][]; alert: Alert; rule: string | null }[] = [
    {
      behaviour: 'priority order beats file order',
      files: [
        [rule('low-first-file', 'P4', '{pattern: "error"}')],
        [rule('high-second-file', 'P1', '{pattern: "error"}')],
      ],
      alert: alert({ alertname: 'AppError' }, { description: 'an error happened' }),
      rule: 'high-second-file',
    },
    {
      behaviour: 'file order decides within a priority',
      files: [[rule('first-file', 'P2', '{pattern: "error"}')], [rule('second-file', 'P2', '{pattern: "error"}')]],
      alert: alert({}, { description: 'error' }),
      rule: 'first-file',
    },
    {
      behaviour: 'position in the file decides within a priority',
      files: [[rule('earlier', 'high', '{pattern: "error"}'), rule('later', 'P2', '{pattern: "error"}')]],
      alert: alert({}, { description: 'error' }),
      rule: 'earlier',
    },
    {
      behaviour: 'a disabled rule is skipped',
      files: [
        [rule('disabled', 'P1', '{pattern: "error"}', ['enabled: false']), rule('enabled', 'P4', '{pattern: "error"}')],
      ],
      alert: alert({}, { description: 'error' }),
      rule: 'enabled',
    },
    {
      behaviour: 'no rule matching gives null',
      files: [[rule('db', 'P1', '{pattern: "database"}')]],
      alert: alert({ alertname: 'HighLatency' }, { summary: 'slow' }),
      rule: null,
    },
    {
      behaviour: 'the pattern finds a match in an annotation value',
      files: [[rule('db', 'P1', '{pattern: "connection pool exhausted"}')]],
      alert: alert({ alertname: 'AppErrors' }, { description: 'pg: connection pool exhausted after 30s' }),
      rule: 'db',
    },
    {
      behaviour: 'the pattern finds a match in the alertname label',
      files: [[rule('oom', 'P1', '{pattern: "^KubePodOOM"}')]],
      alert: alert({ alertname: 'KubePodOOMKilled' }),
      rule: 'oom',
    },
    {
      behaviour: 'the pattern is case-sensitive by default',
      files: [[rule('oom', 'P1', '{pattern: "OOMKilled"}')]],
      alert: alert({ reason: 'oomkilled' }),
      rule: null,
    },
    {
      behaviour: '(?i) makes the pattern case-insensitive',
      files: [[rule('oom', 'P1', '{pattern: "(?i)OOMKilled"}')]],
      alert: alert({ reason: 'oomkilled' }),
      rule: 'oom',
    },
    {
      behaviour: 'the pattern must hold in one value, not across values',
      files: [[rule('joined', 'P1', '{pattern: "connection refused"}')]],
      alert: alert({ alertname: 'connection' }, { summary: 'refused' }),
      rule: null,
    },
    {
      behaviour: 'fields restricts where the pattern looks',
      files: [[rule('described', 'P1', '{pattern: "timeout", fields: [annotations.description, labels.reason]}')]],
      alert: alert({ alertname: 'timeout' }, { summary: 'timeout', description: 'all good' }),
      rule: null,
    },
    {
      behaviour: 'fields accepts a match in a listed annotation',
      files: [[rule('described', 'P1', '{pattern: "timeout", fields: [annotations.description, labels.reason]}')]],
      alert: alert({}, { description: 'i/o timeout' }),
      rule: 'described',
    },
    {
      behaviour: 'fields accepts a match in a listed label',
      files: [[rule('described', 'P1', '{pattern: "timeout", fields: [annotations.description, labels.reason]}')]],
      alert: alert({ reason: 'dial timeout' }),
      rule: 'described',
    },
    {
      behaviour: 'all label matchers must hold: equality',
      files: [[rule('critical', 'P1', `{pattern: "error", labels: ['severity="critical"', 'team="db"']}`)]],
      alert: alert({ severity: 'critical', team: 'web' }, { description: 'error' }),
      rule: null,
    },
    {
      behaviour: 'label matchers hold together with the pattern',
      files: [[rule('critical', 'P1', `{pattern: "error", labels: ['severity="critical"', 'team="db"']}`)]],
      alert: alert({ severity: 'critical', team: 'db' }, { description: 'error' }),
      rule: 'critical',
    },
    {
      behaviour: 'a regex matcher is fully anchored',
      files: [[rule('severe', 'P1', `{labels: ['severity=~"crit|warn"']}`)]],
      alert: alert({ severity: 'critical' }),
      rule: null,
    },
    {
      behaviour: 'a regex matcher matches a whole alternative',
      files: [[rule('severe', 'P1', `{labels: ['severity=~"critical|warning"']}`)]],
      alert: alert({ severity: 'warning' }),
      rule: 'severe',
    },
    {
      behaviour: 'a negative regex matcher refuses a matching value',
      files: [[rule('not-info', 'P1', `{labels: ['severity!~"info|none"']}`)]],
      alert: alert({ severity: 'info' }),
      rule: null,
    },
    {
      behaviour: 'a negative equality matcher accepts another value',
      files: [[rule('not-system', 'P1', `{labels: ['namespace!="kube-system"']}`)]],
      alert: alert({ namespace: 'shop' }),
      rule: 'not-system',
    },
    {
      behaviour: 'a missing label matches the empty string',
      files: [[rule('no-team', 'P1', `{labels: ['team=""']}`)]],
      alert: alert({ severity: 'critical' }),
      rule: 'no-team',
    },
    {
      behaviour: 'a missing label fails a non-empty equality',
      files: [[rule('team-db', 'P1', `{labels: ['team="db"']}`)]],
      alert: alert({ severity: 'critical' }),
      rule: null,
    },
    {
      behaviour: 'a missing label passes a negative matcher',
      files: [[rule('not-team-db', 'P1', `{labels: ['team!="db"']}`)]],
      alert: alert({ severity: 'critical' }),
      rule: 'not-team-db',
    },
    {
      behaviour: 'the namespaces allow-list admits a listed namespace',
      files: [[rule('shop', 'P1', '{pattern: "error", namespaces: [shop, payments]}')]],
      alert: alert({ namespace: 'payments' }, { description: 'error' }),
      rule: 'shop',
    },
    {
      behaviour: 'an alert outside the allow-list falls through to the next rule',
      files: [
        [rule('shop', 'P1', '{pattern: "error", namespaces: [shop]}'), rule('anywhere', 'P2', '{pattern: "error"}')],
      ],
      alert: alert({ namespace: 'billing' }, { description: 'error' }),
      rule: 'anywhere',
    },
    {
      behaviour: 'an alert without a namespace is outside any allow-list',
      files: [[rule('shop', 'P1', '{pattern: "error", namespaces: [shop]}')]],
      alert: alert({}, { description: 'error' }),
      rule: null,
    },
    {
      behaviour: 'a !namespace entry excludes that namespace',
      files: [[rule('not-batch', 'P1', '{pattern: "error", namespaces: ["!batch"]}')]],
      alert: alert({ namespace: 'batch' }, { description: 'error' }),
      rule: null,
    },
    {
      behaviour: 'a list of only !namespace entries admits every other namespace',
      files: [[rule('not-batch', 'P1', '{pattern: "error", namespaces: ["!batch"]}')]],
      alert: alert({ namespace: 'shop' }, { description: 'error' }),
      rule: 'not-batch',
    },
    {
      behaviour: 'a rule with labels and no pattern matches on labels alone',
      files: [[rule('by-labels', 'P1', `{labels: ['alertname="KubePodCrashLooping"']}`)]],
      alert: alert({ alertname: 'KubePodCrashLooping' }),
      rule: 'by-labels',
    },
    {
      behaviour: 'inherited object properties are not alert values',
      files: [[rule('proto', 'P1', '{pattern: "function|Object", fields: [labels.constructor]}')]],
      alert: alert({}),
      rule: null,
    },
  ];
  for (const { behaviour, files, alert: incoming, rule: expected } of cases) {
    it(behaviour, () => {
      assert.equal(ruleSetOf(...files).match(incoming)?.name ?? null, expected);
    });
  }
});

describe('buildRuleSet', () => {
  it('lists every rule, disabled ones included, P1 first and file order within a priority', () => {
    const ruleSet = ruleSetOf(
      [rule('a-p3', 'P3', '{pattern: "x"}'), rule('b-p1-disabled', 'P1', '{pattern: "x"}', ['enabled: false'])],
      [
        rule('c-p3', 'low', '{pattern: "x"}'),
        rule('d-p1', 'critical', '{pattern: "x"}'),
        rule('e-p3', 'medium', '{pattern: "x"}'),
      ],
    );
    assert.deepEqual(
      ruleSet.rules.map((r) => `${r.name}:${r.enabled}`),
      ['b-p1-disabled:false', 'd-p1:true', 'a-p3:true', 'e-p3:true', 'c-p3:true'],
    );
  });

  it('defaults the global excluded namespaces to kube-system', () => {
    assert.deepEqual(buildRuleSet([], null, []).excludedNamespaces, ['kube-system']);
  });

  it('leaves global excluded namespaces to the pipeline, which gives them the excluded outcome', () => {
    const ruleSet = ruleSetOf([rule('any', 'P1', '{pattern: "error"}')]);
    assert.equal(ruleSet.match(alert({ namespace: 'kube-system' }, { description: 'error' }))?.name, 'any');
  });

  it('is immutable', () => {
    const ruleSet = ruleSetOf([rule('any', 'P1', '{pattern: "error"}')]);
    assert.throws(() => (ruleSet.rules as Rule[]).push(ruleSet.rules[0] as Rule), TypeError);
  });
});
