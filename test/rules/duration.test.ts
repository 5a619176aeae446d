import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatDuration, parseDuration } from '../../src/rules/duration.js';

describe('parseDuration', () => {
  const valid: [string, number][] = [
    ['500ms', 500],
    ['30s', 30_000],
    ['10m', 600_000],
    ['2h', 7_200_000],
    ['1h30m', 5_400_000],
    ['1.5h', 5_400_000],
    ['1m30s500ms', 90_500],
    ['.5s', 500],
    ['0s', 0],
  ];
  for (const [text, ms] of valid) {
    it(`reads ${JSON.stringify(text)} as ${ms} ms`, () => {
      assert.equal(parseDuration(text), ms);
    });
  }

  const invalid: [string, string][] = [
    ['', 'the empty string'],
    ['-5m', 'a negative duration'],
    ['10', 'a number without a unit'],
    ['0', 'zero without a unit'],
    ['10d', 'an unknown unit'],
    ['10ns', 'nanoseconds, which are not supported'],
    ['10M', 'an upper-case unit'],
    ['1h 30m', 'a duration with a space'],
    ['m', 'a unit without a number'],
    ['5m!', 'trailing garbage'],
  ];
  for (const [text, what] of invalid) {
    it(`refuses ${what} (${JSON.stringify(text)})`, () => {
      assert.equal(parseDuration(text), null);
    });
  }
});

describe('formatDuration', () => {
  const cases: [number, string][] = [
    [600_000, '10m'],
    [5_400_000, '1h30m'],
    [300_000, '5m'],
    [30_000, '30s'],
    [1_500, '1s500ms'],
    [0, '0s'],
    [90_061_001, '25h1m1s1ms'],
  ];
  for (const [ms, text] of cases) {
    it(`writes ${ms} ms as ${JSON.stringify(text)}, which parses back to the same value`, () => {
      assert.equal(formatDuration(ms), text);
      assert.equal(parseDuration(text), ms);
    });
  }
});
