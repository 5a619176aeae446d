import assert from 'node:assert/strict';
import net from 'node:net';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { type ClaimResult, type CooldownClaim, StoreUnavailableError } from '../../src/stores/cooldown-store.js';
import { RedisCooldownStore } from '../../src/stores/redis.js';
import { uniquePrefix } from '../support/redis-server.js';
import { type SentinelSet, startSentinelSet } from '../support/redis-topology.js';
import { LONG_MS, START } from '../support/store-contract.js';

/**
 * Faults of a Redis Sentinel set under --redis-wait-replicas (SPEC §10): a claim counts only once
 * the replicas acknowledged it, whoever finds it, so that a failover cannot lose a claim some
 * replica acted on.
 */

const COMMAND_TIMEOUT_MS = 1_000;
/** How long the store and the new master's replica may take to be back after the failover. */
const RECOVERY_BOUND_MS = 30_000;
const POLL_MS = 100;

let set: SentinelSet | undefined;

beforeEach(async () => {
  set = await startSentinelSet();
});

afterEach(async () => {
  await set?.resumeReplicas();
  await set?.stop();
});

function sentinelStore(keyPrefix: string): RedisCooldownStore {
  assert.ok(set, 'the sentinels were started in beforeEach()');
  return new RedisCooldownStore({
    source: { kind: 'sentinel', sentinels: set.sentinels, masterName: set.masterName },
    keyPrefix,
    waitReplicas: 1,
    commandTimeoutMs: COMMAND_TIMEOUT_MS,
  });
}

function claim(workflowName: string, fingerprint: string): CooldownClaim {
  return { workflowName, fingerprint, state: 'pending', claimedAt: START };
}

/** One command to the master, on a connection of its own. */
async function onMaster(masterPort: number, ...command: [string, ...string[]]): Promise<void> {
  const master = new Redis({ host: '127.0.0.1', port: masterPort, maxRetriesPerRequest: 0 });
  try {
    await master.call(...command);
  } finally {
    master.disconnect();
  }
}

/** The master drops its replicas' connections (paused replicas cannot connect again). */
function cutReplicationLinks(masterPort: number): Promise<void> {
  return onMaster(masterPort, 'CLIENT', 'KILL', 'TYPE', 'replica');
}

/** The store answers a ping within a few command timeouts (it has found the master by then). */
async function answersSoon(store: RedisCooldownStore): Promise<void> {
  const bound = 5 * COMMAND_TIMEOUT_MS;
  const deadline = Date.now() + bound;
  for (;;) {
    try {
      await store.ping();
      return;
    } catch (error) {
      if (Date.now() > deadline) assert.fail(`no answer within ${bound} ms: ${String(error)}`);
      await delay(POLL_MS);
    }
  }
}

/** What the guard does with an answer: act (create a Workflow) on a claim taken, or on its own alert's pending claim. */
function acts(result: ClaimResult, fingerprint: string): boolean {
  return result.acquired || (result.existing.state === 'pending' && result.existing.fingerprint === fingerprint);
}

describe('RedisCooldownStore with --redis-wait-replicas, while the replicas acknowledge nothing', () => {
  it("refuses the same alert's retry, which finds its own claim still unacknowledged", async () => {
    assert.ok(set);
    const store = sentinelStore(uniquePrefix());
    try {
      assert.equal((await store.claim('warm', claim('wf-0', 'fp-0'), LONG_MS)).acquired, true);
      await set.pauseReplicas();
      await assert.rejects(store.claim('k', claim('wf-1', 'fp-1'), LONG_MS), StoreUnavailableError);
      await assert.rejects(
        store.claim('k', claim('wf-retry', 'fp-1'), LONG_MS),
        StoreUnavailableError,
        'the retry would create a Workflow on a claim a failover can still lose',
      );
    } finally {
      await store.close();
    }
  });

  it("refuses another receiver's claim that finds the first one's unacknowledged claim of the same alert", async () => {
    assert.ok(set);
    const keyPrefix = uniquePrefix();
    const [first, second] = [sentinelStore(keyPrefix), sentinelStore(keyPrefix)];
    try {
      // Each has written (and had acknowledged) something before: its WAIT has nothing older to wait for.
      assert.equal((await first.claim('warm-1', claim('wf-a', 'fp-a'), LONG_MS)).acquired, true);
      assert.equal((await second.claim('warm-2', claim('wf-b', 'fp-b'), LONG_MS)).acquired, true);
      await set.pauseReplicas();
      await assert.rejects(first.claim('k', claim('wf-1', 'fp-1'), LONG_MS), StoreUnavailableError);
      await assert.rejects(
        second.claim('k', claim('wf-twin', 'fp-1'), LONG_MS),
        StoreUnavailableError,
        "the HA twin's notification would create a Workflow on a claim a failover can still lose",
      );
    } finally {
      await Promise.all([first.close(), second.close()]);
    }
  });
});

describe('RedisCooldownStore with --redis-wait-replicas, whose master forgot the scripts', () => {
  it('waits for the replicas after the claim was written, not before', async () => {
    assert.ok(set);
    const keyPrefix = uniquePrefix();
    const store = sentinelStore(keyPrefix);
    const port = await set.masterPort();
    const client = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 0 });
    const monitor = await client.monitor();
    try {
      assert.equal((await store.claim('warm', claim('wf-0', 'fp-0'), LONG_MS)).acquired, true);
      // As SCRIPT FLUSH does, or Redis 7.4 evicting scripts sent by EVAL past its 500 most recent,
      // or a proxy in front of Redis that moved the connection to another server.
      await onMaster(port, 'SCRIPT', 'FLUSH');
      const seen: string[] = [];
      monitor.on('monitor', (_time: string, args: string[]) => {
        const [name, first] = args.map(String);
        if (name === 'wait' || (name?.toLowerCase() === 'set' && first === `${keyPrefix}cooldown:k`)) seen.push(name);
      });
      assert.equal((await store.claim('k', claim('wf-1', 'fp-1'), LONG_MS)).acquired, true);
      await onMaster(port, 'PING'); // Everything before it has been monitored.
      assert.ok(
        seen.lastIndexOf('wait') > seen.findIndex((name) => name.toLowerCase() === 'set'),
        `no WAIT after the claim was written: ${seen.join(', ')}`,
      );
    } finally {
      monitor.disconnect();
      client.disconnect();
      await store.close();
    }
  });
});

describe('RedisCooldownStore with --redis-wait-replicas, while the replicas acknowledge nothing, under load', () => {
  it('answers a peek and a ping within the command timeout while claims of several turns wait for the replicas', async () => {
    assert.ok(set);
    const store = sentinelStore(uniquePrefix());
    try {
      assert.equal((await store.claim('warm', claim('wf-0', 'fp-0'), LONG_MS)).acquired, true);
      await set.pauseReplicas();
      // Three turns of alerts: three batches, each followed by its WAIT.
      const claims: Promise<unknown>[] = [];
      for (let turn = 0; turn < 3; turn++) {
        claims.push(store.claim(`k-${turn}`, claim(`wf-${turn}`, `fp-${turn}`), LONG_MS).catch((error) => error));
        await new Promise((resolve) => setImmediate(resolve));
      }
      const started = Date.now();
      assert.equal(await store.peek('other'), null);
      await store.ping();
      assert.ok(Date.now() - started < COMMAND_TIMEOUT_MS, 'answered within the command timeout');
      await Promise.all(claims);
    } finally {
      await store.close();
    }
  });
});

describe('RedisCooldownStore with --redis-wait-replicas, whose master dies before the replicas acknowledged a claim', () => {
  it('lets no alert act on a claim the failover then loses: the workload never gets a second Workflow', async () => {
    assert.ok(set);
    const sentinels = set;
    const keyPrefix = uniquePrefix();
    const store = sentinelStore(keyPrefix);
    let actedOn = 0;
    try {
      assert.equal((await store.claim('warm', claim('wf-0', 'fp-0'), LONG_MS)).acquired, true);
      await sentinels.pauseReplicas();
      // A paused replica's kernel would still take the stream in: cut the links before the claim.
      await cutReplicationLinks(await sentinels.masterPort());
      for (const [name, fingerprint] of [
        ['wf-1', 'fp-1'],
        ['wf-retry', 'fp-1'],
      ] as const) {
        try {
          if (acts(await store.claim('k', claim(name, fingerprint), LONG_MS), fingerprint)) actedOn++;
        } catch (error) {
          assert.ok(error instanceof StoreUnavailableError, String(error));
        }
      }
      // The master dies with the claim unreplicated; the replicas come back and one is promoted.
      const port = await sentinels.killMaster();
      await sentinels.resumeReplicas();
      await sentinels.failedOver(port);
      // Until the store has found the new master, and the other replica follows it (WAIT 1).
      let other: ClaimResult | undefined;
      let last: unknown;
      const deadline = Date.now() + RECOVERY_BOUND_MS;
      while (other === undefined && Date.now() < deadline) {
        try {
          other = await store.claim('k', claim('wf-other', 'fp-other'), LONG_MS);
        } catch (error) {
          last = error;
          await delay(POLL_MS);
        }
      }
      assert.ok(other, `a claim is answered after the failover: ${String(last)}`);
      if (acts(other, 'fp-other')) actedOn++;
      assert.ok(actedOn <= 1, `${actedOn} Workflows for one cooldown key`);
    } finally {
      await store.close();
    }
  });
});

describe('RedisCooldownStore through Redis Sentinel, whose first sentinel listed hangs', () => {
  it('asks the next sentinel and finds the master', async () => {
    assert.ok(set);
    // A hung sentinel (stopped, or frozen with its pod) still accepts connections: it never answers.
    const silent = net.createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as net.AddressInfo;
    const store = new RedisCooldownStore({
      source: {
        kind: 'sentinel',
        sentinels: [{ host: '127.0.0.1', port }, ...set.sentinels],
        masterName: set.masterName,
      },
      keyPrefix: uniquePrefix(),
      commandTimeoutMs: COMMAND_TIMEOUT_MS,
    });
    try {
      await answersSoon(store);
    } finally {
      await store.close();
      silent.close();
    }
  });
});

describe('RedisCooldownStore through Redis Sentinel, whose sentinels require the password', () => {
  it('finds the master with the password given (the same for the sentinels and the servers)', async () => {
    assert.ok(set);
    // As the Bitnami chart sets them up by default (auth.sentinel: true).
    for (const sentinel of set.sentinels) {
      await onMaster(sentinel.port, 'ACL', 'SETUSER', 'default', 'on', '>secret', '~*', '&*', '+@all');
    }
    const store = new RedisCooldownStore({
      source: { kind: 'sentinel', sentinels: set.sentinels, masterName: set.masterName, password: 'secret' },
      keyPrefix: uniquePrefix(),
      commandTimeoutMs: COMMAND_TIMEOUT_MS,
    });
    try {
      await answersSoon(store);
    } finally {
      await store.close();
    }
  });
});

describe('RedisCooldownStore through Redis Sentinel, given a password that only the servers require', () => {
  it('finds the master all the same', async () => {
    assert.ok(set);
    const master = await set.masterPort();
    await onMaster(master, 'ACL', 'SETUSER', 'default', 'on', '>secret', '~*', '&*', '+@all');
    const store = new RedisCooldownStore({
      source: { kind: 'sentinel', sentinels: set.sentinels, masterName: set.masterName, password: 'secret' },
      keyPrefix: uniquePrefix(),
      commandTimeoutMs: COMMAND_TIMEOUT_MS,
    });
    try {
      await answersSoon(store);
    } finally {
      await store.close();
    }
  });
});
