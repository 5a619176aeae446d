import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import calculateSlot from 'cluster-key-slot';
import { Redis } from 'ioredis';
import { type CooldownClaim, StoreUnavailableError } from '../../src/stores/cooldown-store.js';
import { RedisCooldownStore } from '../../src/stores/redis.js';
import { RedisKeys } from '../../src/stores/redis-keys.js';
import { uniquePrefix } from '../support/redis-server.js';
import { type ClusterSet, startRedisCluster } from '../support/redis-topology.js';
import { Heard, LONG_MS, listen, START } from '../support/store-contract.js';

/**
 * Faults of a Redis Cluster (SPEC §10) that its client could turn into surprises: a command the
 * store answered as failed must not run later, and an end of a cooldown is heard by every store.
 */

const COMMAND_TIMEOUT_MS = 1_000;
/** ioredis retries a command whose connection closed every 100 ms, at most 16 times. */
const RESEND_WINDOW_MS = 3_000;
const RECOVERY_BOUND_MS = 30_000;
const POLL_MS = 100;

let cluster: ClusterSet | undefined;

before(async () => {
  cluster = await startRedisCluster();
});

after(async () => {
  await cluster?.stop();
});

function clusterStore(keyPrefix: string, waitReplicas = 0): RedisCooldownStore {
  assert.ok(cluster, 'the cluster was started in before()');
  return new RedisCooldownStore({
    source: { kind: 'cluster', nodes: cluster.nodes },
    keyPrefix,
    waitReplicas,
    commandTimeoutMs: COMMAND_TIMEOUT_MS,
  });
}

function slotOf(keyPrefix: string, key: string): number {
  return calculateSlot(new RedisKeys(keyPrefix, true).cooldown(key));
}

function claim(workflowName: string): CooldownClaim {
  return { workflowName, fingerprint: `fp-${workflowName}`, state: 'pending', claimedAt: START };
}

/** Answers `read()` once it stops failing (the store has found the slot's new master). */
async function once<T>(read: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + RECOVERY_BOUND_MS;
  for (;;) {
    try {
      return await read();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await delay(POLL_MS);
    }
  }
}

describe('RedisCooldownStore on a Redis Cluster whose master hangs, is failed over and then killed', () => {
  it('never takes afterwards a claim it answered as failed', async () => {
    assert.ok(cluster);
    const set = cluster;
    const keyPrefix = uniquePrefix();
    const store = clusterStore(keyPrefix);
    try {
      const slot = slotOf(keyPrefix, 'k');
      assert.equal(await store.peek('k'), null, 'the connection to the master is up');
      const port = await set.pauseMasterOf(slot);
      await assert.rejects(store.claim('k', claim('wf-refused'), LONG_MS), StoreUnavailableError);
      await set.failedOver(port, slot);
      await set.killNode(port);
      assert.equal(await once(() => store.peek('k')), null, 'nothing holds the key once the slot is served again');
      // A resend, if there is one, lands within ioredis's retries.
      const deadline = Date.now() + RESEND_WINDOW_MS;
      while (Date.now() < deadline) {
        const held = await store.peek('k');
        assert.equal(held, null, `a claim answered as failed was taken later: ${JSON.stringify(held)}`);
        await delay(POLL_MS);
      }
    } finally {
      await store.close();
    }
  });
});

/** The port of the one node that holds a subscribed connection (the listening store's). */
async function subscriberNode(ports: number[]): Promise<number> {
  const found: number[] = [];
  for (const port of ports) {
    const client = new Redis({
      host: '127.0.0.1',
      port,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    client.on('error', () => {});
    try {
      await client.connect();
      const list = String(await client.call('CLIENT', 'LIST', 'TYPE', 'pubsub'));
      if (list.trim() !== '') found.push(port);
    } catch {
      // A node killed by an earlier test.
    } finally {
      client.disconnect();
    }
  }
  assert.equal(found.length, 1, `one node holds the subscription: ${found.join(', ')}`);
  return found[0] as number;
}

describe('RedisCooldownStore on a Redis Cluster whose master dies', () => {
  it('lists every cooldown held, or fails: never some of them without saying so', async () => {
    assert.ok(cluster);
    const set = cluster;
    const keyPrefix = uniquePrefix();
    const store = clusterStore(keyPrefix);
    try {
      const keys = Array.from({ length: 60 }, (_, i) => `team/k-${i}`);
      for (const [i, key] of keys.entries()) await store.claim(key, claim(`wf-${i}`), LONG_MS);
      assert.equal((await store.listCooldowns(1000)).length, keys.length);
      const port = await set.killMasterOf(slotOf(keyPrefix, keys[0] as string));
      const failed = set.failedOver(port, slotOf(keyPrefix, keys[0] as string));
      const listings: (number | string)[] = [];
      let done = false;
      failed.then(
        () => {
          done = true;
        },
        () => {
          done = true;
        },
      );
      while (!done) {
        try {
          listings.push((await store.listCooldowns(1000)).length);
        } catch (error) {
          listings.push(error instanceof StoreUnavailableError ? 'unavailable' : String(error));
        }
        await delay(POLL_MS);
      }
      await failed;
      const partial = listings.filter((one) => typeof one === 'number' && one !== keys.length);
      assert.deepEqual(partial, [], `listings during the failover: ${listings.join(', ')}`);
      const afterwards = await once(async () => {
        const listed = await store.listCooldowns(1000);
        if (listed.length !== keys.length) throw new Error(`${listed.length} listed`);
        return listed.length;
      });
      assert.equal(afterwards, keys.length, 'every cooldown listed once a replica took over');
    } finally {
      await store.close();
    }
  });
});

describe('RedisCooldownStore on a Redis Cluster, with several receivers', () => {
  it("tells another receiver's listeners of a cooldown one receiver ended", async () => {
    const keyPrefix = uniquePrefix();
    const [ending, hearing] = [clusterStore(keyPrefix), clusterStore(keyPrefix)];
    try {
      const heard = new Heard();
      await listen(hearing, heard);
      for (const key of ['team/a', 'team/b', 'team/c']) await ending.endCooldown(key, LONG_MS);
      await heard.heardAtLeast(3, 'the three ends');
      // Each end is published by its own slot's master: they may arrive in any order.
      assert.deepEqual([...heard.keys].sort(), ['team/a', 'team/b', 'team/c']);
    } finally {
      await Promise.all([ending.close(), hearing.close()]);
    }
  });

  it('tells the listeners, once their subscription has moved off a node that died, of an end they missed', async () => {
    assert.ok(cluster);
    const set = cluster;
    const keyPrefix = uniquePrefix();
    const [ending, hearing] = [clusterStore(keyPrefix), clusterStore(keyPrefix)];
    try {
      const heard = new Heard();
      await listen(hearing, heard);
      const node = await subscriberNode(set.nodes.map((n) => n.port));
      // A key the hung node does not serve: its end is published at once, and the hung node
      // never passes it on.
      let key = 'team/a';
      for (let i = 0; (await set.masterOf(slotOf(keyPrefix, key))) === node; i++) key = `team/a-${i}`;
      await set.pauseNode(node);
      await ending.endCooldown(key, LONG_MS);
      const after = heard.keys.length;
      await set.killNode(node);
      await heard.heardAtLeast(after + 1, `null once subscribed again (${key} was missed)`);
      assert.deepEqual(heard.keys.slice(after), [null]);
    } finally {
      await Promise.all([ending.close(), hearing.close()]);
    }
  });
});

describe('RedisCooldownStore on a Redis Cluster none of whose nodes answers', () => {
  it('refuses a claim waiting for the replicas within the command timeout, as it does one that does not wait', async () => {
    // Nodes that accept connections and never answer (hung, or frozen with their pods).
    const silent = await Promise.all(
      [0, 1, 2].map(
        () =>
          new Promise<net.Server>((resolve) => {
            const server = net.createServer(() => {});
            server.listen(0, '127.0.0.1', () => resolve(server));
          }),
      ),
    );
    const nodes = silent.map((server) => ({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port }));
    try {
      for (const waitReplicas of [0, 1]) {
        const store = new RedisCooldownStore({
          source: { kind: 'cluster', nodes },
          keyPrefix: uniquePrefix(),
          waitReplicas,
          commandTimeoutMs: COMMAND_TIMEOUT_MS,
        });
        try {
          for (let attempt = 0; attempt < 2; attempt++) {
            const started = Date.now();
            await assert.rejects(store.claim('k', claim('wf'), LONG_MS), StoreUnavailableError);
            const took = Date.now() - started;
            assert.ok(
              took < 1.5 * COMMAND_TIMEOUT_MS,
              `--redis-wait-replicas ${waitReplicas}: refused after ${took} ms`,
            );
          }
        } finally {
          await store.close();
        }
      }
    } finally {
      for (const server of silent) server.close();
    }
  });
});
