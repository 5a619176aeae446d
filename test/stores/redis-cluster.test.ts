import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import calculateSlot from 'cluster-key-slot';
import { type CooldownClaim, StoreUnavailableError } from '../../src/stores/cooldown-store.js';
import { RedisCooldownStore } from '../../src/stores/redis.js';
import { RedisKeys } from '../../src/stores/redis-keys.js';
import { failover } from '../support/failover.js';
import { uniquePrefix } from '../support/redis-server.js';
import { type ClusterSet, startRedisCluster } from '../support/redis-topology.js';
import {
  contract,
  escalation,
  LONG_MS,
  RETENTION,
  remediation,
  START,
  transitionOf,
} from '../support/store-contract.js';

/**
 * The store on a six-node Redis Cluster (SPEC §10): the same contract as on one Redis, with keys
 * spread over every slot, and a master failover that loses no acknowledged claim.
 */

let cluster: ClusterSet | undefined;

before(async () => {
  cluster = await startRedisCluster();
});

after(async () => {
  await cluster?.stop();
});

function clusterStore(options: { keyPrefix?: string; now?: () => number; waitReplicas?: number } = {}) {
  assert.ok(cluster, 'the cluster was started in before()');
  return new RedisCooldownStore({
    source: { kind: 'cluster', nodes: cluster.nodes },
    keyPrefix: options.keyPrefix ?? uniquePrefix(),
    now: options.now,
    waitReplicas: options.waitReplicas,
  });
}

/** The slot the store's key for a cooldown key falls in. */
function slotOf(keyPrefix: string, key: string): number {
  return calculateSlot(new RedisKeys(keyPrefix, true).cooldown(key));
}

function claim(workflowName: string): CooldownClaim {
  return { workflowName, fingerprint: `fp-${workflowName}`, state: 'pending', claimedAt: START };
}

contract('RedisCooldownStore on a Redis Cluster', async (now) => clusterStore({ now }), 'real');

describe('RedisCooldownStore on a Redis Cluster, with keys in many slots', () => {
  it('claims, commits, lists and ends 300 cooldowns taken in one turn, whose keys fall in slots of every master', async () => {
    const keyPrefix = uniquePrefix();
    const store = clusterStore({ keyPrefix });
    try {
      const keys = Array.from({ length: 300 }, (_, i) => `pod-crash:shop/checkout-${i}`);
      const masters = new Set(
        await Promise.all(keys.slice(0, 60).map((key) => cluster?.masterOf(slotOf(keyPrefix, key)))),
      );
      assert.equal(masters.size, 3, 'the keys are spread over the three masters');

      const claimed = await Promise.all(keys.map((key, i) => store.claim(key, claim(`wf-${i}`), LONG_MS)));
      assert.ok(
        claimed.every((result) => result.acquired),
        'each key claimed once',
      );
      const again = await Promise.all(keys.map((key) => store.claim(key, claim('other'), LONG_MS)));
      assert.ok(
        again.every((result) => !result.acquired && result.existing.workflowName !== 'other'),
        'held',
      );
      const committed = await Promise.all(keys.map((key, i) => store.commit(key, `wf-${i}`, LONG_MS)));
      assert.ok(committed.every(Boolean));

      const listed = await store.listCooldowns(1000);
      assert.deepEqual(listed.map((held) => held.key).sort(), [...keys].sort(), 'listed from every master');
      assert.ok(listed.every((held) => held.claim.state === 'committed'));

      const ended = await store.endCooldown(keys[7] as string, LONG_MS);
      assert.equal(ended?.workflowName, 'wf-7');
      assert.ok((await store.cooldownEndedAt(keys[7] as string)) !== null, 'its marker, in the same slot');
      assert.equal((await store.claim(keys[7] as string, claim('next'), LONG_MS)).acquired, true);
    } finally {
      await store.close();
    }
  });

  it('keeps a key that holds braces, whatever its hash tag would have been, with its ended marker', async () => {
    const store = clusterStore();
    try {
      for (const key of ['}x{', '{a}b', 'rule:{ns}/name}', '{}']) {
        assert.equal((await store.claim(key, claim('wf'), LONG_MS)).acquired, true, key);
        assert.equal((await store.endCooldown(key, LONG_MS))?.workflowName, 'wf', key);
        assert.ok((await store.cooldownEndedAt(key)) !== null, key);
      }
    } finally {
      await store.close();
    }
  });

  it('records remediations with their audit entries in one slot, and lists them', async () => {
    const store = clusterStore({ now: () => START });
    try {
      for (const name of ['wf-a', 'wf-b', 'wf-c']) {
        const changed = remediation(name, 'failed');
        assert.equal(await store.recordTransition(changed, transitionOf(changed), RETENTION), true);
      }
      const listed = await store.listRemediations(10);
      assert.deepEqual(listed.map((r) => r.workflow).sort(), ['argo/wf-a', 'argo/wf-b', 'argo/wf-c']);
      assert.equal((await store.listDecisions(10)).length, 3);
    } finally {
      await store.close();
    }
  });
});

describe('RedisCooldownStore on a Redis Cluster: the activity of the page', () => {
  it('counts in keys of the slot of the audit stream, which the scripts that count name with it', () => {
    const keys = new RedisKeys(uniquePrefix(), true);
    const slot = calculateSlot(keys.decisions());
    assert.deepEqual(
      [keys.activity(0), keys.activity(493_000), keys.lastMatch(), keys.remediationIndex()].map((key) =>
        calculateSlot(key),
      ),
      [slot, slot, slot, slot],
    );
  });

  it('lists the escalations of keys on every master, newest first', async () => {
    let now = START;
    const store = clusterStore({ now: () => now });
    try {
      const keys = Array.from({ length: 30 }, (_, i) => `pod-crash:shop/checkout-${i}`);
      for (const [i, key] of keys.entries()) {
        now = START + i;
        await store.openEscalation(key, 'exhausted', escalation(`wf-${i}`), LONG_MS);
      }
      const listed = await store.listEscalations(100);
      assert.deepEqual(
        listed.map((open) => open.cooldownKey),
        [...keys].reverse(),
      );
    } finally {
      await store.close();
    }
  });
});

describe('RedisCooldownStore on a Redis Cluster whose master fails', () => {
  it('fails closed while the slot has no master, recovers by itself, and loses no claim acknowledged by a replica', async () => {
    assert.ok(cluster);
    const set = cluster;
    const keyPrefix = uniquePrefix();
    const store = clusterStore({ keyPrefix, waitReplicas: 1 });
    try {
      const outcome = await failover({
        store,
        kill: async (key) => set.killMasterOf(slotOf(keyPrefix, key)),
        // With WAIT 1 the shard takes claims again once it has a replica: the killed node comes
        // back (as Kubernetes restarts a pod) as the new master's replica.
        recovered: async (port, key) => {
          await set.failedOver(port, slotOf(keyPrefix, key));
          await set.restart(port);
        },
      });
      assert.ok(outcome.acknowledged > 0, 'claims were acknowledged before the kill');
      assert.ok(outcome.refused > 0, 'some claims were refused during the failover');
      for (const error of outcome.errors) assert.ok(error instanceof StoreUnavailableError, String(error));
      assert.deepEqual(outcome.lost, [], 'every acknowledged claim is still held after the failover');
      assert.ok(outcome.afterwards, 'claims work again after the failover');
    } finally {
      await store.close();
    }
  });
});
