import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import pino from 'pino';
import type { Alert } from '../../src/alert.js';
import { loadConfig } from '../../src/config.js';
import { LocalCooldowns } from '../../src/pipeline/local-cooldowns.js';
import { createMetrics, type Metrics } from '../../src/pipeline/metrics.js';
import { createPipeline, type Pipeline } from '../../src/pipeline/pipeline.js';
import { MemoryCooldownStore } from '../../src/stores/memory.js';
import { rulesFrom, scriptedSubmitter } from '../support/app.js';

const RULES = `
rules:
  - name: crashloop
    match: {pattern: CrashLoop}
    priority: P2
    remediation:
      action: trigger-argo-workflow
      params: {workflow_template: diagnose-pod}
      cooldown: 10m
`;
const KEY = 'crashloop:shop/checkout';
const T0 = Date.parse('2026-11-29T10:00:00Z');

function alert(pod = 'checkout-0'): Alert {
  const labels = { alertname: 'CrashLoop', namespace: 'shop', pod };
  return { source: 'api_v2', status: 'firing', labels, annotations: {}, fingerprint: `fp-${pod}` };
}

/** Counts what reaches the store, to see what is answered without it. */
class CountingStore extends MemoryCooldownStore {
  claimCalls = 0;
  override claim(...args: Parameters<MemoryCooldownStore['claim']>) {
    this.claimCalls++;
    return super.claim(...args);
  }
}

describe('committed cooldowns answered locally', () => {
  let clock: number;
  let store: CountingStore;
  let local: LocalCooldowns;
  let metrics: Metrics;
  let pipeline: Pipeline;
  const settle = () => new Promise((resolve) => setImmediate(resolve));
  const decide = async (a = alert()) => (await pipeline.ingest([a]))[0]!;

  beforeEach(async () => {
    clock = T0;
    store = new CountingStore({ now: () => clock });
    local = new LocalCooldowns(() => clock);
    metrics = createMetrics({ defaults: false });
    const ruleSet = await rulesFrom(RULES);
    pipeline = createPipeline({
      rules: () => ruleSet,
      store,
      submitter: scriptedSubmitter(),
      settings: { ...loadConfig([], {}), maxWorkflowsPerMinute: 0, replica: 'test' },
      metrics,
      logger: pino({ level: 'silent' }),
      now: () => clock,
      local,
    });
  });

  it('answers a repeat inside the cooldown without the store, recorded like any decision', async () => {
    const first = await decide();
    assert.equal(first.outcome, 'submitted');
    await settle();
    const claims = store.claimCalls;
    const repeat = await decide(alert('checkout-1'));
    assert.equal(repeat.outcome, 'cooldown');
    assert.equal(repeat.reason, `${first.workflow?.name} was submitted`);
    assert.equal(store.claimCalls, claims, 'no claim sent to the store');
    assert.equal((await metrics.localCooldowns.get()).values[0]?.value, 1);
    const trail = await store.listDecisions(10);
    assert.equal(trail.filter((entry) => 'outcome' in entry && entry.outcome === 'cooldown').length, 1);
  });

  it('asks the store again once the cooldown is over', async () => {
    await decide();
    await settle();
    clock += 10 * 60_000;
    const claims = store.claimCalls;
    assert.equal((await decide()).outcome, 'submitted');
    assert.equal(store.claimCalls, claims + 1);
  });

  it('remembers a cooldown another replica committed, from the store’s answer', async () => {
    await store.claim(KEY, { workflowName: 'wf-other', fingerprint: 'x', state: 'pending', claimedAt: T0 }, 30_000);
    await store.commit(KEY, 'wf-other', 600_000);
    clock += 1000;
    assert.equal((await decide()).reason, 'wf-other was submitted');
    const claims = store.claimCalls;
    assert.equal((await decide()).reason, 'wf-other was submitted');
    assert.equal(store.claimCalls, claims);
  });

  it('lets the next alert through once the key is ended, though it was remembered', async () => {
    await decide();
    await settle();
    local.forget(KEY);
    await store.endCooldown(KEY, 24 * 3600_000);
    assert.equal((await decide()).outcome, 'submitted');
  });

  it('does not remember what the store said before the key was ended', () => {
    const asked = clock;
    clock += 5;
    local.forget(KEY);
    local.remember(KEY, { workflowName: 'wf-stale', until: clock + 600_000, dryRun: false }, asked);
    assert.equal(local.get(KEY, clock), undefined);
    local.clear();
    local.remember('other', { workflowName: 'wf-stale', until: clock + 600_000, dryRun: false }, asked);
    assert.equal(local.get('other', clock), undefined);
  });

  it('keeps at most its bound, forgetting the oldest', () => {
    const small = new LocalCooldowns(() => clock, 2);
    for (const key of ['a', 'b', 'c'])
      small.remember(key, { workflowName: key, until: clock + 1000, dryRun: false }, clock);
    assert.deepEqual(
      ['a', 'b', 'c'].map((key) => small.get(key, clock)?.workflowName),
      [undefined, 'b', 'c'],
    );
  });
});
