/**
 * /readyz with a real redis-server that is down or refuses the password: the reason is the real
 * cause (what ioredis last reported about the connection), said once; the address only for a
 * request that carries the API's credentials.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { StoreUnavailableError } from '../../src/stores/cooldown-store.js';
import { RedisCooldownStore } from '../../src/stores/redis.js';
import { type TestApp, testApp } from '../support/app.js';
import { eventually } from '../support/processes.js';
import { type RedisServer, startRedis } from '../support/redis-server.js';

const TOKEN = 's3cret';

interface Readiness {
  status: number;
  reasons: string[];
}

async function readyz(app: TestApp['app'], authorization?: string): Promise<Readiness> {
  const res = await app.inject({
    method: 'GET',
    url: '/readyz',
    ...(authorization ? { headers: { authorization } } : {}),
  });
  return { status: res.statusCode, reasons: (res.json() as { reasons?: string[] }).reasons ?? [] };
}

/** Reconnecting is real: polls until the unauthenticated view gives a reason that matches. */
function untilReason(app: TestApp['app'], pattern: RegExp): Promise<Readiness> {
  return eventually(async () => {
    const ready = await readyz(app);
    return ready.reasons.some((reason) => pattern.test(reason)) ? ready : undefined;
  }, `/readyz to give a reason matching ${pattern}`);
}

const occurrences = (text: string, part: string): number => text.split(part).length - 1;

describe('/readyz when Redis is down', () => {
  let server: RedisServer;
  let store: RedisCooldownStore;
  let app: TestApp['app'];
  before(async () => {
    server = await startRedis();
    store = new RedisCooldownStore({ url: server.url, commandTimeoutMs: 500 });
    ({ app } = await testApp({ store, config: { authToken: TOKEN } }));
  });
  after(async () => {
    await store.close();
    await server.stop();
  });

  it('says "connection refused" once; the address only with the API credentials', async () => {
    assert.equal((await readyz(app)).status, 200);
    await server.stop();
    const open = await untilReason(app, /connection refused/);
    assert.equal(open.status, 503);
    assert.deepEqual(open.reasons, ['cooldown store (redis) unavailable: connection refused']);

    const address = `127.0.0.1:${server.port}`;
    const authenticated = await readyz(app, `Bearer ${TOKEN}`);
    assert.equal(authenticated.status, 503);
    assert.equal(authenticated.reasons.length, 1, authenticated.reasons.join('\n'));
    const reason = authenticated.reasons[0]!;
    assert.ok(reason.includes(address), reason);
    assert.match(reason, /connection refused/);
    assert.match(reason, /ECONNREFUSED/, 'the error ioredis reported, as it said it');
    assert.equal(occurrences(reason, 'cooldown store'), 1, reason);
    assert.doesNotMatch(reason, /Stream isn't writeable/);

    const wrong = await readyz(app, 'Bearer wrong');
    assert.ok(!wrong.reasons.join().includes(String(server.port)), 'wrong credentials get the open view');
  });

  it('the store says the same to its callers: the cause, and where', async () => {
    await assert.rejects(store.ping(), (err: unknown) => {
      assert.ok(err instanceof StoreUnavailableError);
      assert.equal(err.reason, 'connection refused');
      assert.equal(err.address, `127.0.0.1:${server.port}`);
      assert.match(err.message, /ECONNREFUSED/);
      assert.equal(occurrences(err.message, 'cooldown store'), 1, err.message);
      return true;
    });
  });
});

describe('/readyz when Redis refuses the password', () => {
  let server: RedisServer;
  let store: RedisCooldownStore;
  before(async () => {
    server = await startRedis({ password: 'right-password' });
  });
  after(async () => {
    await store?.close();
    await server.stop();
  });

  it('says authentication failed, without the password, the address only with the API credentials', async () => {
    store = new RedisCooldownStore({ url: `redis://:wrong-password@127.0.0.1:${server.port}`, commandTimeoutMs: 500 });
    const { app } = await testApp({ store, config: { authToken: TOKEN } });
    const open = await untilReason(app, /auth/);
    assert.deepEqual(open.reasons, ['cooldown store (redis) unavailable: authentication failed']);
    const authenticated = await readyz(app, `Bearer ${TOKEN}`);
    const reason = authenticated.reasons.join('\n');
    assert.ok(reason.includes(`127.0.0.1:${server.port}`), reason);
    assert.match(reason, /authentication failed/);
    assert.ok(!reason.includes('wrong-password'), 'the password is never shown');
  });
});
