/**
 * What a rules file may cost: its size, and the work its YAML aliases repeat. Past a limit the
 * file is refused at once with file:line, never validated for seconds.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Alias } from 'yaml';
import { MAX_ALIAS_EXPANSION, MAX_ALIASES } from '../../src/rules/aliases.js';
import { type LoadResult, loadRules } from '../../src/rules/load.js';
import { parseRulesText } from '../../src/rules/parse.js';
import { MAX_RULES_FILE_BYTES, MAX_RULES_TOTAL_BYTES } from '../../src/rules/sources.js';

const tempDirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'kube-sentinel-limits-'));
  tempDirs.push(dir);
  return dir;
}
after(async () => {
  for (const dir of tempDirs) await rm(dir, { recursive: true, force: true });
});

function failed(result: LoadResult): string[] {
  if (result.ok) throw new Error('expected the load to fail');
  return result.errors;
}

const RULE = (name: string) =>
  `  - {name: ${name}, match: {pattern: x}, priority: P1, remediation: {action: trigger-argo-workflow, params: {workflow_template: t}}}\n`;

describe('YAML aliases in rules', () => {
  it('resolve to their anchor, the last one of that name before them', () => {
    const { rules, errors } = parseRulesText(
      [
        'rules:',
        '  - name: first',
        '    match: {pattern: a, labels: &sev ["severity=\\"critical\\""]}',
        '    priority: P1',
        '    remediation: &fix {action: trigger-argo-workflow, params: {workflow_template: one}}',
        '  - name: second',
        '    match: {pattern: b, labels: *sev}',
        '    priority: P2',
        '    remediation: *fix',
        '  - name: third',
        '    match: {pattern: c}',
        '    priority: P2',
        '    remediation: &fix {action: trigger-argo-workflow, params: {workflow_template: two}}',
        '  - name: fourth',
        '    match: {pattern: d}',
        '    priority: P3',
        '    remediation: *fix',
        '',
      ].join('\n'),
      'rules.yaml',
    );
    assert.deepEqual(errors, []);
    assert.deepEqual(
      rules.map((rule) => [rule.name, rule.remediation.params.workflowTemplate, rule.match.labels.length]),
      [
        ['first', 'one', 1],
        ['second', 'one', 1],
        ['third', 'two', 0],
        ['fourth', 'two', 0],
      ],
    );
  });

  it(`refuses a file of more than ${MAX_ALIASES} aliases at once, at the first alias too many`, () => {
    // One anchor and 10,000 aliases, 70 KB: resolving each alias by walking the document took 8 s.
    const text = `rules:\n${RULE('shared').replace('  - {', '  - &r {')}${'  - *r\n'.repeat(10_000)}`;
    const started = performance.now();
    const { errors } = parseRulesText(text, 'rules.yaml');
    const elapsed = performance.now() - started;
    assert.deepEqual(errors, [
      `rules.yaml:${2 + MAX_ALIASES + 1}: more than ${MAX_ALIASES} aliases (*r here); a rules file may use at most ${MAX_ALIASES}`,
    ]);
    // Measured at 0.1-0.6 s on a loaded 2-core machine, where the quadratic walk took 8-13 s.
    assert.ok(elapsed < 4_000, `took ${Math.round(elapsed)} ms`);
  });

  it('validates the most aliases allowed without walking the document for each', (t) => {
    // yaml's Alias.resolve walks the whole document to find the anchor: quadratic over a file.
    const resolve = t.mock.method(Alias.prototype, 'resolve');
    const text = `rules:\n${RULE('shared').replace('  - {', '  - &r {')}${'  - *r\n'.repeat(MAX_ALIASES)}`;
    const { errors } = parseRulesText(text, 'rules.yaml');
    // Every alias is the same rule again, named where the anchor is: a duplicate name each.
    assert.equal(errors.length, MAX_ALIASES);
    assert.equal(errors[0], 'rules.yaml:2: duplicate rule name "shared" (first defined at rules.yaml:2)');
    assert.equal(resolve.mock.callCount(), 0);
  });

  it(`refuses aliases that repeat more than ${MAX_ALIAS_EXPANSION} nodes, at the alias that crosses the line`, () => {
    const entries = 999;
    const labels = Array.from({ length: entries }, (_, i) => `"l${i}=\\"x\\""`).join(', ');
    const uses = Math.floor(MAX_ALIAS_EXPANSION / (entries + 1)) + 1;
    const text = [
      'rules:',
      `  - {name: r0, match: {pattern: x, labels: &many [${labels}]}, priority: P1, remediation: {action: trigger-argo-workflow, params: {workflow_template: t}}}`,
      ...Array.from(
        { length: uses },
        (_, i) =>
          `  - {name: r${i + 1}, match: {pattern: x, labels: *many}, priority: P1, remediation: {action: trigger-argo-workflow, params: {workflow_template: t}}}`,
      ),
      '',
    ].join('\n');
    assert.deepEqual(parseRulesText(text, 'rules.yaml').errors, [
      `rules.yaml:${2 + uses}: aliases repeat more than ${MAX_ALIAS_EXPANSION} YAML nodes (*many here stands for ${entries + 1}); a rules file may repeat at most ${MAX_ALIAS_EXPANSION}`,
    ]);
  });

  it('refuses aliases nested to blow up (a billion laughs), counting without expanding', () => {
    const lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 10; i++)
      lines.push(
        `a${i}: &a${i} [${Array(10)
          .fill(`*a${i - 1}`)
          .join(', ')}]`,
      );
    lines.push('rules: *a9', '');
    const [error] = parseRulesText(lines.join('\n'), 'rules.yaml').errors;
    assert.match(
      error ?? '',
      /^rules\.yaml:5: aliases repeat more than 100000 YAML nodes \(\*a3 here stands for 11111\)/,
    );
  });

  it('refuses an alias without an anchor before it, and one inside its own anchor', () => {
    assert.deepEqual(
      parseRulesText(`rules:\n  - *rule\n${RULE('later').replace('  - {', '  - &rule {')}`, 'rules.yaml').errors,
      ['rules.yaml:2: alias *rule refers to no anchor &rule before it'],
    );
    assert.deepEqual(parseRulesText('rules: &loop [*loop]\n', 'rules.yaml').errors, [
      'rules.yaml:1: alias *loop refers to a node that contains it',
    ]);
  });
});

describe('rules file size', () => {
  it(`refuses a file over ${MAX_RULES_FILE_BYTES} bytes, naming it at line 1`, async () => {
    const file = join(await tempDir(), 'rules.yaml');
    const text = `rules:\n${RULE('big')}`;
    await writeFile(file, text + '#'.repeat(3 * MAX_RULES_FILE_BYTES - text.length));
    assert.deepEqual(failed(await loadRules(file)), [
      `${file}:1: file is ${3 * MAX_RULES_FILE_BYTES} bytes, over the limit of 1 MiB (1048576 bytes)`,
    ]);
  });

  it('accepts a file of exactly the limit', async () => {
    const file = join(await tempDir(), 'rules.yaml');
    const text = `rules:\n${RULE('big')}`;
    await writeFile(file, `${text}#${'x'.repeat(MAX_RULES_FILE_BYTES - text.length - 2)}\n`);
    const result = await loadRules(file);
    assert.ok(result.ok, result.ok ? '' : result.errors.join('\n'));
  });

  it(`refuses a directory whose files come to more than ${MAX_RULES_TOTAL_BYTES} bytes, at the file that crosses it`, async () => {
    const dir = await tempDir();
    const names = ['a', 'b', 'c', 'd', 'e', 'f'];
    for (const name of names) {
      const text = `rules:\n${RULE(name)}`;
      await writeFile(join(dir, `${name}.yaml`), `${text}#${'x'.repeat(MAX_RULES_FILE_BYTES - text.length - 2)}\n`);
    }
    assert.deepEqual(failed(await loadRules(dir)), [
      `${join(dir, 'e.yaml')}:1: the rules files come to ${5 * MAX_RULES_FILE_BYTES} bytes with this one, over the limit of 4 MiB (4194304 bytes) for all of them`,
    ]);
  });
});
