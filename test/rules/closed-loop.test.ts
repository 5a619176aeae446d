/**
 * The closed-loop fields of `remediation` (SPEC §9): the attempt budget, the approval gate and the
 * runbook link, read with `file:line` errors like every other field, and carried unchanged from
 * the worker thread a hot reload validates in.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadRuleSources } from '../../src/rules/load.js';
import { loadOffThread } from '../../src/rules/off-thread.js';
import { parseRulesText, REMEDIATION_DEFAULTS } from '../../src/rules/parse.js';
import type { Rule } from '../../src/rules/types.js';

/** A valid rule (lines 1-9); lines appended under `remediation:` start at line 10. */
const VALID_RULE = [
  'rules:',
  '  - name: db-failure',
  '    match:',
  '      pattern: "database connection failed"',
  '    priority: P1',
  '    remediation:',
  '      action: trigger-argo-workflow',
  '      params:',
  '        workflow_template: diagnose-and-recover',
  '',
].join('\n');

/** The rule with LINES added to its remediation, each indented as a remediation field. */
function withRemediation(...lines: string[]): string {
  return VALID_RULE + lines.map((line) => `      ${line}\n`).join('');
}

function remediationOf(text: string): Rule['remediation'] {
  const { rules, errors } = parseRulesText(text, 'rules.yaml');
  assert.deepEqual(errors, []);
  const [rule] = rules;
  assert.ok(rule);
  return rule.remediation;
}

function errorsOf(text: string): string[] {
  return parseRulesText(text, 'rules.yaml').errors;
}

function warningsOf(text: string): string[] {
  const result = loadRuleSources('rules.yaml', [{ file: 'rules.yaml', bytes: Buffer.from(text) }]);
  if (!result.ok) assert.fail(`expected the load to succeed, got:\n${result.errors.join('\n')}`);
  return result.warnings;
}

describe('the closed-loop fields of remediation', () => {
  it('default to 3 attempts an hour, no approval, an hour to approve and no runbook', () => {
    const remediation = remediationOf(VALID_RULE);
    assert.deepEqual(
      {
        maxAttempts: remediation.maxAttempts,
        attemptWindowMs: remediation.attemptWindowMs,
        approval: remediation.approval,
        approvalTimeoutMs: remediation.approvalTimeoutMs,
      },
      { maxAttempts: 3, attemptWindowMs: 3_600_000, approval: 'none', approvalTimeoutMs: 3_600_000 },
    );
    assert.deepEqual(REMEDIATION_DEFAULTS, {
      maxAttempts: 3,
      attemptWindowMs: 3_600_000,
      approval: 'none',
      approvalTimeoutMs: 3_600_000,
    });
    assert.equal('runbookUrl' in remediation, false);
  });

  it('reads each one as written', () => {
    const remediation = remediationOf(
      withRemediation(
        'max_attempts: 5',
        'attempt_window: 1h30m',
        'approval: required',
        'approval_timeout: 45m',
        'runbook_url: "https://runbooks.example.com/db?team=payments#restart"',
      ),
    );
    assert.equal(remediation.maxAttempts, 5);
    assert.equal(remediation.attemptWindowMs, 90 * 60_000);
    assert.equal(remediation.approval, 'required');
    assert.equal(remediation.approvalTimeoutMs, 45 * 60_000);
    assert.equal(remediation.runbookUrl, 'https://runbooks.example.com/db?team=payments#restart');
  });

  const accepted: { field: string; value: string; read: Partial<Rule['remediation']> }[] = [
    { field: 'max_attempts', value: '0', read: { maxAttempts: 0 } },
    { field: 'max_attempts', value: '1000', read: { maxAttempts: 1000 } },
    { field: 'max_attempts', value: '1', read: { maxAttempts: 1 } },
    { field: 'attempt_window', value: '1s', read: { attemptWindowMs: 1_000 } },
    { field: 'attempt_window', value: '24h', read: { attemptWindowMs: 86_400_000 } },
    { field: 'approval', value: 'none', read: { approval: 'none' } },
    {
      field: 'runbook_url',
      value: 'http://wiki.internal/runbooks/db',
      read: { runbookUrl: 'http://wiki.internal/runbooks/db' },
    },
    {
      field: 'runbook_url',
      value: 'https://example.com:8443/a%20b',
      read: { runbookUrl: 'https://example.com:8443/a%20b' },
    },
  ];
  for (const { field, value, read } of accepted) {
    it(`accepts ${field}: ${value}`, () => {
      const remediation = remediationOf(withRemediation(`${field}: ${value}`));
      for (const [key, expected] of Object.entries(read))
        assert.equal(remediation[key as keyof Rule['remediation']], expected);
    });
  }

  describe('refuse with file:line', () => {
    const cases: { problem: string; lines: string[]; errors: string[] }[] = [
      {
        problem: 'a negative max_attempts',
        lines: ['max_attempts: -1'],
        errors: ['rules.yaml:10: remediation.max_attempts -1 must be a whole number from 0 to 1000 (0: no budget)'],
      },
      {
        problem: 'a fraction of an attempt',
        lines: ['max_attempts: 2.5'],
        errors: ['rules.yaml:10: remediation.max_attempts 2.5 must be a whole number from 0 to 1000 (0: no budget)'],
      },
      {
        problem: 'max_attempts as a string',
        lines: ['max_attempts: "3"'],
        errors: ['rules.yaml:10: remediation.max_attempts "3" must be a whole number from 0 to 1000 (0: no budget)'],
      },
      {
        problem: 'max_attempts as a word',
        lines: ['max_attempts: unlimited'],
        errors: [
          'rules.yaml:10: remediation.max_attempts "unlimited" must be a whole number from 0 to 1000 (0: no budget)',
        ],
      },
      {
        problem: 'an absurd max_attempts',
        lines: ['max_attempts: 1001'],
        errors: ['rules.yaml:10: remediation.max_attempts 1001 must be a whole number from 0 to 1000 (0: no budget)'],
      },
      {
        problem: 'an infinite max_attempts',
        lines: ['max_attempts: .inf'],
        errors: ['rules.yaml:10: remediation.max_attempts .inf must be a whole number from 0 to 1000 (0: no budget)'],
      },
      {
        problem: 'max_attempts as a list',
        lines: ['max_attempts: [3]'],
        errors: ['rules.yaml:10: remediation.max_attempts must be a whole number from 0 to 1000 (0: no budget)'],
      },
      {
        problem: 'an attempt_window that is not a duration',
        lines: ['attempt_window: 1 hour'],
        errors: ['rules.yaml:10: remediation.attempt_window "1 hour" is not a duration (like 30s, 10m, 1h30m)'],
      },
      {
        problem: 'an attempt_window under a second',
        lines: ['attempt_window: 500ms'],
        errors: ['rules.yaml:10: remediation.attempt_window "500ms" must be at least 1s'],
      },
      {
        problem: 'an attempt_window in bare seconds',
        lines: ['attempt_window: 3600'],
        errors: ['rules.yaml:10: remediation.attempt_window must be a string (quote it: "3600")'],
      },
      {
        problem: 'an approval that is neither none nor required',
        lines: ['approval: optional'],
        errors: ['rules.yaml:10: remediation.approval "optional" must be none or required'],
      },
      {
        problem: 'an approval written as a boolean',
        lines: ['approval: true'],
        errors: ['rules.yaml:10: remediation.approval true must be none or required'],
      },
      {
        problem: 'an approval_timeout that is not a duration',
        lines: ['approval: required', 'approval_timeout: soon'],
        errors: ['rules.yaml:11: remediation.approval_timeout "soon" is not a duration (like 30s, 10m, 1h30m)'],
      },
      {
        problem: 'an approval_timeout under a second',
        lines: ['approval: required', 'approval_timeout: 0s'],
        errors: ['rules.yaml:11: remediation.approval_timeout "0s" must be at least 1s'],
      },
      {
        problem: 'a runbook_url that is not a URL',
        lines: ['runbook_url: runbooks/db.md'],
        errors: [
          'rules.yaml:10: remediation.runbook_url "runbooks/db.md" is not an http(s) URL (like https://runbooks.example.com/crashloop)',
        ],
      },
      {
        problem: 'a runbook_url of another scheme',
        lines: ['runbook_url: "javascript:alert(1)"'],
        errors: [
          'rules.yaml:10: remediation.runbook_url "javascript:alert(1)" is not an http(s) URL (like https://runbooks.example.com/crashloop)',
        ],
      },
      {
        problem: 'a runbook_url with a space the URL parser would quietly encode',
        lines: ['runbook_url: "https://wiki.example.com/db runbook"'],
        errors: [
          'rules.yaml:10: remediation.runbook_url "https://wiki.example.com/db runbook" is not an http(s) URL (like https://runbooks.example.com/crashloop)',
        ],
      },
      {
        problem: 'a runbook_url that is not a string',
        lines: ['runbook_url: 42'],
        errors: ['rules.yaml:10: remediation.runbook_url must be a string (quote it: "42")'],
      },
      {
        problem: 'a runbook_url too long to be a link',
        lines: [`runbook_url: https://example.com/${'a'.repeat(2030)}`],
        errors: ['rules.yaml:10: remediation.runbook_url is 2050 characters long, more than the 2048 allowed'],
      },
      {
        problem: 'every bad closed-loop field at once, in line order',
        lines: ['max_attempts: -3', 'attempt_window: forever', 'approval: maybe', 'runbook_url: ftp://x'],
        errors: [
          'rules.yaml:10: remediation.max_attempts -3 must be a whole number from 0 to 1000 (0: no budget)',
          'rules.yaml:11: remediation.attempt_window "forever" is not a duration (like 30s, 10m, 1h30m)',
          'rules.yaml:12: remediation.approval "maybe" must be none or required',
          'rules.yaml:13: remediation.runbook_url "ftp://x" is not an http(s) URL (like https://runbooks.example.com/crashloop)',
        ],
      },
    ];
    for (const { problem, lines, errors } of cases) {
      it(problem, () => {
        const { rules, errors: found } = parseRulesText(withRemediation(...lines), 'rules.yaml');
        assert.deepEqual(found, errors);
        assert.deepEqual(rules, [], 'a refused rule is not loaded');
      });
    }

    it('a runbook_url beside name, saying it belongs under remediation', () => {
      const text = VALID_RULE.replace(
        '    priority: P1\n',
        '    priority: P1\n    runbook_url: https://runbooks.example.com/db\n',
      );
      assert.deepEqual(errorsOf(text), [
        'rules.yaml:6: runbook_url belongs under remediation (remediation.runbook_url), not beside name',
      ]);
    });

    it('every other remediation field beside name the same way', () => {
      const text = VALID_RULE.replace(
        '    priority: P1\n',
        '    priority: P1\n    approval: required\n    max_attempts: 2\n    cooldown: 5m\n',
      );
      assert.deepEqual(errorsOf(text), [
        'rules.yaml:6: approval belongs under remediation (remediation.approval), not beside name',
        'rules.yaml:7: max_attempts belongs under remediation (remediation.max_attempts), not beside name',
        'rules.yaml:8: cooldown belongs under remediation (remediation.cooldown), not beside name',
      ]);
    });
  });

  describe('a budget the window cannot hold', () => {
    it('loads with a warning that it is never spent, naming the numbers', () => {
      assert.deepEqual(warningsOf(withRemediation('cooldown: 30m', 'max_attempts: 3', 'attempt_window: 1h')), [
        'rules.yaml:11: remediation.attempt_window 1h holds at most 2 Workflows 30m apart: a budget of 3 is never spent; make the window longer than max_attempts × cooldown',
      ]);
    });

    it('draws no warning when the window holds one more attempt than the budget, or without a budget', () => {
      assert.deepEqual(warningsOf(withRemediation('cooldown: 10m', 'max_attempts: 3', 'attempt_window: 31m')), []);
      assert.deepEqual(warningsOf(withRemediation('cooldown: 2h', 'max_attempts: 0')), []);
    });
  });

  describe('approval_timeout without approval: required', () => {
    it('loads with a warning that it has no effect', () => {
      assert.deepEqual(warningsOf(withRemediation('approval_timeout: 30m')), [
        'rules.yaml:10: remediation.approval_timeout has no effect unless remediation.approval is required; it is ignored',
      ]);
      assert.deepEqual(warningsOf(withRemediation('approval: none', 'approval_timeout: 30m')), [
        'rules.yaml:11: remediation.approval_timeout has no effect unless remediation.approval is required; it is ignored',
      ]);
    });

    it('draws no warning with approval: required', () => {
      assert.deepEqual(warningsOf(withRemediation('approval: required', 'approval_timeout: 30m')), []);
    });
  });

  it('survive the worker thread of a hot reload unchanged', async () => {
    const text =
      withRemediation(
        'max_attempts: 0',
        'attempt_window: 15m',
        'approval: required',
        'approval_timeout: 2h',
        'runbook_url: https://runbooks.example.com/db',
      ) + VALID_RULE.replace('rules:\n', '').replace('db-failure', 'defaults');
    const sources = [{ file: 'rules.yaml', bytes: Buffer.from(text) }];
    const here = loadRuleSources('rules.yaml', sources);
    const there = await loadOffThread('rules.yaml', sources);
    assert.ok(here.ok && there.ok);
    const remediations = (rules: readonly Rule[]) => rules.map((rule) => rule.remediation);
    assert.deepEqual(remediations(there.ruleSet.rules), remediations(here.ruleSet.rules));
    assert.equal(there.ruleSet.rules[0]?.remediation.maxAttempts, 0);
    assert.equal(there.ruleSet.rules[0]?.remediation.runbookUrl, 'https://runbooks.example.com/db');
    assert.equal(there.ruleSet.rules[1]?.remediation.approval, 'none');
  });
});
