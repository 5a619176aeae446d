/** What the page shows, computed from the API's answers (src/page/format.ts). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  badgeOf,
  byAttention,
  duration,
  outcomeTotals,
  pauseScope,
  percent,
  relative,
  span,
} from '../../src/page/format.js';
import { REMEDIATION_STATES } from '../../src/remediation/model.js';

const NOW = Date.parse('2026-11-30T12:00:00Z');
const ago = (ms: number) => new Date(NOW - ms).toISOString();

describe('the page', () => {
  describe('spans of time', () => {
    it('read at a glance, in the largest two units that matter', () => {
      const cases: [number, string][] = [
        [0, '0s'],
        [44_600, '45s'],
        [60_000, '1m'],
        [59 * 60_000, '59m'],
        [3600_000, '1h'],
        [3 * 3600_000 + 5 * 60_000, '3h 5m'],
        [24 * 3600_000, '1d'],
        [52 * 3600_000 + 59 * 60_000, '2d 4h'],
        [-5000, '0s'],
      ];
      for (const [ms, text] of cases) assert.equal(span(ms), text, String(ms));
    });

    it('are relative to now, past or to come, and a dash when there is no time', () => {
      assert.equal(relative(ago(90_000), NOW), '1m ago');
      assert.equal(relative(ago(-2 * 3600_000), NOW), 'in 2h');
      assert.equal(relative(null, NOW), '—');
      assert.equal(relative('not a date', NOW), '—');
    });

    it('give a finished remediation its run time and a running one the time so far', () => {
      assert.equal(duration(ago(600_000), ago(480_000), NOW), '2m');
      assert.equal(duration(ago(600_000), undefined, NOW), '10m so far');
      assert.equal(duration('bad', undefined, NOW), '—');
    });
  });

  describe('state badges', () => {
    it('give every remediation state a word and a symbol besides its colour, each state its own', () => {
      const badges = REMEDIATION_STATES.map(badgeOf);
      for (const [index, badge] of badges.entries()) {
        assert.ok(badge.label.length > 0 && badge.symbol.length > 0, REMEDIATION_STATES[index]);
      }
      assert.equal(new Set(badges.map((badge) => badge.label)).size, badges.length);
      assert.equal(new Set(badges.map((badge) => badge.symbol)).size, badges.length);
      assert.equal(badgeOf('failed').tone, 'bad');
      assert.equal(badgeOf('awaiting_approval').label, 'awaiting approval');
    });

    it('show a state they do not know by its name', () => {
      assert.deepEqual(badgeOf('some_new_state'), { label: 'some new state', symbol: '•', tone: 'idle' });
    });
  });

  it('lists remediations awaiting approval first, then those under way, then the finished, newest first in each', () => {
    const listed = byAttention([
      { workflow: 'old-failed', state: 'failed', submittedAt: ago(5000) },
      { workflow: 'new-succeeded', state: 'succeeded', submittedAt: ago(1000) },
      { workflow: 'running', state: 'running', submittedAt: ago(3000) },
      { workflow: 'old-approval', state: 'awaiting_approval', submittedAt: ago(9000) },
      { workflow: 'new-approval', state: 'awaiting_approval', submittedAt: ago(2000) },
      { workflow: 'pending', state: 'pending', submittedAt: ago(500) },
    ]);
    assert.deepEqual(
      listed.map((remediation) => remediation.workflow),
      ['new-approval', 'old-approval', 'pending', 'running', 'new-succeeded', 'old-failed'],
    );
  });

  it('says what a pause covers in words', () => {
    assert.equal(pauseScope({ namespace: 'shop', rule: 'oom' }), 'namespace shop, rule oom');
    assert.equal(pauseScope({ cluster: 'eu', workload: 'api' }), 'cluster eu, workload api');
    assert.equal(pauseScope({}), 'every alert');
  });

  it('shows a success rate as a whole percentage, a dash when nothing finished', () => {
    assert.equal(percent(2 / 3), '67%');
    assert.equal(percent(1), '100%');
    assert.equal(percent(null), '—');
  });

  it('totals the chart by outcome, actions first, without the outcomes that did not occur', () => {
    const totals = outcomeTotals([
      { outcomes: { cooldown: 4, submitted: 1 } },
      { outcomes: {} },
      { outcomes: { submitted: 2, no_match: 7, brand_new: 1 } },
    ]);
    assert.deepEqual(totals, [
      ['submitted', 3],
      ['cooldown', 4],
      ['no_match', 7],
      ['brand_new', 1],
    ]);
  });
});
