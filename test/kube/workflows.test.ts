import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { KubeApiError } from '../../src/kube/http.js';
import { type LoadedKubeConfig, loadKubeConfig } from '../../src/kube/kubeconfig.js';
import { MANAGED_SELECTOR, type Workflow } from '../../src/kube/workflow.js';
import { listWorkflows, patchWorkflow, toWatchedWorkflow } from '../../src/kube/workflows.js';
import { type FakeKube, startFakeKube } from '../support/fake-kube.js';
import { writeKubeconfig } from '../support/kubeconfig.js';

const WORKFLOWS = '/apis/argoproj.io/v1alpha1/namespaces/argo/workflows';

function workflow(name: string, labelled = true): Workflow {
  return {
    apiVersion: 'argoproj.io/v1alpha1',
    kind: 'Workflow',
    metadata: {
      name,
      namespace: 'argo',
      labels: labelled ? { 'app.kubernetes.io/managed-by': 'kube-sentinel' } : {},
      annotations: {},
    },
    spec: {
      arguments: { parameters: [{ name: 'pod', value: 'api-0' }] },
      workflowTemplateRef: { name: 'diagnose-pod' },
      ttlStrategy: { secondsAfterCompletion: 3600, secondsAfterSuccess: 600, secondsAfterFailure: 86400 },
    },
  };
}

async function collect(iterable: AsyncIterable<unknown>): Promise<unknown[]> {
  const items: unknown[] = [];
  for await (const item of iterable) items.push(item);
  return items;
}

describe('Workflow calls on the project’s HTTP client', () => {
  let kube: FakeKube;
  let kubeconfig: LoadedKubeConfig;
  let dir: string;

  before(async () => {
    kube = await startFakeKube({ token: 'calls-token' });
    dir = mkdtempSync(join(tmpdir(), 'ks-workflows-'));
    kubeconfig = await loadKubeConfig({ kind: 'file', path: writeKubeconfig(dir, kube.url, 'calls-token') });
  });
  after(async () => {
    await kube.close();
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => kube.reset());

  const create = (name: string, labelled = true) => kubeconfig.request('POST', WORKFLOWS, workflow(name, labelled));

  describe('listWorkflows', () => {
    it('lists the selected Workflows of a namespace, trimmed, with the list’s resourceVersion', async () => {
      await create('wf-a');
      await create('wf-b', false);
      const listed = await listWorkflows(kubeconfig.request, 'argo', MANAGED_SELECTOR);
      assert.equal(listed.resourceVersion, kube.resourceVersion);
      assert.deepEqual(
        listed.items.map((item) => item.metadata.name),
        ['wf-a'],
      );
      assert.equal((listed.items[0] as { spec?: unknown }).spec, undefined, 'the spec is trimmed away');
    });

    it('follows continue from page to page, keeping the first page’s resourceVersion', async () => {
      const many = await startFakeKube({ validate: false });
      try {
        const loaded = await loadKubeConfig({
          kind: 'file',
          path: writeKubeconfig(mkdtempSync(join(dir, 'many-')), many.url),
        });
        for (let index = 0; index < 60; index++) {
          await loaded.request('POST', WORKFLOWS, workflow(`wf-${index}`));
        }
        const listedAt = many.resourceVersion;
        const listed = await listWorkflows(loaded.request, 'argo', MANAGED_SELECTOR);
        assert.equal(listed.items.length, 60);
        assert.equal(listed.resourceVersion, listedAt);
        const pages = many.requests.filter((request) => request.method === 'GET');
        assert.equal(pages.length, 2);
        assert.equal(pages[0]?.query.limit, '50');
        assert.ok(pages[1]?.query.continue);
      } finally {
        await many.close();
      }
    });
  });

  describe('patchWorkflow', () => {
    it('sends a JSON merge patch and resolves with the patched Workflow, trimmed', async () => {
      const suspended = workflow('wf-a');
      suspended.spec.suspend = true;
      await kubeconfig.request('POST', WORKFLOWS, suspended);
      const patched = await patchWorkflow(kubeconfig.request, 'argo', 'wf-a', {
        metadata: { annotations: { 'kube-sentinel.io/stopped': 'approval expired' } },
        spec: { shutdown: 'Stop' },
      });
      assert.deepEqual(patched.spec, { suspend: true, shutdown: 'Stop' });
      assert.equal(patched.metadata.annotations?.['kube-sentinel.io/stopped'], 'approval expired');
      assert.equal(kube.getWorkflow('argo', 'wf-a')?.spec.shutdown, 'Stop');
      const sent = kube.requests.find((request) => request.method === 'PATCH');
      assert.deepEqual(sent, { method: 'PATCH', path: `${WORKFLOWS}/wf-a`, query: { fieldValidation: 'Strict' } });
    });

    it('rejects with KubeApiError 404 for a Workflow that does not exist, and 409 for a stale resourceVersion', async () => {
      await assert.rejects(
        patchWorkflow(kubeconfig.request, 'argo', 'wf-missing', { spec: { shutdown: 'Stop' } }),
        (error: unknown) => error instanceof KubeApiError && error.code === 404,
      );
      const created = (await create('wf-a')) as { metadata: { resourceVersion: string } };
      kube.setPhase('argo', 'wf-a', 'Running');
      await assert.rejects(
        patchWorkflow(kubeconfig.request, 'argo', 'wf-a', {
          metadata: { resourceVersion: created.metadata.resourceVersion },
          spec: { shutdown: 'Stop' },
        }),
        (error: unknown) => error instanceof KubeApiError && error.code === 409,
      );
    });
  });

  describe('toWatchedWorkflow', () => {
    it('keeps only what the watcher needs', () => {
      const trimmed = toWatchedWorkflow({
        apiVersion: 'argoproj.io/v1alpha1',
        kind: 'Workflow',
        metadata: {
          name: 'wf-a',
          namespace: 'argo',
          uid: 'u-1',
          resourceVersion: '7',
          generation: 3,
          managedFields: [{ manager: 'workflow-controller' }],
          labels: { 'workflows.argoproj.io/phase': 'Running', odd: 5 },
        },
        spec: { suspend: false, templates: [{ name: 'main' }] },
        status: { phase: 'Running', nodes: { 'wf-a': { phase: 'Running' } }, startedAt: '2025-06-01T12:00:00Z' },
      });
      assert.deepEqual(trimmed, {
        metadata: {
          name: 'wf-a',
          namespace: 'argo',
          uid: 'u-1',
          resourceVersion: '7',
          labels: { 'workflows.argoproj.io/phase': 'Running' },
        },
        spec: { suspend: false },
        status: { phase: 'Running', startedAt: '2025-06-01T12:00:00Z' },
      });
    });

    it('keeps of a failed Workflow the first step that failed, with its message (an eviction a budget refused)', () => {
      const refused =
        "eviction of pod shop/checkout-0 failed: Error from server (TooManyRequests): Cannot evict pod as it would violate the pod's disruption budget.";
      const trimmed = toWatchedWorkflow({
        metadata: { name: 'wf-b', namespace: 'argo' },
        status: {
          phase: 'Failed',
          message: "child 'wf-b-1' failed",
          nodes: {
            'wf-b': { type: 'Steps', phase: 'Failed', message: "child 'wf-b-1' failed", displayName: 'wf-b' },
            'wf-b-2': {
              type: 'Pod',
              phase: 'Failed',
              message: 'report could not be sent',
              displayName: 'report',
              finishedAt: '2025-06-01T12:01:00Z',
            },
            'wf-b-1': {
              type: 'Pod',
              phase: 'Failed',
              message: refused,
              displayName: 'evict-pod',
              finishedAt: '2025-06-01T12:00:30Z',
            },
            'wf-b-0': { type: 'Pod', phase: 'Succeeded', displayName: 'backup', finishedAt: '2025-06-01T12:00:10Z' },
          },
        },
      });
      assert.deepEqual(trimmed.status, {
        phase: 'Failed',
        message: "child 'wf-b-1' failed",
        failedStep: `evict-pod: ${refused}`,
      });
      const running = toWatchedWorkflow({
        metadata: { name: 'wf-c', namespace: 'argo' },
        status: { phase: 'Running', nodes: { 'wf-c-1': { type: 'Pod', phase: 'Failed', message: 'retrying' } } },
      });
      assert.deepEqual(running.status, { phase: 'Running' }, 'only of a Workflow that failed');
    });

    it('throws, naming the problem, for an object without a name and namespace', () => {
      assert.throws(
        () => toWatchedWorkflow({ metadata: { name: 'x' } }),
        /without metadata\.name and metadata\.namespace/,
      );
      assert.throws(() => toWatchedWorkflow('Workflow'), /without metadata\.name/);
    });
  });

  describe('the watch call', () => {
    const watchPath = `${WORKFLOWS}?watch=true&labelSelector=${encodeURIComponent(MANAGED_SELECTOR)}`;

    it('yields each event as parsed JSON as it arrives, and ends when the API server ends the stream', async () => {
      await create('wf-a');
      const iterator = kubeconfig.watch(watchPath, new AbortController().signal)[Symbol.asyncIterator]();
      const first = await iterator.next();
      assert.equal((first.value as { type: string }).type, 'ADDED');
      kube.setPhase('argo', 'wf-a', 'Running');
      const second = await iterator.next();
      assert.equal(
        (second.value as { type: string; object: { status: { phase: string } } }).object.status.phase,
        'Running',
      );
      kube.endWatches();
      assert.deepEqual(await iterator.next(), { done: true, value: undefined });
    });

    it('rejects a non-2xx answer as KubeApiError with the Status body', async () => {
      await create('wf-a');
      kube.setPhase('argo', 'wf-a', 'Running');
      kube.compactHistory();
      kube.expiredWatches = 'status';
      await assert.rejects(
        collect(kubeconfig.watch(`${watchPath}&resourceVersion=1`, new AbortController().signal)),
        (error: unknown) =>
          error instanceof KubeApiError && error.code === 410 && JSON.parse(error.body).reason === 'Expired',
      );
    });

    it('rejects when the connection breaks before the end of the stream', async () => {
      const events = collect(kubeconfig.watch(watchPath, new AbortController().signal));
      await kube.waitForWatches(1);
      kube.dropWatches();
      await assert.rejects(events, (error: unknown) => (error as { code?: string }).code === 'ECONNRESET');
    });

    it('closes the connection when the caller stops reading, and ends with an AbortError when aborted', async () => {
      await create('wf-a');
      for await (const _event of kubeconfig.watch(watchPath, new AbortController().signal)) break;
      await kube.waitForWatches(0);

      const controller = new AbortController();
      const events = collect(kubeconfig.watch(watchPath, controller.signal));
      await kube.waitForWatches(1);
      controller.abort();
      await assert.rejects(events, { name: 'AbortError' });
      await kube.waitForWatches(0);
    });
  });
});

describe('the watch call, reading a stream cut anywhere', () => {
  it('puts lines back together across chunks, even inside a character', async () => {
    const line = `${JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'wf-é', namespace: 'argo' } } })}\n`;
    const bytes = Buffer.from(line + line.replace('ADDED', 'MODIFIED'));
    const cut = bytes.indexOf(Buffer.from('é')) + 1;
    const pieces = [bytes.subarray(0, cut), bytes.subarray(cut, cut + 40), bytes.subarray(cut + 40)];
    const server = createServer((_request, response: ServerResponse) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.socket?.setNoDelay(true);
      const next = (index: number): void => {
        const piece = pieces[index];
        if (!piece) {
          response.end();
          return;
        }
        // Apart in time, so that each piece arrives as a chunk of its own.
        response.write(piece, () => setTimeout(() => next(index + 1), 10));
      };
      next(0);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const dir = mkdtempSync(join(tmpdir(), 'ks-watch-cut-'));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const loaded = await loadKubeConfig({ kind: 'file', path: writeKubeconfig(dir, url) });
      const events = (await collect(loaded.watch(WORKFLOWS, new AbortController().signal))) as {
        type: string;
        object: { metadata: { name: string } };
      }[];
      assert.deepEqual(
        events.map((event) => `${event.type} ${event.object.metadata.name}`),
        ['ADDED wf-é', 'MODIFIED wf-é'],
      );
    } finally {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a call on a kept-alive connection the API server closed', () => {
  it('is sent again once on a new connection, where it is answered', async () => {
    // The first connection answers once, then dies on its next request, as a restarted API
    // server's or one closed for idleness does; a new connection answers.
    const served: string[] = [];
    const server = createServer((request, response) => {
      const socket = request.socket as typeof request.socket & { served?: number };
      socket.served = (socket.served ?? 0) + 1;
      served.push(`${request.url} #${socket.served}`);
      if (served.length === 2) {
        socket.destroy();
        return;
      }
      response.setHeader('content-type', 'application/json');
      response.end(JSON.stringify({ kind: 'Namespace', metadata: { name: 'shop' } }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const dir = mkdtempSync(join(tmpdir(), 'ks-stale-'));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const { request } = await loadKubeConfig({ kind: 'file', path: writeKubeconfig(dir, url, 'token') });
      await request('GET', '/api/v1/namespaces/shop', undefined);
      assert.deepEqual(await request('GET', '/api/v1/namespaces/shop', undefined), {
        kind: 'Namespace',
        metadata: { name: 'shop' },
      });
      assert.deepEqual(served, [
        '/api/v1/namespaces/shop #1',
        '/api/v1/namespaces/shop #2',
        '/api/v1/namespaces/shop #1',
      ]);
    } finally {
      server.closeAllConnections();
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
