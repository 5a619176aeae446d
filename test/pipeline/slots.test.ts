/**
 * A big group is decided in bounded slices: the slots every request shares, and the pipeline
 * deciding 1,000 alerts with a submitter that counts how many creates it holds at once.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import type { Alert } from '../../src/alert.js';
import { CREATED, type SubmitResult } from '../../src/kube/result.js';
import { createMetrics } from '../../src/pipeline/metrics.js';
import { createPipeline, DECIDING_AT_ONCE } from '../../src/pipeline/pipeline.js';
import { mapInSlices, Slots } from '../../src/pipeline/slots.js';
import { MemoryCooldownStore } from '../../src/stores/memory.js';
import { rulesFrom, TEST_RULES } from '../support/app.js';

/** A promise and the function that resolves it. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe('Slots', () => {
  it('keeps no waiter already handed on while the queue never empties (a storm of competing requests)', async () => {
    const slots = new Slots(1);
    const TASKS = 10_000;
    let started = 0;
    let longest = 0;
    const queued = () => (slots as unknown as { queue: unknown[] }).queue.length;
    const runs: Promise<void>[] = [];
    // Each task queues the next before it finishes, so a waiter is always there.
    const task = async (): Promise<void> => {
      started++;
      longest = Math.max(longest, queued());
      if (started < TASKS) runs.push(slots.run(task));
    };
    runs.push(slots.run(task), slots.run(task));
    for (let i = 0; i < runs.length; i++) await runs[i];
    assert.ok(started >= TASKS);
    assert.ok(longest < 2_100, `the queue held ${longest} entries for ${TASKS} tasks`);
  });

  it('runs at most `size` tasks at once; the others start in arrival order as slots free up', async () => {
    const slots = new Slots(2);
    const gates = [deferred(), deferred(), deferred(), deferred()];
    const started: number[] = [];
    const runs = gates.map((gate, i) =>
      slots.run(async () => {
        started.push(i);
        await gate.promise;
        return i;
      }),
    );
    await Promise.resolve();
    assert.deepEqual(started, [0, 1]);
    assert.equal(slots.busy, 2);
    assert.equal(slots.waiting, 2);
    gates[1]?.resolve();
    assert.equal(await runs[1], 1);
    assert.deepEqual(started, [0, 1, 2]);
    gates[0]?.resolve();
    gates[2]?.resolve();
    gates[3]?.resolve();
    assert.deepEqual(await Promise.all(runs), [0, 1, 2, 3]);
    assert.deepEqual(started, [0, 1, 2, 3]);
    assert.equal(slots.busy, 0);
    assert.equal(slots.waiting, 0);
  });

  it('frees the slot of a task that throws', async () => {
    const slots = new Slots(1);
    await assert.rejects(
      slots.run(async () => {
        throw new Error('boom');
      }),
      /boom/,
    );
    assert.equal(await slots.run(async () => 'next'), 'next');
    assert.equal(slots.busy, 0);
  });

  it('refuses a size that is not a whole number of at least 1', () => {
    assert.throws(() => new Slots(0), RangeError);
    assert.throws(() => new Slots(1.5), RangeError);
  });
});

describe('mapInSlices', () => {
  it('keeps the items’ order, with at most `width` of them in progress at once', async () => {
    let inProgress = 0;
    let most = 0;
    const items = Array.from({ length: 100 }, (_, i) => i);
    const results = await mapInSlices(items, 7, async (item) => {
      inProgress++;
      most = Math.max(most, inProgress);
      // Later items finish first: order must come from the index, not from completion.
      for (let turn = 0; turn < 100 - item; turn++) await Promise.resolve();
      inProgress--;
      return item * 2;
    });
    assert.deepEqual(
      results,
      items.map((i) => i * 2),
    );
    assert.equal(most, 7);
    assert.deepEqual(await mapInSlices([], 7, async () => 1), []);
  });
});

describe('the pipeline under a big group', () => {
  it(`decides 1,000 alerts at most ${DECIDING_AT_ONCE} at once over every request in flight`, async () => {
    const ruleSet = await rulesFrom(TEST_RULES);
    // Claims and creates both wait until the test lets them go, a batch per turn of the loop.
    let waiters: (() => void)[] = [];
    const held = () => new Promise<void>((resolve) => waiters.push(resolve));
    const counter = () => {
      let now = 0;
      const counted = {
        most: 0,
        async around<T>(task: () => Promise<T>): Promise<T> {
          now++;
          counted.most = Math.max(counted.most, now);
          try {
            return await task();
          } finally {
            now--;
          }
        },
      };
      return counted;
    };
    const claims = counter();
    const creates = counter();
    const clock = { now: Date.parse('2026-11-26T12:00:00Z') };
    class HeldStore extends MemoryCooldownStore {
      override claim(...args: Parameters<MemoryCooldownStore['claim']>) {
        return claims.around(async () => {
          await held();
          return super.claim(...args);
        });
      }
    }
    const submitter = {
      mode: 'cluster' as const,
      target: 'counting',
      create: (): Promise<SubmitResult> =>
        creates.around(async () => {
          await held();
          return CREATED;
        }),
    };
    const pipeline = createPipeline({
      rules: () => ruleSet,
      store: new HeldStore({ now: () => clock.now }),
      submitter,
      settings: {
        cooldownStoreFailure: 'closed',
        maxWorkflowsPerMinute: 0,
        pendingLeaseMs: 30_000,
        submitTimeoutMs: 10_000,
        auditMaxLen: 10_000,
        replica: 'test',
        workflowNamespace: 'argo',
      },
      metrics: createMetrics({ defaults: false }),
      logger: pino({ level: 'silent' }),
      now: () => clock.now,
    });
    const group = (tag: string, count: number): Alert[] =>
      Array.from({ length: count }, (_, i) => ({
        source: 'alertmanager',
        status: 'firing',
        labels: { alertname: 'PodCrash', namespace: `${tag}-${i}`, pod: 'api-0' },
        annotations: { description: 'crash looping' },
        fingerprint: `${tag}-${i}`,
      }));
    const big = pipeline.ingest(group('big', 1000));
    const small = pipeline.ingest(group('small', 20));
    let settled = false;
    const both = Promise.all([big, small]).finally(() => (settled = true));
    while (!settled) {
      await new Promise((resolve) => setImmediate(resolve));
      const batch = waiters;
      waiters = [];
      for (const resolve of batch) resolve();
    }
    const [bigDecisions, smallDecisions] = await both;
    assert.equal(claims.most, DECIDING_AT_ONCE);
    assert.ok(creates.most <= DECIDING_AT_ONCE);
    assert.equal(bigDecisions.length, 1000);
    assert.ok(bigDecisions.every((d, i) => d.outcome === 'submitted' && d.fingerprint === `big-${i}`));
    assert.ok(smallDecisions.every((d, i) => d.outcome === 'submitted' && d.fingerprint === `small-${i}`));
  });
});
