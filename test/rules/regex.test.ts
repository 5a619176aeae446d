import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileAnchored, compilePattern } from '../../src/rules/regex.js';

function tester(compiled: ReturnType<typeof compilePattern>): (text: string) => boolean {
  if (!compiled.ok) throw new Error(`expected a valid pattern, got: ${compiled.error}`);
  return compiled.test;
}

describe('compilePattern', () => {
  const cases: { pattern: string; text: string; found: boolean }[] = [
    { pattern: 'connection refused', text: 'dial tcp: connection refused (retrying)', found: true },
    { pattern: 'OOMKilled', text: 'reason: oomkilled', found: false },
    { pattern: '(?i)OOMKilled', text: 'reason: oomkilled', found: true },
    {
      pattern: 'database connection failed|connection pool exhausted',
      text: 'pool: connection pool exhausted',
      found: true,
    },
    { pattern: '^Crash', text: 'CrashLoopBackOff', found: true },
    { pattern: '^Loop', text: 'CrashLoopBackOff', found: false },
    { pattern: '\\d{3}', text: 'HTTP 503', found: true },
    { pattern: 'a.b', text: 'a\nb', found: false },
  ];
  for (const { pattern, text, found } of cases) {
    it(`${found ? 'finds' : 'does not find'} ${JSON.stringify(pattern)} in ${JSON.stringify(text)}`, () => {
      assert.equal(tester(compilePattern(pattern))(text), found);
    });
  }

  const refused: { pattern: string; what: string; message: RegExp }[] = [
    { pattern: '(a)\\1', what: 'a backreference', message: /invalid escape sequence: `\\1`/ },
    { pattern: '(?=a)b', what: 'a lookahead', message: /invalid or unsupported Perl syntax: `\(\?=`/ },
    { pattern: '[a-', what: 'an unclosed class', message: /missing closing \]/ },
  ];
  for (const { pattern, what, message } of refused) {
    it(`refuses ${what} with the engine's message`, () => {
      const compiled = compilePattern(pattern);
      assert.equal(compiled.ok, false);
      assert.match(compiled.ok ? '' : compiled.error, message);
    });
  }

  it('matches a catastrophic-backtracking pattern in linear time', () => {
    const test = tester(compilePattern('(a+)+$'));
    const started = performance.now();
    const found = test(`${'a'.repeat(50_000)}!`);
    const elapsed = performance.now() - started;
    assert.equal(found, false);
    assert.ok(elapsed < 1000, `took ${elapsed} ms`);
  });
});

describe('compileAnchored', () => {
  const cases: { pattern: string; text: string; matches: boolean }[] = [
    { pattern: 'critical|warning', text: 'warning', matches: true },
    { pattern: 'critical|warning', text: 'critical-ish', matches: false },
    { pattern: 'critical|warning', text: 'not warning', matches: false },
    { pattern: 'crit.*', text: 'critical', matches: true },
    { pattern: '(?i)CRITICAL', text: 'critical', matches: true },
    { pattern: '', text: '', matches: true },
    { pattern: '', text: 'x', matches: false },
  ];
  for (const { pattern, text, matches } of cases) {
    it(`${matches ? 'matches' : 'does not match'} all of ${JSON.stringify(text)} with ${JSON.stringify(pattern)}`, () => {
      assert.equal(tester(compileAnchored(pattern))(text), matches);
    });
  }

  it('refuses a pattern that would escape its anchoring group, quoting the pattern as written', () => {
    const compiled = compileAnchored('a)|(b');
    assert.equal(compiled.ok, false);
    assert.match(compiled.ok ? '' : compiled.error, /a\)\|\(b/);
    assert.doesNotMatch(compiled.ok ? '' : compiled.error, /\^\(\?:/);
  });
});
