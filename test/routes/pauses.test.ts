import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { OptOutAnswer, OptOuts } from '../../src/kube/opt-out.js';
import type { Pause } from '../../src/pause.js';
import { LocalPauses } from '../../src/pipeline/local-pauses.js';
import { MAX_PAUSES } from '../../src/routes/pauses.js';
import { StoreUnavailableError } from '../../src/stores/cooldown-store.js';
import { MemoryCooldownStore } from '../../src/stores/memory.js';
import { firing, scriptedSubmitter, TEST_START, type TestApp, testApp, webhook } from '../support/app.js';

const HOUR = 3600_000;
const SHOP_FOR_AN_HOUR = { namespace: 'shop', duration: '1h', reason: 'deploy', createdBy: 'alice' };

type App = TestApp['app'];

async function addPause(app: App, body: Record<string, unknown>, headers: Record<string, string> = {}) {
  return app.inject({ method: 'POST', url: '/v1/pauses', payload: body, headers });
}

async function added(app: App, body: Record<string, unknown>): Promise<Pause> {
  const res = await addPause(app, body);
  assert.equal(res.statusCode, 201, res.body);
  return res.json() as Pause;
}

const crashing = (namespace: string, pod: string) =>
  firing({ alertname: 'PodCrash', namespace, pod }, { description: 'CrashLoopBackOff' });
const databaseDown = (namespace: string, pod: string) =>
  firing({ alertname: 'DbDown', namespace, pod, severity: 'critical' }, { description: 'database connection failed' });

async function decide(app: App, alert: ReturnType<typeof firing>, url = '/webhook/alertmanager') {
  const res = await app.inject({ method: 'POST', url, payload: webhook([alert]) });
  return { http: res.statusCode, ...(res.json().decisions[0] as { outcome: string; reason?: string }) };
}

describe('POST /v1/pauses', () => {
  it('answers 201 with the pause: its selectors, who, why, and when it ends by the receiver’s clock', async () => {
    const { app } = await testApp();
    const pause = await added(app, { ...SHOP_FOR_AN_HOUR, rule: 'crashloop', workload: 'checkout' });
    assert.match(pause.id, /^[0-9a-f-]{36}$/);
    assert.deepEqual(
      { ...pause, id: 'x' },
      {
        id: 'x',
        namespace: 'shop',
        rule: 'crashloop',
        workload: 'checkout',
        reason: 'deploy',
        createdBy: 'alice',
        createdAt: new Date(TEST_START).toISOString(),
        expiresAt: new Date(TEST_START + HOUR).toISOString(),
      },
    );
    const until = new Date(TEST_START + 2 * HOUR).toISOString();
    const { duration: _, ...withoutDuration } = SHOP_FOR_AN_HOUR;
    assert.equal((await added(app, { ...withoutDuration, until })).expiresAt, until);
  });

  it('refuses with 400 naming the field, and stores nothing', async () => {
    const { app } = await testApp();
    const { duration: _, ...noEnd } = SHOP_FOR_AN_HOUR;
    const inDays = (days: number) => new Date(TEST_START + days * 24 * HOUR).toISOString();
    const cases: [what: string, body: Record<string, unknown>, field: string, message: RegExp][] = [
      [
        'a namespace that is no DNS-1123 label',
        { ...SHOP_FOR_AN_HOUR, namespace: 'Shop' },
        'body.namespace',
        /DNS-1123 label/,
      ],
      [
        'a workload that is no Kubernetes name',
        { ...SHOP_FOR_AN_HOUR, workload: 'check out' },
        'body.workload',
        /DNS-1123/,
      ],
      [
        'a rule not loaded',
        { ...SHOP_FOR_AN_HOUR, rule: 'crashlop' },
        'body.rule',
        /names no loaded rule \(rules: .*crashloop/,
      ],
      ['a cluster without --clusters', { ...SHOP_FOR_AN_HOUR, cluster: 'eu-1' }, 'body.cluster', /no --clusters/],
      ['neither duration nor until', noEnd, 'body.duration', /or body.until is required/],
      [
        'both duration and until',
        { ...SHOP_FOR_AN_HOUR, until: inDays(1) },
        'body.until',
        /not be given with duration/,
      ],
      ['a duration that is none', { ...SHOP_FOR_AN_HOUR, duration: 'soon' }, 'body.duration', /such as 30m/],
      ['a zero duration', { ...SHOP_FOR_AN_HOUR, duration: '0s' }, 'body.duration', /at least 1s/],
      ['a duration under a second', { ...SHOP_FOR_AN_HOUR, duration: '1ms' }, 'body.duration', /at least 1s/],
      [
        'a duration past 30 days',
        { ...SHOP_FOR_AN_HOUR, duration: '721h' },
        'body.duration',
        /at most 720h \(30 days\)/,
      ],
      ['an until in the past', { ...noEnd, until: inDays(-1) }, 'body.until', /in the future/],
      ['an until past 30 days', { ...noEnd, until: inDays(31) }, 'body.until', /at most 720h/],
      ['an until that is no date-time', { ...noEnd, until: 'tomorrow' }, 'body.until', /date-time/],
      ['no reason', { ...SHOP_FOR_AN_HOUR, reason: undefined }, 'body.reason', /required/],
      ['a blank reason', { ...SHOP_FOR_AN_HOUR, reason: '  ' }, 'body.reason', /blank/],
      ['a reason too long', { ...SHOP_FOR_AN_HOUR, reason: 'x'.repeat(257) }, 'body.reason', /256/],
      ['an empty createdBy', { ...SHOP_FOR_AN_HOUR, createdBy: '' }, 'body.createdBy', /length/],
      ['a namespace that is no string', { ...SHOP_FOR_AN_HOUR, namespace: 5 }, 'body.namespace', /string/],
      [
        'a misspelt selector (it would pause everything)',
        { ...noEnd, duration: '1h', namspace: 'shop' },
        'body.namspace',
        /./,
      ],
    ];
    for (const [what, body, field, message] of cases) {
      const res = await addPause(app, JSON.parse(JSON.stringify(body)));
      assert.equal(res.statusCode, 400, `${what}: ${res.body}`);
      const error = res.json() as { error: string; field: string; message: string };
      assert.deepEqual([error.error, error.field], ['invalid_request', field], what);
      assert.match(error.message, message, what);
      assert.ok(error.message.startsWith(field), `${what}: the message starts with the field: ${error.message}`);
    }
    for (const payload of ['[]', 'null', '"shop"']) {
      const res = await app.inject({
        method: 'POST',
        url: '/v1/pauses',
        payload,
        headers: { 'content-type': 'application/json' },
      });
      assert.equal(res.statusCode, 400, `${payload}: ${res.body}`);
    }
    assert.deepEqual((await app.inject({ method: 'GET', url: '/v1/pauses' })).json(), { pauses: [] });
  });

  it('with --clusters, takes a configured cluster and refuses another, naming the clusters', async () => {
    const clusters = { label: 'cluster', defaultCluster: 'eu-1', names: ['eu-1', 'us-1'] };
    const { app } = await testApp({ clusters });
    assert.equal((await added(app, { ...SHOP_FOR_AN_HOUR, cluster: 'us-1' })).cluster, 'us-1');
    const refused = await addPause(app, { ...SHOP_FOR_AN_HOUR, cluster: 'ap-1' });
    assert.equal(refused.statusCode, 400);
    assert.equal(refused.json().field, 'body.cluster');
    assert.match(refused.json().message, /clusters: eu-1, us-1/);
  });

  it('needs credentials, as every route of the API does', async () => {
    const { app } = await testApp({ config: { authToken: 's3cret' } });
    assert.equal((await addPause(app, SHOP_FOR_AN_HOUR)).statusCode, 401);
    assert.equal((await app.inject({ method: 'GET', url: '/v1/pauses' })).statusCode, 401);
    assert.equal((await app.inject({ method: 'DELETE', url: '/v1/pauses/p-1' })).statusCode, 401);
    const authorized = { authorization: 'Bearer s3cret' };
    assert.equal((await addPause(app, SHOP_FOR_AN_HOUR, authorized)).statusCode, 201);
  });
});

describe('POST /v1/pauses past the limit', () => {
  it('refuses one more than MAX_PAUSES in force with 409, naming the limit, and stores nothing', async () => {
    const { app, store } = await testApp();
    const body = { namespace: 'shop', duration: '1h', reason: 'deploy', createdBy: 'alice' };
    for (let i = 0; i < MAX_PAUSES; i++) {
      await store.addPause({
        id: `p-${i}`,
        namespace: 'shop',
        reason: 'r',
        createdBy: 'a',
        createdAt: new Date(TEST_START).toISOString(),
        expiresAt: new Date(TEST_START + 3600_000).toISOString(),
      });
    }
    const refused = await app.inject({ method: 'POST', url: '/v1/pauses', payload: body });
    assert.equal(refused.statusCode, 409, refused.body);
    assert.match(refused.json().message, /1000 pauses are in force, the most there may be \(1000\)/);
    assert.equal((await store.listPauses()).length, MAX_PAUSES);
    await store.removePause('p-0');
    assert.equal((await app.inject({ method: 'POST', url: '/v1/pauses', payload: body })).statusCode, 201);
  });
});

describe('GET /v1/pauses', () => {
  it('lists the pauses in force, the one that ends first first, and no longer one that has ended', async () => {
    const { app, clock } = await testApp();
    const late = await added(app, { ...SHOP_FOR_AN_HOUR, duration: '3h' });
    const soon = await added(app, { ...SHOP_FOR_AN_HOUR, duration: '30m' });
    const mid = await added(app, { ...SHOP_FOR_AN_HOUR, namespace: 'cart' });
    const list = async () => (await app.inject({ method: 'GET', url: '/v1/pauses' })).json().pauses as Pause[];
    assert.deepEqual(await list(), [soon, mid, late]);
    clock.now += 30 * 60_000;
    assert.deepEqual(await list(), [mid, late]);
  });
});

describe('DELETE /v1/pauses/{id}', () => {
  it('answers the pause it removed, and 404 for an id not in force', async () => {
    const { app } = await testApp();
    const pause = await added(app, SHOP_FOR_AN_HOUR);
    const removed = await app.inject({ method: 'DELETE', url: `/v1/pauses/${pause.id}` });
    assert.equal(removed.statusCode, 200);
    assert.deepEqual(removed.json(), pause);
    for (const id of [pause.id, 'never-added']) {
      const missing = await app.inject({ method: 'DELETE', url: `/v1/pauses/${id}` });
      assert.equal(missing.statusCode, 404);
      assert.equal(missing.json().error, 'not_found');
      assert.match(missing.json().message, new RegExp(id));
    }
  });
});

describe('a paused alert', () => {
  it('is paused, naming the pause, and claims no cooldown; once the pause ends, the next alert acts', async () => {
    const { app, store, clock } = await testApp({ submitter: scriptedSubmitter() });
    const pause = await added(app, SHOP_FOR_AN_HOUR);
    const paused = await decide(app, crashing('shop', 'checkout-7d9f8b6c5-x2x9k'));
    assert.deepEqual(
      [paused.http, paused.outcome, paused.reason],
      [200, 'paused', `paused until ${pause.expiresAt} by alice: deploy (pause ${pause.id})`],
    );
    assert.equal(await store.peek('crashloop:shop/checkout'), null, 'no cooldown claimed');
    assert.equal((await decide(app, crashing('shop', 'checkout-0'), '/v1/explain')).outcome, 'paused');
    assert.equal((await decide(app, crashing('cart', 'cart-0'))).outcome, 'submitted', 'another namespace acts');
    clock.now += HOUR;
    assert.equal((await decide(app, crashing('shop', 'checkout-0'))).outcome, 'submitted', 'the pause is over');
  });

  it('acts again at once when its pause is removed', async () => {
    const { app } = await testApp({ submitter: scriptedSubmitter() });
    const pause = await added(app, SHOP_FOR_AN_HOUR);
    assert.equal((await decide(app, crashing('shop', 'checkout-0'))).outcome, 'paused');
    assert.equal((await app.inject({ method: 'DELETE', url: `/v1/pauses/${pause.id}` })).statusCode, 200);
    assert.equal((await decide(app, crashing('shop', 'checkout-0'))).outcome, 'submitted');
  });

  it('is paused by a pause of its rule only: the other rules act on the same namespace', async () => {
    const { app } = await testApp({ submitter: scriptedSubmitter() });
    await added(app, { ...SHOP_FOR_AN_HOUR, rule: 'crashloop' });
    assert.equal((await decide(app, crashing('shop', 'checkout-0'))).outcome, 'paused');
    assert.equal((await decide(app, databaseDown('shop', 'db-0'))).outcome, 'submitted');
  });

  it('is paused by a pause of its workload, whichever pod of it fires, and no other workload is', async () => {
    const { app } = await testApp({ submitter: scriptedSubmitter() });
    await added(app, { ...SHOP_FOR_AN_HOUR, workload: 'checkout' });
    assert.equal((await decide(app, crashing('shop', 'checkout-7d9f8b6c5-x2x9k'))).outcome, 'paused');
    assert.equal((await decide(app, crashing('shop', 'checkout-6c4b9d7f8-q7w2z'))).outcome, 'paused');
    assert.equal((await decide(app, crashing('shop', 'cart-5c8d7f9b4-x7kq2'))).outcome, 'submitted');
  });

  it('is paused by a pause without selectors, whatever its namespace or rule', async () => {
    const { app } = await testApp();
    const { namespace: _, ...everything } = SHOP_FOR_AN_HOUR;
    await added(app, everything);
    assert.equal((await decide(app, crashing('cart', 'cart-0'))).outcome, 'paused');
    assert.equal((await decide(app, databaseDown('billing', 'db-0'))).outcome, 'paused');
  });
});

/** A memory store whose pauses cannot be read, as when Redis is away. */
class PausesUnreadable extends MemoryCooldownStore {
  override async listPauses(): Promise<Pause[]> {
    throw new StoreUnavailableError('cooldown store (redis at 127.0.0.1:1) listPauses failed: connection refused');
  }
}

describe('an alert while the pauses were never loaded', () => {
  const unreadable = () => {
    const clock = { now: TEST_START };
    const store = new PausesUnreadable({ now: () => clock.now });
    const pauses = new LocalPauses({ store, now: () => clock.now, every: () => () => {} });
    return { clock, store, pauses };
  };

  it('is retry (503), as when the cooldown store is down, and claims nothing', async () => {
    const { clock, store, pauses } = unreadable();
    const { app } = await testApp({ clock, store, pauses, submitter: scriptedSubmitter() });
    const decided = await decide(app, crashing('shop', 'checkout-0'));
    assert.deepEqual([decided.http, decided.outcome, decided.reason], [503, 'retry', 'cooldown store unavailable']);
    assert.equal(await store.peek('crashloop:shop/checkout'), null);
  });

  it('acts without pauses with --cooldown-store-failure=open', async () => {
    const { clock, store, pauses } = unreadable();
    const { app } = await testApp({ clock, store, pauses, args: ['--cooldown-store-failure=open'] });
    assert.equal((await decide(app, crashing('shop', 'checkout-0'))).outcome, 'dry_run');
  });
});

/** Opt-outs that answer `remediate` only when the test says so, and say when they were asked. */
function heldOptOuts() {
  let entered: () => void = () => {};
  let release: () => void = () => {};
  const asked = new Promise<void>((resolve) => {
    entered = resolve;
  });
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  const optOuts: OptOuts = {
    async check(): Promise<OptOutAnswer> {
      entered();
      await released;
      return { kind: 'remediate' };
    },
  };
  return { optOuts, asked, release };
}

describe('a pause added while an alert it covers is being decided', () => {
  it('keeps that alert from being submitted after the pause was answered 201', async () => {
    const held = heldOptOuts();
    const submitter = scriptedSubmitter();
    let creates = 0;
    const counting = {
      ...submitter,
      async create(...args: Parameters<typeof submitter.create>) {
        creates++;
        return submitter.create(...args);
      },
    };
    const { app, store } = await testApp({ submitter: counting, optOuts: () => held.optOuts });
    const alert = firing(
      { alertname: 'PodCrash', namespace: 'shop', pod: 'checkout-7d9f8b6c5-bcdfg' },
      { description: 'CrashLoopBackOff' },
    );
    const deciding = app.inject({ method: 'POST', url: '/webhook/alertmanager', payload: webhook([alert]) });
    await held.asked;
    const paused = await app.inject({
      method: 'POST',
      url: '/v1/pauses',
      payload: { namespace: 'shop', duration: '1h', reason: 'deploy', createdBy: 'alice' },
    });
    assert.equal(paused.statusCode, 201, paused.body);
    held.release();
    const decision = (await deciding).json().decisions[0] as { outcome: string };
    assert.equal(creates, 0, 'a Workflow was created in shop after its pause was answered 201');
    assert.equal(decision.outcome, 'paused');
    assert.equal(await store.peek('crashloop:shop/checkout'), null, 'its claim was given back');
  });
});

describe('a pause as a person writes it', () => {
  const crashingPod = (pod: string) =>
    firing({ alertname: 'PodCrash', namespace: 'shop', pod }, { description: 'CrashLoopBackOff' });
  const outcome = async (app: TestApp['app'], pod: string) =>
    (
      (await app.inject({ method: 'POST', url: '/webhook/alertmanager', payload: webhook([crashingPod(pod)]) })).json()
        .decisions[0] as { outcome: string }
    ).outcome;

  it('covers the one pod whose exact name, as kubectl get pods shows it, stands as its workload', async () => {
    const { app } = await testApp({ submitter: scriptedSubmitter() });
    const pod = 'checkout-7d9f8b6c5d-x2x9z';
    const res = await app.inject({
      method: 'POST',
      url: '/v1/pauses',
      payload: { workload: pod, duration: '1h', reason: 'debugging this pod', createdBy: 'alice' },
    });
    assert.equal(res.statusCode, 201, res.body);
    assert.equal(await outcome(app, pod), 'paused');
    assert.equal(await outcome(app, 'checkout-7d9f8b6c5d-bcdfg'), 'submitted', 'its sibling is not paused');
  });

  it('refuses a reason or createdBy holding control characters, which kube-sentinel pauses would print raw', async () => {
    const { app } = await testApp();
    const cases: [field: 'reason' | 'createdBy', value: string][] = [
      ['reason', 'deploy\u001b[2J\u001b]0;owned\u0007'],
      ['reason', 'deploy\nffffffff-0000-0000-0000-000000000000  everything  2026-12-31T00:00:00.000Z  root  fake row'],
      ['createdBy', 'alice\u0000'],
      ['createdBy', 'alice\u009b'],
    ];
    for (const [field, value] of cases) {
      const body = { namespace: 'shop', duration: '1h', reason: 'deploy', createdBy: 'alice', [field]: value };
      const res = await app.inject({ method: 'POST', url: '/v1/pauses', payload: body });
      assert.equal(res.statusCode, 400, `${JSON.stringify(value)}: ${res.body}`);
      assert.equal(res.json().field, `body.${field}`);
      assert.match(res.json().message, /control characters/);
    }
    const unicode = { namespace: 'shop', duration: '1h', reason: 'déploiement — 部署 🚀', createdBy: 'zoë' };
    assert.equal((await app.inject({ method: 'POST', url: '/v1/pauses', payload: unicode })).statusCode, 201);
  });
});
