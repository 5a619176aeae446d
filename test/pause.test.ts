import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Pause, type PauseTarget, pauseCovering, pausedReason } from '../src/pause.js';

const NOW = Date.parse('2026-11-26T12:00:00Z');

function pause(id: string, selectors: Partial<PauseTarget>, endsInMs = 3600_000): Pause {
  const chosen = Object.fromEntries(Object.entries(selectors).filter(([, value]) => value !== null));
  return {
    id,
    ...chosen,
    reason: 'deploy',
    createdBy: 'alice',
    createdAt: new Date(NOW).toISOString(),
    expiresAt: new Date(NOW + endsInMs).toISOString(),
  };
}

const CHECKOUT: PauseTarget = { namespace: 'shop', rule: 'pod-crash', workload: 'checkout', cluster: null };

describe('pauseCovering', () => {
  it('covers an alert only when every selector the pause has is the alert’s own (ANDed)', () => {
    const cases: [Partial<PauseTarget>, boolean][] = [
      [{ namespace: 'shop' }, true],
      [{ namespace: 'cart' }, false],
      [{ namespace: 'shop', rule: 'pod-crash' }, true],
      [{ namespace: 'shop', rule: 'oom' }, false],
      [{ workload: 'checkout' }, true],
      [{ namespace: 'shop', workload: 'cart' }, false],
      [{ cluster: 'eu-1' }, false],
    ];
    for (const [selectors, covered] of cases) {
      assert.equal(
        pauseCovering([pause('p', selectors)], CHECKOUT, NOW) !== undefined,
        covered,
        JSON.stringify(selectors),
      );
    }
  });

  it('covers every alert with a pause without selectors, one without a namespace or workload too', () => {
    const bare: PauseTarget = { namespace: null, rule: 'pod-crash', workload: null, cluster: null };
    assert.ok(pauseCovering([pause('all', {})], bare, NOW));
    assert.equal(pauseCovering([pause('shop', { namespace: 'shop' })], bare, NOW), undefined);
  });

  it('matches the routed cluster with --clusters', () => {
    const routed = { ...CHECKOUT, cluster: 'eu-1' };
    assert.ok(pauseCovering([pause('p', { cluster: 'eu-1' })], routed, NOW));
    assert.equal(pauseCovering([pause('p', { cluster: 'us-1' })], routed, NOW), undefined);
  });

  it('is over at its expiresAt, and one whose expiresAt cannot be read never covers', () => {
    const ending = pause('p', { namespace: 'shop' }, 1000);
    assert.ok(pauseCovering([ending], CHECKOUT, NOW + 999));
    assert.equal(pauseCovering([ending], CHECKOUT, NOW + 1000), undefined);
    assert.equal(pauseCovering([{ ...ending, expiresAt: 'never' }], CHECKOUT, NOW), undefined);
  });

  it('names, of several that cover the alert, the one that ends last', () => {
    const pauses = [pause('soon', { namespace: 'shop' }, 60_000), pause('late', {}, 7200_000), pause('mid', {})];
    assert.equal(pauseCovering(pauses, CHECKOUT, NOW)?.id, 'late');
  });

  it('gives a reason that names the pause, who set it, why and until when', () => {
    assert.equal(
      pausedReason(pause('p-1', { namespace: 'shop' })),
      'paused until 2026-11-26T13:00:00.000Z by alice: deploy (pause p-1)',
    );
  });
});
