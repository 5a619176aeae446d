import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseMatcher } from '../../src/rules/matchers.js';
import type { LabelMatcher } from '../../src/rules/types.js';

function matcher(text: string): LabelMatcher {
  const parsed = parseMatcher(text);
  if ('error' in parsed) throw new Error(`expected ${text} to parse, got: ${parsed.error}`);
  return parsed;
}

describe('parseMatcher', () => {
  describe('reads', () => {
    const cases: { text: string; name: string; op: LabelMatcher['op']; value: string }[] = [
      { text: 'severity="critical"', name: 'severity', op: '=', value: 'critical' },
      { text: 'severity!="info"', name: 'severity', op: '!=', value: 'info' },
      { text: 'severity=~"critical|warning"', name: 'severity', op: '=~', value: 'critical|warning' },
      { text: 'namespace!~"kube-.*"', name: 'namespace', op: '!~', value: 'kube-.*' },
      { text: 'severity=critical', name: 'severity', op: '=', value: 'critical' },
      { text: '  severity  =~  crit.*  ', name: 'severity', op: '=~', value: 'crit.*' },
      { text: 'msg="say \\"hi\\""', name: 'msg', op: '=', value: 'say "hi"' },
      { text: 'path="C:\\\\temp"', name: 'path', op: '=', value: 'C:\\temp' },
      { text: 'code=~"\\d+"', name: 'code', op: '=~', value: '\\d+' },
      { text: 'team=""', name: 'team', op: '=', value: '' },
      { text: '_private="x"', name: '_private', op: '=', value: 'x' },
      { text: 'expr="a=b"', name: 'expr', op: '=', value: 'a=b' },
    ];
    for (const { text, name, op, value } of cases) {
      it(`${text} as ${name} ${op} ${JSON.stringify(value)}`, () => {
        const parsed = matcher(text);
        assert.deepEqual({ name: parsed.name, op: parsed.op, value: parsed.value }, { name, op, value });
      });
    }
  });

  describe('refuses', () => {
    const cases: { text: string; what: string; error: RegExp }[] = [
      { text: 'severity', what: 'a matcher without an operator', error: /not a matcher/ },
      { text: '="x"', what: 'an empty label name', error: /invalid label name ""/ },
      { text: '1abc="x"', what: 'a label name starting with a digit', error: /invalid label name "1abc"/ },
      { text: 'app.kubernetes.io/name="x"', what: 'a label name with dots', error: /invalid label name/ },
      { text: 'severity="crit', what: 'a value missing its closing quote', error: /closing double quote/ },
      { text: 'severity="a"b"', what: 'a value with an unescaped quote', error: /unescaped double quote/ },
      {
        text: 'severity=~"(a)\\1"',
        what: 'a regex with a backreference',
        error: /invalid regular expression.*invalid escape sequence/,
      },
      { text: 'severity=~"(?=x)"', what: 'a regex with a lookahead', error: /unsupported Perl syntax/ },
    ];
    for (const { text, what, error } of cases) {
      it(`${what}: ${text}`, () => {
        const parsed = parseMatcher(text);
        assert.ok('error' in parsed, `expected an error for ${text}`);
        assert.match(parsed.error, error);
      });
    }
  });
});

describe('LabelMatcher.matches', () => {
  const cases: { text: string; labels: Record<string, string>; matches: boolean; why: string }[] = [
    { text: 'severity="critical"', labels: { severity: 'critical' }, matches: true, why: 'equal value' },
    { text: 'severity="critical"', labels: { severity: 'warning' }, matches: false, why: 'different value' },
    { text: 'severity!="critical"', labels: { severity: 'warning' }, matches: true, why: 'different value, negated' },
    { text: 'severity=~"critical|warning"', labels: { severity: 'warning' }, matches: true, why: 'regex alternative' },
    { text: 'severity=~"crit"', labels: { severity: 'critical' }, matches: false, why: 'regex is fully anchored' },
    {
      text: 'severity!~"crit"',
      labels: { severity: 'critical' },
      matches: true,
      why: 'negative regex is fully anchored too',
    },
    {
      text: 'severity!~"critical|warning"',
      labels: { severity: 'warning' },
      matches: false,
      why: 'negative regex alternative',
    },
    { text: 'team=""', labels: {}, matches: true, why: 'missing label equals the empty string' },
    { text: 'team!=""', labels: {}, matches: false, why: 'missing label is not non-empty' },
    { text: 'team!="sre"', labels: {}, matches: true, why: 'missing label differs from a value' },
    { text: 'team=~".*"', labels: {}, matches: true, why: 'missing label matches a regex accepting empty' },
    { text: 'team=~".+"', labels: {}, matches: false, why: 'missing label fails a regex needing a character' },
    { text: 'constructor=""', labels: {}, matches: true, why: 'inherited object properties are not labels' },
    { text: 'severity=~"(?i)CRITICAL"', labels: { severity: 'critical' }, matches: true, why: 'case-insensitive flag' },
  ];
  for (const { text, labels, matches, why } of cases) {
    it(`${text} ${matches ? 'holds' : 'fails'} for ${JSON.stringify(labels)} (${why})`, () => {
      assert.equal(matcher(text).matches(labels), matches);
    });
  }
});
