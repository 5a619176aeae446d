import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type CooldownClaim, StoreUnavailableError } from '../../src/stores/cooldown-store.js';
import { RedisCooldownStore } from '../../src/stores/redis.js';
import { failover } from '../support/failover.js';
import { uniquePrefix } from '../support/redis-server.js';
import { type SentinelSet, startSentinelSet } from '../support/redis-topology.js';
import { LONG_MS, START } from '../support/store-contract.js';

/**
 * The store on a Redis primary with two replicas and three redis-sentinel processes (SPEC §10):
 * the master found through the sentinels; WAIT refusing what the replicas did not acknowledge; and a
 * failover that loses no acknowledged claim.
 */

let set: SentinelSet | undefined;

before(async () => {
  set = await startSentinelSet();
});

after(async () => {
  await set?.stop();
});

function sentinelStore(options: { waitReplicas?: number } = {}): RedisCooldownStore {
  assert.ok(set, 'the sentinels were started in before()');
  return new RedisCooldownStore({
    source: { kind: 'sentinel', sentinels: set.sentinels, masterName: set.masterName },
    keyPrefix: uniquePrefix(),
    waitReplicas: options.waitReplicas,
    commandTimeoutMs: 1_000,
  });
}

function claim(workflowName: string, fingerprint = `fp-${workflowName}`): CooldownClaim {
  return { workflowName, fingerprint, state: 'pending', claimedAt: START };
}

describe('RedisCooldownStore through Redis Sentinel', () => {
  it('asks the sentinels for the master and claims, commits and lists there', async () => {
    const store = sentinelStore();
    try {
      assert.equal((await store.claim('k', claim('wf-1'), LONG_MS)).acquired, true);
      assert.equal(await store.commit('k', 'wf-1', LONG_MS), true);
      assert.deepEqual(
        (await store.listCooldowns(10)).map((held) => [held.key, held.claim.state]),
        [['k', 'committed']],
      );
    } finally {
      await store.close();
    }
  });
});

describe('RedisCooldownStore with --redis-wait-replicas', () => {
  it('refuses a claim the replicas did not acknowledge, naming why, and takes claims again once they do', async () => {
    assert.ok(set);
    const store = sentinelStore({ waitReplicas: 1 });
    try {
      assert.equal((await store.claim('before', claim('wf-0'), LONG_MS)).acquired, true);
      await set.pauseReplicas();
      try {
        await assert.rejects(store.claim('while-paused', claim('wf-1'), LONG_MS), (error: unknown) => {
          assert.ok(error instanceof StoreUnavailableError);
          assert.match(error.message, /claim failed: acknowledged by 0 of the 1 replicas asked for within 500 ms/);
          return true;
        });
        await assert.rejects(store.commit('before', 'wf-0', LONG_MS), StoreUnavailableError);
      } finally {
        await set.resumeReplicas();
      }
      // The refused claim stayed: the same alert's retry finds its own pending claim, another is held off.
      const retried = await store.claim('while-paused', claim('wf-retry', 'fp-wf-1'), LONG_MS);
      assert.equal(!retried.acquired && retried.existing.workflowName, 'wf-1');
      assert.equal(await store.commit('before', 'wf-0', LONG_MS), true);
      assert.equal((await store.claim('after', claim('wf-2'), LONG_MS)).acquired, true);
    } finally {
      await store.close();
    }
  });
});

describe('RedisCooldownStore through Redis Sentinel whose master is killed', () => {
  it('fails closed during the failover, finds the new master by itself, and loses no claim acknowledged by a replica', async () => {
    assert.ok(set);
    const sentinels = set;
    const store = sentinelStore({ waitReplicas: 1 });
    try {
      const outcome = await failover({
        store,
        kill: () => sentinels.killMaster(),
        recovered: (port) => sentinels.failedOver(port),
      });
      assert.ok(outcome.acknowledged > 0, 'claims were acknowledged before the kill');
      assert.ok(outcome.refused > 0, 'claims were refused during the failover');
      for (const error of outcome.errors) assert.ok(error instanceof StoreUnavailableError, String(error));
      assert.deepEqual(outcome.lost, [], 'every acknowledged claim is still held after the failover');
      assert.ok(outcome.afterwards, 'claims work again after the failover');
    } finally {
      await store.close();
    }
  });
});

describe('RedisCooldownStore through Redis Sentinel with passwords', () => {
  let guarded: SentinelSet | undefined;

  before(async () => {
    guarded = await startSentinelSet(1, { password: 'data-secret', sentinelPassword: 'sentinel-secret' });
  });

  after(async () => {
    await guarded?.stop();
  });

  function guardedStore(passwords: { password?: string; sentinelPassword?: string }): RedisCooldownStore {
    assert.ok(guarded);
    return new RedisCooldownStore({
      source: { kind: 'sentinel', sentinels: guarded.sentinels, masterName: guarded.masterName, ...passwords },
      keyPrefix: uniquePrefix(),
      commandTimeoutMs: 1_000,
    });
  }

  it('gives the sentinels their password and the servers theirs', async () => {
    const store = guardedStore({ password: 'data-secret', sentinelPassword: 'sentinel-secret' });
    try {
      assert.equal((await store.claim('k', claim('wf-1'), LONG_MS)).acquired, true);
    } finally {
      await store.close();
    }
  });

  for (const [what, passwords] of [
    ["without the sentinels' password", { password: 'data-secret' }],
    ["without the servers' password", { sentinelPassword: 'sentinel-secret' }],
  ] as const) {
    it(`fails closed ${what}`, async () => {
      const store = guardedStore(passwords);
      try {
        await assert.rejects(store.claim('k', claim('wf-1'), LONG_MS), StoreUnavailableError);
      } finally {
        await store.close();
      }
    });
  }
});
