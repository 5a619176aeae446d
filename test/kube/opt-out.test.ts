/**
 * The opt-out cache (SPEC §11) against the fake Kubernetes API, through the project's own HTTP
 * client: which object it names, how old an answer may be (an injected clock, no sleeps), how few
 * requests a storm costs, and that an object it cannot read is never taken as "not opted out".
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import pino from 'pino';
import { clusterOptOuts } from '../../src/kube/clusters.js';
import type { KubeRequest } from '../../src/kube/http.js';
import { loadKubeConfig } from '../../src/kube/kubeconfig.js';
import { OPT_OUT_TTL_MS, OptOutCache, type OptOutCacheOptions, type OptOuts } from '../../src/kube/opt-out.js';
import { type FakeKube, startFakeKube } from '../support/fake-kube.js';
import { writeKubeconfig } from '../support/kubeconfig.js';

const OPT_OUT = { 'kube-sentinel.io/remediation': 'disabled' };
const NAMESPACE = { kind: 'Namespace', name: 'shop' } as const;
const CHECKOUT = { kind: 'Deployment', namespace: 'shop', name: 'checkout' } as const;
const NAMESPACE_PATH = '/api/v1/namespaces/shop';
const CHECKOUT_PATH = '/apis/apps/v1/namespaces/shop/deployments/checkout';
/** An alert about a pod of Deployment checkout. */
const TARGET = { namespace: 'shop', workload: { name: 'checkout', kinds: ['Deployment'] as const } };

describe('opt-out annotations, read from the cluster', () => {
  let kube: FakeKube;
  let request: KubeRequest;
  let clock: { now: number };
  let lines: string[];

  before(async () => {
    kube = await startFakeKube({ token: 'k' });
    const dir = mkdtempSync(join(tmpdir(), 'ks-opt-out-'));
    ({ request } = await loadKubeConfig({ kind: 'file', path: writeKubeconfig(dir, kube.url, 'k') }));
  });
  after(() => kube.close());
  beforeEach(() => {
    kube.reset();
    kube.putObject(NAMESPACE);
    kube.putObject(CHECKOUT);
    clock = { now: Date.parse('2026-11-26T12:00:00Z') };
    lines = [];
  });

  const cache = (options: Partial<OptOutCacheOptions> = {}) =>
    new OptOutCache({
      request,
      logger: pino({ level: 'warn' }, { write: (line: string) => lines.push(line) > 0 }),
      timeoutMs: 5000,
      now: () => clock.now,
      ...options,
    });
  const logs = () => lines.map((line) => JSON.parse(line) as Record<string, unknown>);

  it('remediates a target whose Namespace and workload are not annotated, or do not exist (404)', async () => {
    const optOuts = cache();
    assert.deepEqual(await optOuts.check(TARGET), { kind: 'remediate' });
    assert.deepEqual(await optOuts.check({ namespace: 'cart', workload: { name: 'basket', kinds: ['StatefulSet'] } }), {
      kind: 'remediate',
    });
    assert.equal(kube.requestsTo('/api/v1/namespaces/cart'), 1);
    assert.equal(kube.requestsTo('/apis/apps/v1/namespaces/cart/statefulsets/basket'), 1);
  });

  it('names the Namespace that opted out, before a workload that did too', async () => {
    kube.annotate(NAMESPACE, OPT_OUT);
    kube.annotate(CHECKOUT, OPT_OUT);
    assert.deepEqual(await cache().check(TARGET), { kind: 'opted_out', object: 'Namespace shop' });
  });

  it('names the workload that opted out, as the kind it was found as', async () => {
    kube.putObject({ kind: 'DaemonSet', namespace: 'shop', name: 'web' }, OPT_OUT);
    const web = { namespace: 'shop', workload: { name: 'web', kinds: ['StatefulSet', 'DaemonSet'] as const } };
    assert.deepEqual(await cache().check(web), { kind: 'opted_out', object: 'DaemonSet shop/web' });
    assert.equal(kube.requestsTo('/apis/apps/v1/namespaces/shop/statefulsets/web'), 1, 'both kinds asked');
  });

  it('looks at the Namespace alone when the alert names no workload', async () => {
    kube.annotate(NAMESPACE, OPT_OUT);
    assert.deepEqual(await cache().check({ namespace: 'shop' }), { kind: 'opted_out', object: 'Namespace shop' });
    assert.equal(kube.requests.length, 1);
  });

  it('answers from what it read for 30 s: an annotation made meanwhile counts once that answer is 30 s old', async () => {
    const optOuts = cache();
    assert.deepEqual(await optOuts.check(TARGET), { kind: 'remediate' });
    kube.annotate(CHECKOUT, OPT_OUT);
    clock.now += OPT_OUT_TTL_MS - 1;
    assert.deepEqual(await optOuts.check(TARGET), { kind: 'remediate' });
    clock.now += 1;
    assert.deepEqual(await optOuts.check(TARGET), { kind: 'opted_out', object: 'Deployment shop/checkout' });

    kube.annotate(CHECKOUT, { 'kube-sentinel.io/remediation': null });
    clock.now += OPT_OUT_TTL_MS - 1;
    assert.equal((await optOuts.check(TARGET)).kind, 'opted_out');
    clock.now += 1;
    assert.deepEqual(await optOuts.check(TARGET), { kind: 'remediate' });
    assert.equal(kube.requestsTo(CHECKOUT_PATH), 3);
  });

  it('reads each object once for a thousand lookups at once, and not again within 30 s', async () => {
    kube.annotate(CHECKOUT, OPT_OUT);
    const optOuts = cache();
    const answers = await Promise.all(Array.from({ length: 1000 }, () => optOuts.check(TARGET)));
    assert.ok(answers.every((answer) => answer.kind === 'opted_out'));
    for (let i = 0; i < 1000; i++) await optOuts.check(TARGET);
    assert.equal(kube.requestsTo(NAMESPACE_PATH), 1);
    assert.equal(kube.requestsTo(CHECKOUT_PATH), 1);
  });

  for (const [what, failure] of [
    ['403 Forbidden', { status: 403 }],
    ['500 InternalError', { status: 500 }],
    ['503 with Retry-After', { status: 503, retryAfterSeconds: 7 }],
  ] as const) {
    it(`fails closed on ${what}: unknown, naming the object and why, logged; asked again a second later`, async () => {
      kube.failReads('Deployment', failure);
      const optOuts = cache();
      const answer = await optOuts.check(TARGET);
      assert.equal(answer.kind, 'unknown');
      assert.equal(answer.kind === 'unknown' && answer.object, 'Deployment shop/checkout');
      assert.match(answer.kind === 'unknown' ? answer.reason : '', new RegExp(`^${failure.status} `));
      if (failure.status === 503) assert.equal(answer.kind === 'unknown' && answer.retryAfterSeconds, 7);
      assert.equal(logs().length, 1);
      assert.equal(logs()[0]?.object, 'Deployment shop/checkout');

      assert.equal((await optOuts.check(TARGET)).kind, 'unknown', 'the failure is kept briefly');
      assert.equal(kube.requestsTo(CHECKOUT_PATH), 1);
      kube.failReads('Deployment', undefined);
      clock.now += 1000;
      assert.deepEqual(await optOuts.check(TARGET), { kind: 'remediate' });
    });
  }

  it('fails closed when the API server refuses connections', async () => {
    // An API server of its own, never connected to: the refusal is not a pooled connection's reset.
    const down = await startFakeKube();
    const dir = mkdtempSync(join(tmpdir(), 'ks-opt-out-down-'));
    const loaded = await loadKubeConfig({ kind: 'file', path: writeKubeconfig(dir, down.url) });
    await down.close();
    const answer = await cache({ request: loaded.request }).check(TARGET);
    assert.deepEqual(answer, { kind: 'unknown', object: 'Namespace shop', reason: 'connection: ECONNREFUSED' });
  });

  it('takes an opt-out found as enough, whatever else could not be read', async () => {
    kube.annotate(NAMESPACE, OPT_OUT);
    kube.failReads('Deployment', { status: 503 });
    assert.deepEqual(await cache().check(TARGET), { kind: 'opted_out', object: 'Namespace shop' });
  });

  it('ignores any other value of the annotation, and logs it once while it is remembered', async () => {
    kube.annotate(CHECKOUT, { 'kube-sentinel.io/remediation': 'Disabled' });
    const optOuts = cache();
    assert.deepEqual(await optOuts.check(TARGET), { kind: 'remediate' });
    clock.now += OPT_OUT_TTL_MS;
    assert.deepEqual(await optOuts.check(TARGET), { kind: 'remediate' });
    assert.equal(kube.requestsTo(CHECKOUT_PATH), 2);
    assert.deepEqual(
      logs().map((line) => [line.object, line.value]),
      [['Deployment shop/checkout', 'Disabled']],
    );
    assert.match(String(logs()[0]?.msg), /only "disabled" opts out/);
  });

  it('remembers at most maxObjects, dropping the least recently used first', async () => {
    const optOuts = cache({ maxObjects: 2 });
    const namespace = (name: string) => ({ namespace: name });
    await optOuts.check(namespace('a'));
    await optOuts.check(namespace('b'));
    await optOuts.check(namespace('a'));
    await optOuts.check(namespace('c'));
    assert.equal(optOuts.size, 2);
    await optOuts.check(namespace('a'));
    await optOuts.check(namespace('b'));
    assert.equal(kube.requestsTo('/api/v1/namespaces/a'), 1, 'a was used more recently than b');
    assert.equal(kube.requestsTo('/api/v1/namespaces/b'), 2);
  });

  it('asks nothing about a name no object can have', async () => {
    const optOuts = cache();
    assert.deepEqual(await optOuts.check({ namespace: 'Shop/../x' }), { kind: 'remediate' });
    assert.deepEqual(await optOuts.check({ namespace: 'shop', workload: { name: 'a/b', kinds: ['Deployment'] } }), {
      kind: 'remediate',
    });
    assert.deepEqual(
      kube.requests.map((r) => r.path),
      [NAMESPACE_PATH],
    );
  });
});

describe('opt-outs with --clusters', () => {
  it('asks the cluster the alert was routed to, and no other', async () => {
    const asked: string[] = [];
    const cluster = (name: string, kind: 'remediate' | 'opted_out'): OptOuts => ({
      async check(target) {
        asked.push(`${name}:${target.namespace}`);
        return kind === 'remediate' ? { kind } : { kind, object: `Namespace ${target.namespace}` };
      },
    });
    const optOuts = clusterOptOuts(
      new Map([
        ['east', cluster('east', 'remediate')],
        ['west', cluster('west', 'opted_out')],
      ]),
    );
    assert.deepEqual(await optOuts.check({ namespace: 'shop' }, 'west'), {
      kind: 'opted_out',
      object: 'Namespace shop',
    });
    assert.deepEqual(await optOuts.check({ namespace: 'shop' }, 'east'), { kind: 'remediate' });
    assert.deepEqual(asked, ['west:shop', 'east:shop']);
    await assert.rejects(optOuts.check({ namespace: 'shop' }, 'north'), /cluster "north" is not configured/);
  });
});

const TIMEOUT_MS = 10_000;

describe('the opt-out cache during an API server outage', () => {
  it('answers the alerts after a timed-out read from that failure, without waiting for another read', async () => {
    const clock = { now: Date.parse('2026-11-26T12:00:00Z') };
    let reads = 0;
    // An API server that does not answer: each read fails when its timeout has passed.
    const request: KubeRequest = async () => {
      reads++;
      clock.now += TIMEOUT_MS;
      throw new DOMException('The operation was aborted due to timeout', 'TimeoutError');
    };
    const cache = new OptOutCache({
      request,
      logger: pino({ level: 'silent' }),
      timeoutMs: TIMEOUT_MS,
      now: () => clock.now,
    });
    const target = { namespace: 'shop' };
    assert.equal((await cache.check(target)).kind, 'unknown');
    // The next group of the storm, a moment after the first was answered.
    assert.equal((await cache.check(target)).kind, 'unknown');
    assert.equal(reads, 1, 'the second group waited for a read of its own, another whole timeout');
  });
});
