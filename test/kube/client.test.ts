import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { createKubeSubmitter, type WorkflowSubmitter } from '../../src/kube/client.js';
import type { SubmitResult } from '../../src/kube/result.js';
import type { Workflow } from '../../src/kube/workflow.js';
import { type FakeKube, startFakeKube } from '../support/fake-kube.js';
import { writeKubeconfig } from '../support/kubeconfig.js';
import { makeTestPki } from '../support/tls.js';

function workflow(name: string, namespace = 'argo'): Workflow {
  return {
    apiVersion: 'argoproj.io/v1alpha1',
    kind: 'Workflow',
    metadata: { name, namespace, labels: { 'app.kubernetes.io/managed-by': 'kube-sentinel' }, annotations: {} },
    spec: {
      arguments: { parameters: [{ name: 'pod', value: 'api-0' }] },
      workflowTemplateRef: { name: 'diagnose-pod' },
      ttlStrategy: { secondsAfterCompletion: 3600, secondsAfterSuccess: 600, secondsAfterFailure: 86400 },
    },
  };
}

function failure(result: SubmitResult): Extract<SubmitResult, { kind: 'failed' }> {
  if (result.kind !== 'failed') assert.fail(`expected a failure, got ${JSON.stringify(result)}`);
  return result;
}

describe('the Kubernetes submitter', () => {
  let kube: FakeKube;
  let submitter: WorkflowSubmitter;
  before(async () => {
    kube = await startFakeKube({ token: 'kube-token' });
    const dir = mkdtempSync(join(tmpdir(), 'ks-kube-'));
    submitter = await createKubeSubmitter({ kind: 'file', path: writeKubeconfig(dir, kube.url, 'kube-token') });
  });
  after(() => kube.close());
  beforeEach(() => {
    kube.reset();
    kube.addWorkflowTemplate('argo', 'diagnose-pod');
    kube.addWorkflowTemplate('prod', 'diagnose-pod');
  });

  it('creates the Workflow with strict field validation', async () => {
    assert.deepEqual(await submitter.create(workflow('wf-a'), 2000), {
      kind: 'created',
      status: 201,
      retryable: false,
    });
    assert.equal(kube.workflows.length, 1);
    const create = kube.requests.find((r) => r.method === 'POST');
    assert.equal(create?.query.fieldValidation, 'Strict');
  });

  it('counts 409 AlreadyExists as existing, not as a failure', async () => {
    await submitter.create(workflow('wf-b'), 2000);
    assert.deepEqual(await submitter.create(workflow('wf-b'), 2000), { kind: 'exists', status: 409, retryable: false });
    assert.equal(kube.workflows.length, 1);
  });

  const transient: [string, number, number | undefined][] = [
    ['500 InternalError', 500, undefined],
    ['503 ServiceUnavailable', 503, 7],
    ['429 TooManyRequests', 429, 3],
  ];
  for (const [what, status, retryAfterSeconds] of transient) {
    it(`treats ${what} as retryable${retryAfterSeconds ? ', honouring Retry-After' : ''}`, async () => {
      kube.failNext(1, { status, ...(retryAfterSeconds ? { retryAfterSeconds } : {}) });
      const result = failure(await submitter.create(workflow('wf-c'), 2000));
      assert.equal(result.retryable, true);
      assert.equal(result.status, status);
      assert.match(result.reason, new RegExp(`^${status} `));
      assert.equal(result.retryAfterSeconds, retryAfterSeconds);
    });
  }

  it('treats 403 Forbidden as not retryable, with the Status message on one line', async () => {
    kube.denyCreate('prod');
    const { reason, status, retryable } = failure(await submitter.create(workflow('wf-d', 'prod'), 2000));
    assert.equal(retryable, false);
    assert.equal(status, 403);
    assert.match(reason, /^403 Forbidden .*cannot create resource "workflows"/);
    assert.doesNotMatch(reason, /\n/);
  });

  it('treats 422 Invalid as not retryable and names the field', async () => {
    const bad = workflow('wf-e') as unknown as { spec: Record<string, unknown> };
    bad.spec.entryPoint = 'typo';
    const result = failure(await submitter.create(bad as unknown as Workflow, 2000));
    assert.deepEqual([result.retryable, result.status], [false, 422]);
    assert.match(result.reason, /422 Invalid.*entryPoint/);
  });

  it('gives up after the submit timeout and says so (retryable)', async () => {
    kube.delayNext(1, 1500, { store: true });
    const result = await submitter.create(workflow('wf-f'), 200);
    assert.deepEqual(result, {
      kind: 'failed',
      cause: 'timeout',
      retryable: true,
      reason: 'timeout after 200 ms',
      mayHaveLanded: true,
    });
    // The create landed anyway: a retry with the same name answers 409, which counts as existing.
    await kube.waitForWorkflows(1);
    assert.equal((await submitter.create(workflow('wf-f'), 2000)).kind, 'exists');
    assert.equal(kube.workflows.length, 1);
  });

  it('treats a refused connection as retryable, without a status', async () => {
    await kube.refuseConnections();
    try {
      const result = failure(await submitter.create(workflow('wf-g'), 2000));
      assert.deepEqual([result.retryable, result.status, result.cause], [true, undefined, 'connection']);
      assert.match(result.reason, /ECONNREFUSED|ECONNRESET/);
    } finally {
      await kube.acceptConnections();
    }
  });

  it('fails permanently, naming the template, when the WorkflowTemplate does not exist', async () => {
    kube.reset();
    // A fresh submitter: the shared one has seen the template in earlier tests.
    const fresh = await createKubeSubmitter({
      kind: 'file',
      path: writeKubeconfig(mkdtempSync(join(tmpdir(), 'ks-kube-')), kube.url, 'kube-token'),
    });
    const result = await fresh.create(workflow('wf-i'), 2000);
    assert.deepEqual(result, {
      kind: 'failed',
      status: 404,
      retryable: false,
      reason: '404 WorkflowTemplate argo/diagnose-pod not found',
      mayHaveLanded: false,
    });
    assert.equal(kube.workflows.length, 0);
  });

  it('asks about a template once, then trusts what it saw', async () => {
    await submitter.create(workflow('wf-j'), 2000);
    await submitter.create(workflow('wf-k'), 2000);
    const gets = kube.requests.filter((r) => r.method === 'GET' && r.path.endsWith('/workflowtemplates/diagnose-pod'));
    assert.ok(gets.length <= 1, `asked ${gets.length} times`);
    assert.equal(kube.workflows.length, 2);
  });

  it('treats 401 (a bad token) as not retryable', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ks-kube-'));
    const wrong = await createKubeSubmitter({ kind: 'file', path: writeKubeconfig(dir, kube.url, 'wrong') });
    const result = failure(await wrong.create(workflow('wf-h'), 2000));
    assert.deepEqual([result.retryable, result.status], [false, 401]);
  });
});

describe('connections to the API server', () => {
  it('are kept alive between creates instead of one per Workflow', async () => {
    const kube = await startFakeKube({ token: 't' });
    try {
      kube.addWorkflowTemplate('argo', 'diagnose-pod');
      const submitter = await createKubeSubmitter({
        kind: 'file',
        path: writeKubeconfig(mkdtempSync(join(tmpdir(), 'ks-kube-')), kube.url, 't'),
      });
      // The fake's listening server (a private field): count the TCP connections it accepts.
      const server = (kube as unknown as { server: import('node:http').Server }).server;
      assert.ok(server, 'the fake exposes its server');
      let connections = 0;
      server.on('connection', () => {
        connections++;
      });
      for (let i = 0; i < 5; i++) assert.equal((await submitter.create(workflow(`wf-ka-${i}`), 2000)).kind, 'created');
      assert.equal(kube.workflows.length, 5);
      assert.ok(connections <= 2, `${connections} connections for 5 creates and a template check`);
    } finally {
      await kube.close();
    }
  });
});

describe('TLS to the API server', () => {
  const pki = makeTestPki();
  const other = makeTestPki('another');

  it('verifies the server against the kubeconfig CA, presents the client certificate, and keeps the connection', async () => {
    const kube = await startFakeKube({ tls: { key: pki.server.key, cert: pki.server.cert, clientCa: pki.ca } });
    try {
      kube.addWorkflowTemplate('argo', 'diagnose-pod');
      const path = writeKubeconfig(mkdtempSync(join(tmpdir(), 'ks-kube-')), kube.url, undefined, {
        ca: pki.ca,
        cert: pki.client.cert,
        key: pki.client.key,
      });
      const submitter = await createKubeSubmitter({ kind: 'file', path });
      const server = (kube as unknown as { server: import('node:https').Server }).server;
      let handshakes = 0;
      server.on('secureConnection', () => {
        handshakes++;
      });
      for (let i = 0; i < 5; i++) assert.equal((await submitter.create(workflow(`wf-tls-${i}`), 2000)).kind, 'created');
      assert.deepEqual(
        kube.workflows.map((w) => w.metadata.name),
        [0, 1, 2, 3, 4].map((i) => `wf-tls-${i}`),
      );
      assert.ok(handshakes <= 2, `${handshakes} TLS handshakes for 5 creates and a template check`);
    } finally {
      await kube.close();
    }
  });

  it('refuses a server whose certificate the kubeconfig CA did not sign, and creates nothing', async () => {
    const kube = await startFakeKube({ tls: { key: other.server.key, cert: other.server.cert } });
    try {
      kube.addWorkflowTemplate('argo', 'diagnose-pod');
      const path = writeKubeconfig(mkdtempSync(join(tmpdir(), 'ks-kube-')), kube.url, 't', { ca: pki.ca });
      const result = failure(
        await (await createKubeSubmitter({ kind: 'file', path })).create(workflow('wf-mitm'), 2000),
      );
      assert.equal(result.retryable, true);
      assert.match(result.reason, /certificate/i);
      assert.equal(kube.workflows.length, 0);
      assert.equal(kube.requests.length, 0, 'no request reached the server');
    } finally {
      await kube.close();
    }
  });

  it('is refused by a server that requires a client certificate when the kubeconfig has none', async () => {
    const kube = await startFakeKube({ tls: { key: pki.server.key, cert: pki.server.cert, clientCa: pki.ca } });
    try {
      kube.addWorkflowTemplate('argo', 'diagnose-pod');
      const path = writeKubeconfig(mkdtempSync(join(tmpdir(), 'ks-kube-')), kube.url, 't', { ca: pki.ca });
      const result = failure(
        await (await createKubeSubmitter({ kind: 'file', path })).create(workflow('wf-nocert'), 2000),
      );
      assert.equal(result.retryable, true);
      assert.equal(kube.workflows.length, 0);
    } finally {
      await kube.close();
    }
  });
});
