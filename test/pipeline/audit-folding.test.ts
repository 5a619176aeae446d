/**
 * SPEC §11, an audit trail that covers days: Prometheus resends every firing alert, and each
 * resend that acts on nothing is folded into the entry it repeats, so the actions stay in the
 * 10,000-entry trail.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import type { AuditEntry } from '../../src/decision.js';
import type { CooldownStore } from '../../src/stores/cooldown-store.js';
import { MemoryCooldownStore } from '../../src/stores/memory.js';
import { RedisCooldownStore } from '../../src/stores/redis.js';
import { scriptedSubmitter, type TestApp, testApp } from '../support/app.js';
import { type RedisServer, startRedis, uniquePrefix } from '../support/redis-server.js';

const ALERTS = 50;
const SECONDS = 5 * 60;
const START = Date.parse('2026-11-26T12:00:00Z');

/** What Prometheus posts each second: 50 firing alerts about 50 workloads. */
function resend() {
  return Array.from({ length: ALERTS }, (_, i) => ({
    labels: { alertname: 'KubePodCrashLooping', namespace: 'shop', pod: `app-${i}-0`, reason: 'CrashLoopBackOff' },
    annotations: { summary: 'crash loop' },
    startsAt: new Date(START - 60_000).toISOString(),
  }));
}

/** Five minutes of resends, the replicas taking turns, each on the same injected time. */
async function fiveMinutes(replicas: TestApp[]): Promise<void> {
  for (let second = 0; second < SECONDS; second++) {
    const replica = replicas[second % replicas.length] as TestApp;
    for (const { clock } of replicas) clock.now = START + second * 1000;
    const answer = await replica.app.inject({ method: 'POST', url: '/api/v2/alerts', payload: resend() });
    assert.equal(answer.statusCode, 200, answer.body);
  }
}

async function trail(replica: TestApp): Promise<AuditEntry[]> {
  // The audit writes are not awaited by the answers: the store's queue has them all once a read comes back.
  await replica.store.ping();
  const answer = await replica.app.inject({ method: 'GET', url: '/v1/decisions?limit=1000' });
  return (answer.json() as { decisions: AuditEntry[] }).decisions;
}

/**
 * The submissions, then one cooldown entry per alert counting every later resend. Each alert is
 * submitted once; on two replicas the second replica's first resend may come before the first's
 * commit has landed in Redis, and re-uses its pending claim: a second create of the same name (409
 * AlreadyExists from a real API), an action of its own. Every decision is accounted for.
 */
function assertFolded(entries: AuditEntry[], replicas: number): void {
  const outcomes = entries.map((entry) => ('outcome' in entry ? entry.outcome : entry.kind));
  const submitted = entries.filter((entry) => 'outcome' in entry && entry.outcome === 'submitted');
  const cooldowns = entries.filter((entry) => 'outcome' in entry && entry.outcome === 'cooldown');
  assert.equal(entries.length, cooldowns.length + submitted.length, `entries: ${outcomes.join(', ')}`);
  assert.equal(cooldowns.length, ALERTS, 'one folded entry per alert');
  assert.equal(new Set(submitted.map((entry) => 'fingerprint' in entry && entry.fingerprint)).size, ALERTS);
  assert.ok(submitted.length <= replicas * ALERTS, `${submitted.length} submissions`);
  let folded = 0;
  for (const entry of cooldowns) {
    assert.ok('count' in entry && entry.count !== undefined, JSON.stringify(entry));
    assert.equal(entry.lastAt, new Date(START + (SECONDS - 1) * 1000).toISOString());
    assert.ok(Date.parse(entry.at) <= START + replicas * 1000, `first at ${entry.at}`);
    folded += entry.count;
  }
  assert.equal(folded + submitted.length, ALERTS * SECONDS, 'every decision is in the trail');
}

/** One receiver per store; without one, on an in-memory store of its own that reads its clock. */
async function replicasOn(stores: (CooldownStore | undefined)[]): Promise<TestApp[]> {
  return Promise.all(
    stores.map((store, i) =>
      testApp({
        ...(store ? { store } : {}),
        submitter: scriptedSubmitter(),
        config: { replica: `replica-${i}`, maxWorkflowsPerMinute: 0 },
      }),
    ),
  );
}

describe('Prometheus resending 50 firing alerts every second for 5 minutes', () => {
  let redis: RedisServer;
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await redis.stop();
  });

  it('leaves 50 folded entries plus the 50 submissions in the trail of two replicas sharing Redis', async () => {
    const keyPrefix = uniquePrefix();
    const stores = [0, 1].map(() => new RedisCooldownStore({ url: redis.url, keyPrefix }));
    const replicas = await replicasOn(stores);
    try {
      await fiveMinutes(replicas);
      assertFolded(await trail(replicas[1] as TestApp), 2);
      const raw = new Redis(redis.url);
      try {
        const listed = (await trail(replicas[0] as TestApp)).length;
        assert.equal(await raw.xlen(`${keyPrefix}decisions`), listed, 'the stream itself holds no more');
      } finally {
        raw.disconnect();
      }
    } finally {
      for (const { app } of replicas) await app.close();
      for (const store of stores) await store.close();
    }
  });

  it('leaves 50 folded entries plus the 50 submissions in the in-memory trail', async () => {
    const [replica] = await replicasOn([undefined]);
    assert.ok(replica && replica.store instanceof MemoryCooldownStore);
    try {
      await fiveMinutes([replica]);
      assertFolded(await trail(replica), 1);
    } finally {
      await replica.app.close();
    }
  });
});
