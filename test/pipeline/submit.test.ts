import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { createKubeSubmitter, type WorkflowSubmitter } from '../../src/kube/client.js';
import { StoreUnavailableError } from '../../src/stores/cooldown-store.js';
import { MemoryCooldownStore } from '../../src/stores/memory.js';
import { firing, testApp, webhook } from '../support/app.js';
import { validateArgoObject } from '../support/argo-schema.js';
import { type FakeKube, startFakeKube } from '../support/fake-kube.js';
import { writeKubeconfig } from '../support/kubeconfig.js';

const crashloop = (pod: string, namespace = 'shop') =>
  webhook([firing({ alertname: 'KubePodCrashLooping', namespace, pod }, { description: 'crashloop' })]);

describe('submitting to the Kubernetes API', () => {
  let kube: FakeKube;
  let submitter: WorkflowSubmitter;
  before(async () => {
    kube = await startFakeKube({ token: 't' });
    submitter = await createKubeSubmitter({
      kind: 'file',
      path: writeKubeconfig(mkdtempSync(join(tmpdir(), 'ks-')), kube.url, 't'),
    });
  });
  after(() => kube.close());
  beforeEach(() => {
    kube.reset();
    kube.addWorkflowTemplate('argo', 'diagnose-pod');
    kube.addWorkflowTemplate('argo', 'diagnose-and-recover');
  });

  it('creates exactly one valid Workflow per alert and cooldown window', async () => {
    const { app } = await testApp({ submitter });
    const first = await app.inject({
      method: 'POST',
      url: '/webhook/alertmanager',
      payload: crashloop('checkout-7d9f8b6c5-x2x9k'),
    });
    assert.equal(first.json().decisions[0].outcome, 'submitted');
    const repeat = await app.inject({
      method: 'POST',
      url: '/webhook/alertmanager',
      payload: crashloop('checkout-7d9f8b6c5-x2x9k'),
    });
    assert.equal(repeat.json().decisions[0].outcome, 'cooldown');
    assert.equal(kube.workflows.length, 1);
    const [stored] = kube.workflows;
    assert.deepEqual(validateArgoObject(stored), []);
    assert.equal(stored!.metadata.name, first.json().decisions[0].workflow.name);
    assert.equal(stored!.metadata.labels?.['kube-sentinel.io/rule'], 'crashloop');
  });

  it('answers submitted without waiting for the commit, which lands after, and logs a commit that fails', {
    timeout: 10_000,
  }, async () => {
    const store = new MemoryCooldownStore();
    const commits: { settle: (ok: boolean) => void; answered: Promise<unknown> }[] = [];
    const commit = store.commit.bind(store);
    // The commit is held until the test lets it go: the answer must not wait for it.
    store.commit = (key, name, ms) => {
      let settle!: (ok: boolean) => void;
      const answered = new Promise<boolean>((resolve, reject) => {
        settle = (ok) =>
          ok ? commit(key, name, ms).then(resolve, reject) : reject(new StoreUnavailableError('redis went away'));
      });
      commits.push({ settle, answered: answered.catch(() => undefined) });
      return answered;
    };
    /** One event-loop turn: what the pipeline does once the commit settles has run by then. */
    const turn = () => new Promise((resolve) => setImmediate(resolve));
    const { app, logs } = await testApp({ submitter, store });
    const first = await app.inject({
      method: 'POST',
      url: '/webhook/alertmanager',
      payload: crashloop('checkout-7d9f8b6c5-x2x9k'),
    });
    assert.equal(first.json().decisions[0].outcome, 'submitted');
    assert.equal(commits.length, 1, 'the commit was asked for before the answer');
    assert.equal((await store.peek('crashloop:shop/checkout'))?.state, 'pending');
    commits[0]!.settle(true);
    await commits[0]!.answered;
    assert.equal((await store.peek('crashloop:shop/checkout'))?.state, 'committed');

    const other = await app.inject({
      method: 'POST',
      url: '/webhook/alertmanager',
      payload: crashloop('api-0', 'pay'),
    });
    assert.equal(other.json().decisions[0].outcome, 'submitted', 'a failing commit does not change the decision');
    commits[1]!.settle(false);
    await commits[1]!.answered;
    await turn();
    assert.ok(
      logs().some((l) => l.msg === 'could not commit the cooldown after submitting' && l.key === 'crashloop:pay/api'),
    );
  });

  it('renders inline workflows the API server accepts', async () => {
    const { app } = await testApp({ submitter });
    const res = await app.inject({
      method: 'POST',
      url: '/webhook/alertmanager',
      payload: webhook([
        firing(
          { alertname: 'Stuck', namespace: 'shop', pod: 'api-0', container: 'api' },
          { description: 'please restart' },
        ),
      ]),
    });
    assert.equal(res.json().decisions[0].outcome, 'submitted', JSON.stringify(res.json()));
    assert.equal(kube.workflows.length, 1);
    assert.equal(kube.workflows[0]!.spec.entrypoint, 'main');
  });

  it('answers 503 on a Kubernetes 500 and lets the redelivery through exactly once, under the same name', async () => {
    const { app } = await testApp({ submitter });
    kube.failNext(1, { status: 500 });
    const first = await app.inject({ method: 'POST', url: '/webhook/alertmanager', payload: crashloop('api-0') });
    assert.equal(first.statusCode, 503);
    assert.ok(Number(first.headers['retry-after']) >= 1);
    const failed = first.json().decisions[0];
    assert.equal(failed.outcome, 'retry');
    const redelivery = await app.inject({ method: 'POST', url: '/webhook/alertmanager', payload: crashloop('api-0') });
    assert.equal(redelivery.statusCode, 200);
    assert.equal(redelivery.json().decisions[0].outcome, 'submitted');
    assert.equal(redelivery.json().decisions[0].workflow.name, failed.workflow.name);
    const again = await app.inject({ method: 'POST', url: '/webhook/alertmanager', payload: crashloop('api-0') });
    assert.equal(again.json().decisions[0].outcome, 'cooldown');
    assert.equal(kube.workflows.length, 1);
  });

  it('passes on Retry-After from a 429', async () => {
    const { app } = await testApp({ submitter });
    kube.failNext(1, { status: 429, retryAfterSeconds: 17 });
    const res = await app.inject({ method: 'POST', url: '/webhook/alertmanager', payload: crashloop('api-0') });
    assert.equal(res.statusCode, 503);
    assert.equal(res.headers['retry-after'], '17');
    assert.equal('retryAfterSeconds' in res.json().decisions[0], false, 'the delay goes in the header only');
  });

  it('never makes a second Workflow when a timed-out create landed', async () => {
    const { app } = await testApp({ submitter, args: ['--submit-timeout', '100ms'] });
    kube.delayNext(1, 1000, { store: true });
    const first = await app.inject({ method: 'POST', url: '/webhook/alertmanager', payload: crashloop('api-0') });
    assert.equal(first.statusCode, 503);
    assert.match(first.json().decisions[0].reason, /timeout/);
    await kube.waitForWorkflows(1);
    const redelivery = await app.inject({ method: 'POST', url: '/webhook/alertmanager', payload: crashloop('api-0') });
    assert.equal(redelivery.json().decisions[0].outcome, 'submitted');
    assert.equal(kube.workflows.length, 1);
  });

  it('fails permanently on 403, logs the missing permission, and releases the claim', async () => {
    const { app, logs } = await testApp({ submitter });
    kube.denyCreate('argo');
    const res = await app.inject({ method: 'POST', url: '/webhook/alertmanager', payload: crashloop('api-0') });
    assert.equal(res.statusCode, 200);
    const decision = res.json().decisions[0];
    assert.equal(decision.outcome, 'failed');
    assert.match(decision.reason, /403 Forbidden/);
    const error = logs().find(
      (l) =>
        l.level === 50 &&
        typeof l.msg === 'string' &&
        l.msg.includes('may not create workflows.argoproj.io in namespace argo'),
    );
    assert.ok(error, 'an error log naming the permission');
    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    assert.match(metrics, /kube_sentinel_submissions_total\{template="diagnose-pod",result="permanent",code="403"\} 1/);
    // Once RBAC is fixed, the next notification goes through: the failure did not hold the cooldown.
    kube.reset();
    kube.addWorkflowTemplate('argo', 'diagnose-pod');
    const after = await app.inject({ method: 'POST', url: '/webhook/alertmanager', payload: crashloop('api-0') });
    assert.equal(after.json().decisions[0].outcome, 'submitted');
  });

  it('answers 503 while the API server refuses connections, and submits once it is back', async () => {
    const { app } = await testApp({ submitter });
    await kube.refuseConnections();
    try {
      const res = await app.inject({ method: 'POST', url: '/webhook/alertmanager', payload: crashloop('api-0') });
      assert.equal(res.statusCode, 503);
      assert.match(res.json().decisions[0].reason, /ECONNREFUSED|ECONNRESET/);
    } finally {
      await kube.acceptConnections();
    }
    const res = await app.inject({ method: 'POST', url: '/webhook/alertmanager', payload: crashloop('api-0') });
    assert.equal(res.json().decisions[0].outcome, 'submitted');
    assert.equal(kube.workflows.length, 1);
  });

  it('fails with 200 naming a WorkflowTemplate that does not exist, holding no cooldown', async () => {
    // A fresh submitter: the shared one has seen the template in earlier tests.
    const fresh = await createKubeSubmitter({
      kind: 'file',
      path: writeKubeconfig(mkdtempSync(join(tmpdir(), 'ks-')), kube.url, 't'),
    });
    const { app } = await testApp({ submitter: fresh });
    kube.reset();
    const res = await app.inject({ method: 'POST', url: '/webhook/alertmanager', payload: crashloop('api-0') });
    assert.equal(res.statusCode, 200);
    assert.equal(res.json().decisions[0].outcome, 'failed');
    assert.match(res.json().decisions[0].reason, /WorkflowTemplate argo\/diagnose-pod not found/);
    kube.addWorkflowTemplate('argo', 'diagnose-pod');
    const after = await app.inject({ method: 'POST', url: '/webhook/alertmanager', payload: crashloop('api-0') });
    assert.equal(after.json().decisions[0].outcome, 'submitted');
  });

  it('submits nothing in dry-run mode', async () => {
    const { app } = await testApp({ submitter, args: ['--dry-run'] });
    const res = await app.inject({ method: 'POST', url: '/webhook/alertmanager', payload: crashloop('api-0') });
    assert.equal(res.json().decisions[0].outcome, 'dry_run');
    assert.equal(kube.workflows.length, 0);
  });
});
