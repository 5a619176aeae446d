/**
 * Pauses shared by replicas through one real Redis: two receivers (two apps, two stores, one key
 * prefix), a pause added through one in force on the other as soon as its copy has heard of it.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import type { Pause } from '../../src/pause.js';
import { LocalPauses } from '../../src/pipeline/local-pauses.js';
import { RedisCooldownStore } from '../../src/stores/redis.js';
import { firing, scriptedSubmitter, TEST_START, type TestApp, testApp, webhook } from '../support/app.js';
import { eventually } from '../support/processes.js';
import { type RedisServer, startRedis, uniquePrefix } from '../support/redis-server.js';
import { HEAR_BOUND_MS, pauseOf, START } from '../support/store-contract.js';

const HOUR = 3600_000;
/** What the copies warned of writing back, over all replicas of a test. */
const restores: string[] = [];
/** The copies' backstop reloads, which the tests run by hand (no timer). */
const backstops: (() => void)[] = [];

let redis: RedisServer | undefined;
before(async () => {
  redis = await startRedis();
});
after(async () => {
  await redis?.stop();
});

let closing: { close(): Promise<unknown> }[] = [];
afterEach(async () => {
  await Promise.all(closing.map((closable) => closable.close()));
  closing = [];
  restores.length = 0;
  backstops.length = 0;
});

function storeOf(keyPrefix: string, clock: { now: number }): RedisCooldownStore {
  assert.ok(redis, 'redis-server was started in before()');
  return new RedisCooldownStore({ url: redis.url, keyPrefix, now: () => clock.now });
}

interface Replica extends TestApp {
  copy: LocalPauses;
}

/**
 * Two replicas on one Redis and one clock. Their copies of the pauses have no backstop timer: only
 * the change messages (and the null of a subscription coming up) make them load.
 */
async function twoReplicas(): Promise<[Replica, Replica]> {
  const keyPrefix = uniquePrefix();
  const clock = { now: TEST_START };
  const replicas: Replica[] = [];
  for (let i = 0; i < 2; i++) {
    const store = storeOf(keyPrefix, clock);
    const copy = new LocalPauses({
      store,
      now: () => clock.now,
      every: (_ms, tick) => {
        backstops.push(tick);
        return () => {};
      },
      // Only what says it wrote pauses back: a load that failed while Redis restarted warns too.
      logger: { warn: (obj, msg) => ('restored' in obj ? restores.push(msg ?? '') : 0) },
    });
    const replica = await testApp({ store, clock, pauses: copy, submitter: scriptedSubmitter() });
    closing.push(replica.app);
    replicas.push({ ...replica, copy });
  }
  return replicas as [Replica, Replica];
}

/** Resolves once the copy satisfies `holds`, woken by its change listener; fails after HEAR_BOUND_MS. */
function untilCopy(copy: LocalPauses, holds: (pauses: readonly Pause[]) => boolean, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (copy.current === undefined || !holds(copy.current)) return;
      clearTimeout(timer);
      stop();
      resolve();
    };
    const timer = setTimeout(() => {
      stop();
      reject(
        new Error(`the copy holds ${JSON.stringify(copy.current)} after ${HEAR_BOUND_MS} ms; waiting for ${what}`),
      );
    }, HEAR_BOUND_MS);
    const stop = copy.onChanged(check);
    check();
  });
}

async function addPause(replica: Replica, body: Record<string, unknown>): Promise<Pause> {
  const res = await replica.app.inject({ method: 'POST', url: '/v1/pauses', payload: body });
  assert.equal(res.statusCode, 201, res.body);
  return res.json() as Pause;
}

const crashing = (namespace: string, pod: string) =>
  firing({ alertname: 'PodCrash', namespace, pod }, { description: 'CrashLoopBackOff' });
const databaseDown = (namespace: string, pod: string) =>
  firing({ alertname: 'DbDown', namespace, pod, severity: 'critical' }, { description: 'database connection failed' });

async function outcomeOf(replica: Replica, alert: ReturnType<typeof firing>): Promise<string> {
  const res = await replica.app.inject({ method: 'POST', url: '/webhook/alertmanager', payload: webhook([alert]) });
  assert.equal(res.statusCode, 200, res.body);
  return res.json().decisions[0].outcome;
}

const SHOP = { namespace: 'shop', duration: '1h', reason: 'deploy', createdBy: 'alice' };

describe('a pause shared by two replicas through Redis', () => {
  it('pauses a namespace on the other replica at once; it claims nothing there, and acts once the pause has ended', async () => {
    const [a, b] = await twoReplicas();
    const pause = await addPause(a, SHOP);
    await untilCopy(b.copy, (pauses) => pauses.some((p) => p.id === pause.id), 'the pause added on a');
    assert.equal(await outcomeOf(b, crashing('shop', 'checkout-7d9f8b6c5-x2x9k')), 'paused');
    assert.equal(await b.store.peek('crashloop:shop/checkout'), null, 'no cooldown claimed');
    assert.equal(await outcomeOf(b, crashing('cart', 'cart-0')), 'submitted', 'another namespace acts');
    b.clock.now += HOUR;
    assert.equal(await outcomeOf(b, crashing('shop', 'checkout-0')), 'submitted', 'the pause has ended');
  });

  it('ends on the other replica at once when one removes it', async () => {
    const [a, b] = await twoReplicas();
    const pause = await addPause(a, SHOP);
    await untilCopy(b.copy, (pauses) => pauses.some((p) => p.id === pause.id), 'the pause added on a');
    assert.equal(await outcomeOf(b, crashing('shop', 'checkout-0')), 'paused');
    const removed = await a.app.inject({ method: 'DELETE', url: `/v1/pauses/${pause.id}` });
    assert.equal(removed.statusCode, 200);
    await untilCopy(b.copy, (pauses) => pauses.length === 0, 'the pause removed on a to be gone');
    assert.equal(await outcomeOf(b, crashing('shop', 'checkout-0')), 'submitted');
    assert.deepEqual((await b.app.inject({ method: 'GET', url: '/v1/pauses' })).json(), { pauses: [] });
  });

  it('outlives a Redis restarted empty: the replicas write it back from their copies', async () => {
    assert.ok(redis);
    const [a, b] = await twoReplicas();
    const pause = await addPause(a, SHOP);
    const removed = await addPause(a, { ...SHOP, namespace: 'cart' });
    assert.equal((await a.app.inject({ method: 'DELETE', url: `/v1/pauses/${removed.id}` })).statusCode, 200);
    // Both copies as they are once every message was heard: a load begun before the removal
    // and answered after it would otherwise still hold the removed pause when Redis goes.
    await Promise.all([a.copy.reload(), b.copy.reload()]);
    assert.deepEqual(
      b.copy.current?.map((p) => p.id),
      [pause.id],
    );
    await redis.stop();
    await redis.start();
    // Each copy loads again when its subscription is back, which may come before the store's own
    // connection is: then the backstop's reload (every 5 s in a receiver) is the one that finds
    // the pause gone. Here it runs once both stores answer; the first copy writes the pause back.
    await eventually(
      () =>
        Promise.all([a.store.ping(), b.store.ping()]).then(
          () => true,
          () => undefined,
        ),
      'both stores to answer the restarted Redis',
    );
    for (const backstop of backstops) backstop();
    const listed = await eventually(async () => {
      const ids = (await b.store.listPauses().catch(() => [])).map((p) => p.id);
      return ids.length > 0 ? ids : undefined;
    }, 'the pause written back');
    assert.deepEqual(listed, [pause.id]);
    assert.ok(restores.length > 0, 'a copy says it wrote the pause back');
    assert.equal(await outcomeOf(b, crashing('shop', 'checkout-0')), 'paused');
    assert.equal(await outcomeOf(a, crashing('shop', 'checkout-0')), 'paused');
  });

  it('pauses one rule only: the other rules still act on the other replica', async () => {
    const [a, b] = await twoReplicas();
    const pause = await addPause(a, { ...SHOP, rule: 'crashloop' });
    await untilCopy(b.copy, (pauses) => pauses.some((p) => p.id === pause.id), 'the pause added on a');
    assert.equal(await outcomeOf(b, crashing('shop', 'checkout-0')), 'paused');
    assert.equal(await outcomeOf(b, databaseDown('shop', 'db-0')), 'submitted');
  });
});

describe('the pauses in Redis', () => {
  it('are one hash whose TTL is the latest expiry, expired ones dropped by the next write', async () => {
    assert.ok(redis);
    const keyPrefix = uniquePrefix();
    const clock = { now: START };
    const store = storeOf(keyPrefix, clock);
    const raw = new Redis(redis.url);
    closing.push(store, { close: async () => raw.disconnect() });
    await store.addPause(pauseOf('p-brief', 60_000));
    await store.addPause(pauseOf('p-long', 2 * HOUR));
    const key = `${keyPrefix}pauses`;
    assert.deepEqual((await raw.hkeys(key)).sort(), ['p-brief', 'p-long']);
    const ttl = await raw.pttl(key);
    assert.ok(ttl > 2 * HOUR - 60_000 && ttl <= 2 * HOUR, `PTTL ${ttl}`);
    clock.now += 60_000;
    await store.addPause(pauseOf('p-short', HOUR));
    assert.deepEqual((await raw.hkeys(key)).sort(), ['p-long', 'p-short'], 'the expired one is dropped');
    assert.ok(await store.removePause('p-long'));
    assert.deepEqual(await store.listPauses(), [pauseOf('p-short', HOUR)]);
    const kept = await raw.pttl(key);
    assert.ok(kept > HOUR, `PTTL ${kept}: the removal is remembered until the pause would have ended`);
    clock.now += 2 * HOUR;
    await store.addPause(pauseOf('p-next', 4 * HOUR));
    assert.deepEqual(await raw.hkeys(key), ['p-next'], 'and then forgotten');
  });
});
