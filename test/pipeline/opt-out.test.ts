/**
 * Opt-out by annotation (SPEC §11) through the receiver's routes: buildApp with the cluster
 * submitter and the opt-out cache, both talking HTTP to the fake Kubernetes API, on an injected
 * clock. Annotations made in the fake turn alerts into `excluded` within 30 s and back, a storm
 * costs a handful of reads, an unreadable object is `retry`, and nothing excluded holds a cooldown.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import pino from 'pino';
import { createKubeSubmitter, type WorkflowSubmitter } from '../../src/kube/client.js';
import type { KubeRequest } from '../../src/kube/http.js';
import { loadKubeConfig } from '../../src/kube/kubeconfig.js';
import { OPT_OUT_TTL_MS, OptOutCache } from '../../src/kube/opt-out.js';
import { firing, type TestApp, testApp, webhook } from '../support/app.js';
import { type FakeKube, startFakeKube } from '../support/fake-kube.js';
import { writeKubeconfig } from '../support/kubeconfig.js';

const OPT_OUT = { 'kube-sentinel.io/remediation': 'disabled' };
const REMOVE = { 'kube-sentinel.io/remediation': null };
const NAMESPACE = { kind: 'Namespace', name: 'shop' } as const;
const CHECKOUT = { kind: 'Deployment', namespace: 'shop', name: 'checkout' } as const;
const NAMESPACE_PATH = '/api/v1/namespaces/shop';
const CHECKOUT_PATH = '/apis/apps/v1/namespaces/shop/deployments/checkout';
const GENERATED = 'bcdfghjklmnpqrstvwxz2456789';

/** A crash-looping pod of Deployment shop/checkout (rule crashloop, cooldown 10m); `n` picks the pod. */
function crashLoop(n = 0) {
  let suffix = '';
  for (let rest = n, i = 0; i < 5; i++, rest = Math.floor(rest / GENERATED.length)) {
    suffix += GENERATED[rest % GENERATED.length];
  }
  return firing(
    { alertname: 'KubePodCrashLooping', namespace: 'shop', pod: `checkout-7d9f8b6c5-${suffix}` },
    { description: 'CrashLoopBackOff' },
  );
}

interface DecisionView {
  outcome: string;
  reason?: string;
}

describe('opt-out by annotation, through the receiver', () => {
  let kube: FakeKube;
  let request: KubeRequest;
  let submitter: WorkflowSubmitter;
  let test: TestApp;

  before(async () => {
    kube = await startFakeKube({ token: 'k' });
    const dir = mkdtempSync(join(tmpdir(), 'ks-opt-out-app-'));
    const source = { kind: 'file', path: writeKubeconfig(dir, kube.url, 'k') } as const;
    ({ request } = await loadKubeConfig(source));
    submitter = await createKubeSubmitter(source);
  });
  after(() => kube.close());
  beforeEach(async () => {
    kube.reset();
    kube.addWorkflowTemplate('argo', 'diagnose-pod');
    kube.putObject(NAMESPACE);
    kube.putObject(CHECKOUT);
    test = await testApp({
      submitter,
      optOuts: (now) => new OptOutCache({ request, logger: pino({ level: 'silent' }), timeoutMs: 5000, now }),
    });
  });

  const post = async (alerts: ReturnType<typeof crashLoop>[]) => {
    const res = await test.app.inject({ method: 'POST', url: '/webhook/alertmanager', payload: webhook(alerts) });
    return { status: res.statusCode, decisions: (res.json() as { decisions: DecisionView[] }).decisions };
  };
  const decide = async (alert = crashLoop()) => (await post([alert])).decisions[0];
  const cooldowns = async () => {
    const res = await test.app.inject({ method: 'GET', url: '/v1/cooldowns' });
    return (res.json() as { cooldowns: unknown[] }).cooldowns;
  };

  it('turns alerts about an annotated Namespace, then an annotated Deployment, into excluded within 30 s, naming it', async () => {
    assert.equal((await decide())?.outcome, 'submitted');
    kube.annotate(NAMESPACE, OPT_OUT);
    assert.equal((await decide())?.outcome, 'cooldown', 'the answer read before the annotation stands for 30 s');
    test.clock.now += OPT_OUT_TTL_MS;
    const namespaced = await decide();
    assert.equal(namespaced?.outcome, 'excluded');
    assert.equal(namespaced?.reason, 'Namespace shop has kube-sentinel.io/remediation: disabled');

    kube.annotate(NAMESPACE, REMOVE);
    kube.annotate(CHECKOUT, OPT_OUT);
    test.clock.now += OPT_OUT_TTL_MS;
    const excluded = await post([crashLoop()]);
    assert.equal(excluded.status, 200);
    assert.equal(excluded.decisions[0]?.outcome, 'excluded');
    assert.equal(excluded.decisions[0]?.reason, 'Deployment shop/checkout has kube-sentinel.io/remediation: disabled');
    assert.equal(kube.workflows.length, 1);
  });

  it('remediates again once the annotation is removed, within 30 s; excluded alerts held no cooldown', async () => {
    kube.annotate(CHECKOUT, OPT_OUT);
    assert.equal((await decide())?.outcome, 'excluded');
    assert.deepEqual(await cooldowns(), []);
    kube.annotate(CHECKOUT, REMOVE);
    test.clock.now += OPT_OUT_TTL_MS - 1;
    assert.equal((await decide())?.outcome, 'excluded');
    test.clock.now += 1;
    assert.equal((await decide())?.outcome, 'submitted');
    assert.equal(kube.workflows.length, 1);
  });

  it('reads each object once for 1,000 alerts about one annotated workload', async () => {
    kube.annotate(CHECKOUT, OPT_OUT);
    const storm = await post(Array.from({ length: 1000 }, (_, n) => crashLoop(n)));
    assert.equal(storm.status, 200);
    assert.equal(storm.decisions.length, 1000);
    assert.ok(storm.decisions.every((decision) => decision.outcome === 'excluded'));
    assert.equal(kube.requestsTo(NAMESPACE_PATH), 1);
    assert.equal(kube.requestsTo(CHECKOUT_PATH), 1);
    assert.deepEqual(kube.workflows, []);
    assert.deepEqual(await cooldowns(), []);
  });

  it('answers retry (503) when the Namespace is forbidden (403) or the Deployment fails (500), never submitting', async () => {
    kube.failReads('Namespace', { status: 403 });
    const forbidden = await post([crashLoop()]);
    assert.equal(forbidden.status, 503);
    assert.equal(forbidden.decisions[0]?.outcome, 'retry');
    assert.match(
      forbidden.decisions[0]?.reason ?? '',
      /^cannot read Namespace shop to see whether it opted out of remediation \(kube-sentinel.io\/remediation\): 403 Forbidden namespaces "shop" is forbidden/,
    );

    kube.failReads('Namespace', undefined);
    kube.failReads('Deployment', { status: 500 });
    // The Deployment was read (not annotated) beside the forbidden Namespace: asked again after 30 s.
    test.clock.now += OPT_OUT_TTL_MS;
    const failing = await post([crashLoop()]);
    assert.equal(failing.status, 503);
    assert.match(failing.decisions[0]?.reason ?? '', /^cannot read Deployment shop\/checkout .*: 500 InternalError/);
    assert.deepEqual(kube.workflows, []);
    assert.deepEqual(await cooldowns(), []);

    kube.failReads('Deployment', undefined);
    test.clock.now += 1000;
    assert.equal((await decide())?.outcome, 'submitted', 'the redelivery, once the objects can be read');
  });

  it('explains an opted-out alert as excluded', async () => {
    kube.annotate(NAMESPACE, OPT_OUT);
    const res = await test.app.inject({ method: 'POST', url: '/v1/explain', payload: webhook([crashLoop()]) });
    assert.equal(res.json().decisions[0].outcome, 'excluded');
  });
});
