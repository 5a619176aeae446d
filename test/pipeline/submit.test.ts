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

/** Polls a condition on real timers (a background retry's own delay), never longer than two seconds. */
async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.ok(condition(), `still waiting: ${what}`);
}

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

  it('answers submitted without waiting for the commit, which lands after; a commit that fails is retried until it lands', {
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
    const submitted = other.json().decisions[0];
    assert.equal(submitted.outcome, 'submitted', 'a failing commit does not change the decision');
    commits[1]!.settle(false);
    await commits[1]!.answered;
    await turn();
    assert.ok(
      logs().some(
        (l) => /^could not commit the cooldown; retrying/.test(String(l.msg)) && l.key === 'crashloop:pay/api',
      ),
    );
    // The pending lease runs out in the store meanwhile: this replica still answers for the key.
    await store.release('crashloop:pay/api', submitted.workflow.name);
    const meanwhile = await app.inject({
      method: 'POST',
      url: '/webhook/alertmanager',
      payload: crashloop('api-1', 'pay'),
    });
    assert.equal(meanwhile.json().decisions[0].outcome, 'cooldown');
    assert.match(meanwhile.json().decisions[0].reason, new RegExp(`${submitted.workflow.name} was submitted`));
    await until(() => commits.length === 3, 'the commit to be retried');
    commits[2]!.settle(true);
    await commits[2]!.answered;
    const held = await store.peek('crashloop:pay/api');
    assert.deepEqual([held?.state, held?.workflowName], ['committed', submitted.workflow.name]);
    assert.equal(kube.workflows.length, 2, 'one Workflow per key, none for the alert answered meanwhile');
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

  it('holds the name of a create that timed out for the whole cooldown: a redelivery after the lease gets 409, never a second Workflow', async () => {
    const { app, clock, store } = await testApp({
      submitter,
      args: ['--submit-timeout', '100ms', '--pending-lease', '200ms'],
    });
    kube.delayNext(1, 400, { store: true });
    const first = await app.inject({ method: 'POST', url: '/webhook/alertmanager', payload: crashloop('api-0') });
    assert.equal(first.statusCode, 503);
    const timedOut = first.json().decisions[0];
    assert.match(timedOut.reason, /timeout.*may have landed/);
    await kube.waitForWorkflows(1);
    // Long past the pending lease, well inside the rule's 10-minute cooldown.
    clock.now += 5 * 60_000;
    const held = await store.peek(timedOut.cooldownKey);
    assert.deepEqual([held?.state, held?.workflowName], ['pending', timedOut.workflow.name]);
    const other = await app.inject({ method: 'POST', url: '/webhook/alertmanager', payload: crashloop('api-1') });
    assert.equal(other.json().decisions[0].outcome, 'cooldown', 'another alert of the workload waits');
    const late = await app.inject({ method: 'POST', url: '/webhook/alertmanager', payload: crashloop('api-0') });
    assert.equal(late.statusCode, 200);
    assert.equal(late.json().decisions[0].outcome, 'submitted');
    assert.equal(late.json().decisions[0].workflow.name, timedOut.workflow.name);
    assert.match(late.json().decisions[0].reason, /already exists/);
    assert.equal(kube.workflows.length, 1);
  });

  it('counts only a 409 AlreadyExists for this name as submitted: a proxy page or a Conflict fails, creating and holding nothing', async () => {
    const { app, store } = await testApp({ submitter });
    kube.failNext(1, { status: 409, html: '<html><body><h1>409 Conflict</h1></body></html>' });
    kube.failNext(1, { status: 409, reason: 'Conflict', message: 'Operation cannot be fulfilled' });
    for (const pod of ['api-0', 'web-0']) {
      const res = await app.inject({ method: 'POST', url: '/webhook/alertmanager', payload: crashloop(pod) });
      const decision = res.json().decisions[0];
      assert.equal(res.statusCode, 200);
      assert.equal(decision.outcome, 'failed', JSON.stringify(decision));
      assert.match(decision.reason, /409/);
      assert.equal(await store.peek(decision.cooldownKey), null, 'no cooldown held for what was not created');
    }
    assert.equal(kube.workflows.length, 0);
  });

  it('spends a rate slot only on a Workflow that was created or may have been', async () => {
    const { app } = await testApp({
      submitter,
      args: ['--max-workflows-per-minute', '2', '--submit-timeout', '100ms'],
    });
    kube.failNext(5, { status: 503 });
    for (let i = 0; i < 5; i++) {
      const res = await app.inject({ method: 'POST', url: '/webhook/alertmanager', payload: crashloop(`a${i}-0`) });
      assert.equal(res.json().decisions[0].outcome, 'retry');
    }
    kube.delayNext(1, 400, { store: true });
    const timedOut = await app.inject({ method: 'POST', url: '/webhook/alertmanager', payload: crashloop('t-0') });
    assert.match(timedOut.json().decisions[0].reason, /timeout/);
    await kube.waitForWorkflows(1);
    const outcomes: string[] = [];
    for (const pod of ['b-0', 'c-0']) {
      const res = await app.inject({ method: 'POST', url: '/webhook/alertmanager', payload: crashloop(pod) });
      outcomes.push(res.json().decisions[0].outcome);
    }
    assert.deepEqual(outcomes, ['submitted', 'rate_limited'], 'five 503s spent nothing; the timeout spent one');
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
