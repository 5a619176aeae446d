import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { ACTIVITY_KEPT_MS, activityHour } from '../../src/stores/cooldown-store.js';
import { MemoryCooldownStore } from '../../src/stores/memory.js';
import { RedisCooldownStore } from '../../src/stores/redis.js';
import { RedisKeys } from '../../src/stores/redis-keys.js';
import { type RedisServer, startRedis, uniquePrefix } from '../support/redis-server.js';
import {
  contract,
  decision,
  escalation,
  Heard,
  LONG_MS,
  listen,
  MAX_TICKS,
  pendingClaim,
  RETENTION,
  remediation,
  SHORT_MS,
  START,
  TICK_MS,
  transitionOf,
  WINDOW_MS,
} from '../support/store-contract.js';

let redis: RedisServer | undefined;

before(async () => {
  redis = await startRedis();
});

after(async () => {
  await redis?.stop();
});

function redisStore(keyPrefix: string, now: () => number): RedisCooldownStore {
  assert.ok(redis, 'redis-server was started in before()');
  return new RedisCooldownStore({ url: redis.url, keyPrefix, now });
}

contract('MemoryCooldownStore', async (now) => new MemoryCooldownStore({ now }), 'injected');
contract('RedisCooldownStore', async (now) => redisStore(uniquePrefix(), now), 'real');

describe('RedisCooldownStore shared by two replicas', () => {
  let replicas: RedisCooldownStore[] = [];
  let now = START;
  let keyPrefix = '';

  beforeEach(() => {
    keyPrefix = uniquePrefix();
    now = START;
    replicas = [redisStore(keyPrefix, () => now), redisStore(keyPrefix, () => now)];
  });

  afterEach(async () => {
    await Promise.all(replicas.map((replica) => replica.close()));
  });

  function pair(): [RedisCooldownStore, RedisCooldownStore] {
    const [a, b] = replicas;
    assert.ok(a && b);
    return [a, b];
  }

  it('gives a cooldown key to exactly one replica when both claim at once', async () => {
    const [a, b] = pair();
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).claim('k', pendingClaim(`wf-${i}`), LONG_MS)),
    );
    assert.equal(results.filter((result) => result.acquired).length, 1);
  });

  it('lets one replica commit and release what another claimed, by workflow name', async () => {
    const [a, b] = pair();
    await a.claim('k', pendingClaim('wf-1'), LONG_MS);
    assert.equal(await b.commit('k', 'wf-1', LONG_MS), true);
    assert.equal((await a.peek('k'))?.state, 'committed');
    assert.equal(await b.release('k', 'wf-1'), true);
    assert.equal(await a.peek('k'), null);
  });

  it('shares one rate budget between replicas', async () => {
    const [a, b] = pair();
    const taken = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).takeRateSlot(6, WINDOW_MS)));
    assert.equal(taken.filter(Boolean).length, 6);
  });

  it('shares one audit trail between replicas', async () => {
    const [a, b] = pair();
    await a.appendDecision(decision(1), 100);
    await b.appendDecision(decision(2), 100);
    assert.deepEqual(await a.listDecisions(10), [decision(2), decision(1)]);
  });

  it('records a state change for exactly one of twenty calls from both replicas at once', async () => {
    const [a, b] = pair();
    const failed = remediation('wf-1', 'failed');
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).recordTransition(failed, transitionOf(failed), RETENTION)),
    );
    assert.equal(results.filter(Boolean).length, 1);
    assert.deepEqual(await b.listDecisions(10), [transitionOf(failed)], 'one audit entry');
  });

  it('refuses the state a lagging replica sees after another recorded a later one', async () => {
    const [a, b] = pair();
    const failed = remediation('wf-1', 'failed');
    const running = remediation('wf-1', 'running');
    assert.equal(await a.recordTransition(failed, transitionOf(failed), RETENTION), true);
    assert.equal(await b.recordTransition(running, transitionOf(running), RETENTION), false);
    assert.deepEqual(await b.listRemediations(10), [failed]);
  });

  it('opens an escalation for one replica only, and hands its resolution to one only', async () => {
    const [a, b] = pair();
    const opened = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        (i % 2 ? a : b).openEscalation('k', 'failed:argo/wf-1', escalation('wf-1'), LONG_MS),
      ),
    );
    assert.equal(opened.filter(Boolean).length, 1);
    const closed = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        (i % 2 ? a : b).closeEscalations('k', i % 4 < 2 ? 'all' : ['failed:argo/wf-1']),
      ),
    );
    assert.deepEqual(closed.flat(), [escalation('wf-1')]);
  });

  it('counts an attempt once when both replicas add it', async () => {
    const [a, b] = pair();
    const attempt = { workflow: 'argo/wf-1', at: START };
    await Promise.all([a.addAttempt('k', attempt, LONG_MS), b.addAttempt('k', attempt, LONG_MS)]);
    assert.deepEqual(await a.listAttempts('k', LONG_MS), [attempt]);
  });

  it('drops a remediation whose record expired from the index when a listing finds it gone', async () => {
    const [a] = pair();
    assert.ok(redis);
    const raw = new Redis(redis.url);
    try {
      const brief = remediation('wf-brief', 'running');
      await a.recordTransition(brief, transitionOf(brief), { ...RETENTION, retentionMs: SHORT_MS });
      const kept = remediation('wf-kept', 'running', 1_000);
      await a.recordTransition(kept, transitionOf(kept), RETENTION);
      // Real time: Redis expires the record by its own clock.
      for (let tick = 0; tick < MAX_TICKS && (await a.getRemediation(brief.workflow)); tick++) await delay(TICK_MS);
      assert.equal(await a.getRemediation(brief.workflow), null, 'the record expired');
      assert.equal(await raw.zcard(`${keyPrefix}remediations`), 2, 'still indexed before a listing');
      assert.deepEqual(await a.listRemediations(10), [kept]);
      assert.deepEqual(await raw.zrange(`${keyPrefix}remediations`, '0', '-1'), ['argo/wf-kept']);
    } finally {
      raw.disconnect();
    }
  });
});

describe('RedisCooldownStore: cooldowns ended by hand, across replicas', () => {
  let opened: RedisCooldownStore[] = [];
  let keyPrefix = '';
  let raw: Redis | undefined;

  beforeEach(() => {
    keyPrefix = uniquePrefix();
    assert.ok(redis);
    raw = new Redis(redis.url);
  });

  afterEach(async () => {
    await Promise.all(opened.map((store) => store.close()));
    opened = [];
    raw?.disconnect();
  });

  function replica(prefix = keyPrefix): RedisCooldownStore {
    const store = redisStore(prefix, () => START);
    opened.push(store);
    return store;
  }

  function rawClient(): Redis {
    assert.ok(raw);
    return raw;
  }

  async function subscribers(): Promise<number> {
    const [, count] = (await rawClient().pubsub('NUMSUB', `${keyPrefix}cooldown-ended`)) as [string, number];
    return count;
  }

  it('tells the listeners of every replica the key a third one ended', async () => {
    const [a, b, c] = [replica(), replica(), replica()];
    const [onA, onB] = [new Heard(), new Heard()];
    await listen(a, onA);
    await listen(b, onB);
    await c.claim('team/k', pendingClaim('wf-1'), LONG_MS);
    assert.deepEqual(await c.endCooldown('team/k', LONG_MS), pendingClaim('wf-1'));
    await onA.heardAtLeast(1, 'team/k on a');
    await onB.heardAtLeast(1, 'team/k on b');
    assert.deepEqual([onA.keys, onB.keys], [['team/k'], ['team/k']]);
    assert.equal(await a.cooldownEndedAt('team/k'), START, 'the note is shared too');
  });

  it('tells its listeners null once the subscription is back after Redis dropped it, and the ends after it', async () => {
    const [a, b] = [replica(), replica()];
    const heard = new Heard();
    await listen(a, heard);
    await rawClient().call('CLIENT', 'KILL', 'TYPE', 'pubsub');
    await heard.heardAtLeast(1, 'null: the subscription is back');
    assert.deepEqual(heard.keys, [null]);
    await b.endCooldown('team/k', LONG_MS);
    await heard.heardAtLeast(2, 'team/k');
    assert.deepEqual(heard.keys, [null, 'team/k']);
  });

  it('lists only its own keys, whatever glob characters the prefixes hold, and skips what is not a claim', async () => {
    const starred = replica(`${keyPrefix}*:`);
    const plain = replica(`${keyPrefix}b:`);
    await starred.claim('team/mine', pendingClaim('wf-1'), LONG_MS);
    await plain.claim('team/theirs', pendingClaim('wf-2'), LONG_MS);
    const client = rawClient();
    await client.set(`${keyPrefix}*:cooldown:team/junk`, 'not a claim', 'PX', LONG_MS);
    await client.set(`${keyPrefix}*:cooldown:team/forever`, JSON.stringify(pendingClaim('wf-3')));
    await client.hset(`${keyPrefix}*:cooldown:team/hash`, 'field', 'value');
    assert.deepEqual(
      (await starred.listCooldowns(100)).map((held) => held.key),
      ['team/mine'],
    );
    assert.deepEqual(
      (await plain.listCooldowns(100)).map((held) => held.key),
      ['team/theirs'],
    );
    assert.equal(await starred.endCooldown('team/junk', LONG_MS), null, 'ended, though it held no claim');
    assert.equal(await starred.endCooldown('team/hash', LONG_MS), null);
    assert.equal(await client.exists(`${keyPrefix}*:cooldown:team/junk`, `${keyPrefix}*:cooldown:team/hash`), 0);
  });

  it('lists at most 1000 keys, whatever limit it is asked for', async () => {
    const store = replica();
    const client = rawClient();
    const value = JSON.stringify(pendingClaim('wf-1'));
    const pipeline = client.pipeline();
    for (let i = 0; i < 1_005; i++) pipeline.set(`${keyPrefix}cooldown:team/k${i}`, value, 'PX', LONG_MS);
    await pipeline.exec();
    assert.equal((await store.listCooldowns(5_000)).length, 1_000);
  });

  it('closes promptly with a listener subscribed, and leaves no subscriber behind', async () => {
    const store = replica();
    await listen(store, new Heard());
    assert.equal(await subscribers(), 1);
    const started = performance.now();
    await store.close();
    const took = performance.now() - started;
    assert.ok(took < 1_000, `close took ${Math.round(took)} ms`);
    for (let tick = 0; tick < MAX_TICKS && (await subscribers()) > 0; tick++) await delay(TICK_MS);
    assert.equal(await subscribers(), 0);
  });

  it('closes promptly right after its first listener, before the subscription is up', async () => {
    const store = replica();
    const heard = new Heard();
    store.onCooldownEnded(heard.listener);
    const started = performance.now();
    await store.close();
    assert.ok(performance.now() - started < 1_000);
    assert.deepEqual(heard.keys, []);
    const stop = store.onCooldownEnded(heard.listener);
    stop();
  });
});

describe('RedisCooldownStore: escalations and activity, as Redis holds them', () => {
  let store: RedisCooldownStore | undefined;
  let raw: Redis | undefined;
  let keys = new RedisKeys('');
  let now = START;

  beforeEach(() => {
    const keyPrefix = uniquePrefix();
    keys = new RedisKeys(keyPrefix);
    now = START;
    store = redisStore(keyPrefix, () => now);
    assert.ok(redis);
    raw = new Redis(redis.url);
  });

  afterEach(async () => {
    await store?.close();
    raw?.disconnect();
  });

  function opened(): [RedisCooldownStore, Redis] {
    assert.ok(store && raw);
    return [store, raw];
  }

  /** SCAN calls Redis has served so far, whoever asked. */
  async function scans(raw: Redis): Promise<number> {
    const stats = await raw.info('commandstats');
    return Number(/^cmdstat_scan:calls=(\d+)/m.exec(stats)?.[1] ?? 0);
  }

  it('lists an escalation opened before openedAt was noted after those that say when, and skips what is not one', async () => {
    const [store, raw] = opened();
    await store.openEscalation('team/new', 'exhausted', escalation('wf-new'), LONG_MS);
    await store.openEscalation('team/old', 'exhausted', escalation('wf-reopened'), LONG_MS);
    const old = { alert: escalation('wf-old'), expiresAt: START + 2 * LONG_MS };
    await raw.hset(keys.escalations('team/old'), 'failed:argo/wf-old', JSON.stringify(old));
    await raw.hset(keys.escalations('team/old'), 'broken', 'not json');
    await raw.set(keys.escalations('team/junk'), 'not a hash');
    await raw.zadd(keys.escalationIndex(), START + LONG_MS, 'team/junk');
    assert.deepEqual(
      (await store.listEscalations(10)).map(({ cooldownKey, id, openedAt }) => ({ cooldownKey, id, openedAt })),
      [
        { cooldownKey: 'team/new', id: 'exhausted', openedAt: START },
        { cooldownKey: 'team/old', id: 'exhausted', openedAt: START },
        { cooldownKey: 'team/old', id: 'failed:argo/wf-old', openedAt: undefined },
      ],
    );
    assert.deepEqual((await store.listEscalations(10))[2], {
      cooldownKey: 'team/old',
      id: 'failed:argo/wf-old',
      ...old,
    });
  });

  it('lists from its index of keys with escalations, without a SCAN of the keyspace', async () => {
    const [store, raw] = opened();
    const unrelated = raw.pipeline();
    for (let i = 0; i < 5_000; i++) unrelated.set(`${keys.escalations(`other/${i}`)}:not-ours`, 'x');
    for (let i = 0; i < 5_000; i++) unrelated.set(`someone-else:${i}`, 'x');
    await unrelated.exec();
    await store.openEscalation('team/a', 'exhausted', escalation('wf-1'), LONG_MS);
    now = START + 1;
    await store.openEscalation('team/b', 'failed:argo/wf-2', escalation('wf-2'), LONG_MS);
    const before = await scans(raw);
    assert.deepEqual(
      (await store.listEscalations(10)).map(({ cooldownKey }) => cooldownKey),
      ['team/b', 'team/a'],
    );
    assert.equal((await scans(raw)) - before, 0, 'no SCAN');
    assert.deepEqual(
      await raw.zrange(keys.escalationIndex(), '0', '-1', 'WITHSCORES'),
      ['team/a', String(START + LONG_MS), 'team/b', String(START + 1 + LONG_MS)],
      'each key scored by when its escalations end',
    );
  });

  it('scores a key in the index by the escalation of it that ends last, whatever order they were opened in', async () => {
    const [store, raw] = opened();
    await store.openEscalation('team/a', 'exhausted', escalation('wf-1'), 3 * LONG_MS);
    await store.openEscalation('team/a', 'failed:argo/wf-2', escalation('wf-2'), LONG_MS);
    assert.equal(await raw.zscore(keys.escalationIndex(), 'team/a'), String(START + 3 * LONG_MS));
    now = START + 2 * LONG_MS;
    assert.deepEqual(
      (await store.listEscalations(10)).map(({ id }) => id),
      ['exhausted'],
      'listed until the last one ends',
    );
  });

  it('skips a key whose escalations are gone though the index still names it, and forgets it once its time has passed', async () => {
    const [store, raw] = opened();
    await store.openEscalation('team/a', 'exhausted', escalation('wf-1'), LONG_MS);
    await raw.del(keys.escalations('team/a'));
    assert.deepEqual(await store.listEscalations(10), []);
    assert.equal(await raw.zscore(keys.escalationIndex(), 'team/a'), String(START + LONG_MS), 'still named');
    now = START + LONG_MS;
    assert.deepEqual(await store.listEscalations(10), []);
    assert.equal(await raw.zcard(keys.escalationIndex()), 0, 'forgotten');
  });

  it("keeps an hour's activity 25 h, counted by decisions and by final states alike", async () => {
    const [store, raw] = opened();
    const bucket = keys.activity(activityHour(START));
    await store.appendDecision(decision(0), 100);
    const failed = remediation('wf-1', 'failed');
    await store.recordTransition(failed, transitionOf(failed), RETENTION);
    assert.deepEqual(await raw.hgetall(bucket), { 'o:submitted': '1', 'm:crashloop': '1', 's:pod-crash:failed': '1' });
    const ttl = await raw.pttl(bucket);
    assert.ok(ttl > ACTIVITY_KEPT_MS - 60_000 && ttl <= ACTIVITY_KEPT_MS, `kept ${ttl} ms`);
    assert.deepEqual(await raw.hgetall(keys.lastMatch()), { crashloop: String(START) });
  });
});
