import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { type FakeKube, MAX_REQUEST_BODY_BYTES, type Status, startFakeKube } from './fake-kube.js';
import { writeKubeconfig } from './kubeconfig.js';
import type { Json } from './workflowtemplates.js';

const TOKEN = 'sentinel-test-token';
const NOW = Date.parse('2025-06-01T12:00:00.500Z');

function workflow(name: string, extra: { namespace?: string; labels?: Record<string, string> } = {}): Json {
  return {
    apiVersion: 'argoproj.io/v1alpha1',
    kind: 'Workflow',
    metadata: {
      name,
      ...(extra.namespace ? { namespace: extra.namespace } : {}),
      labels: { 'app.kubernetes.io/managed-by': 'kube-sentinel', ...extra.labels },
    },
    spec: {
      workflowTemplateRef: { name: 'diagnose-pod' },
      arguments: { parameters: [{ name: 'namespace', value: 'shop' }] },
      ttlStrategy: { secondsAfterCompletion: 3600, secondsAfterSuccess: 600, secondsAfterFailure: 86400 },
    },
  };
}

async function apiException(call: Promise<unknown>): Promise<k8s.ApiException<string>> {
  try {
    await call;
  } catch (error) {
    assert.ok(error instanceof k8s.ApiException, `expected an ApiException, got ${String(error)}`);
    return error as k8s.ApiException<string>;
  }
  assert.fail('expected the call to fail');
}

function statusOf(error: k8s.ApiException<string>): Status {
  return JSON.parse(error.body) as Status;
}

/** Passes an AbortSignal to one request, which is how a caller gives up on a slow create. */
function withSignal(signal: AbortSignal): k8s.ConfigurationOptions {
  const middleware: k8s.ObservableMiddleware = {
    pre: (context) => {
      context.setSignal(signal);
      return new k8s.Observable(Promise.resolve(context));
    },
    post: (context) => new k8s.Observable(Promise.resolve(context)),
  };
  return { middleware: [middleware], middlewareMergeStrategy: 'append' };
}

describe('the fake Kubernetes API, driven by @kubernetes/client-node', () => {
  let fake: FakeKube;
  let dir: string;
  let kc: k8s.KubeConfig;
  let customObjects: k8s.CustomObjectsApi;

  const create = (namespace: string, body: unknown, options?: k8s.ConfigurationOptions) =>
    customObjects.createNamespacedCustomObject(
      { group: 'argoproj.io', version: 'v1alpha1', namespace, plural: 'workflows', body },
      options,
    );

  before(async () => {
    fake = await startFakeKube({ token: TOKEN, now: () => NOW });
    dir = mkdtempSync(join(tmpdir(), 'fake-kube-'));
    kc = new k8s.KubeConfig();
    kc.loadFromFile(writeKubeconfig(dir, fake.url, TOKEN));
    customObjects = kc.makeApiClient(k8s.CustomObjectsApi);
  });

  after(async () => {
    await fake.close();
    rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(() => fake.reset());

  describe('creating a Workflow', () => {
    it('answers 201 with the object as stored, server fields added', async () => {
      const response = await customObjects.createNamespacedCustomObjectWithHttpInfo({
        group: 'argoproj.io',
        version: 'v1alpha1',
        namespace: 'argo',
        plural: 'workflows',
        body: workflow('kube-sentinel-oom-1a2b3c'),
      });
      assert.equal(response.httpStatusCode, 201);
      const created = response.data as Json;
      assert.equal(created.metadata.name, 'kube-sentinel-oom-1a2b3c');
      assert.equal(created.metadata.namespace, 'argo');
      assert.match(created.metadata.uid, /^[0-9a-f-]{36}$/);
      assert.match(created.metadata.resourceVersion, /^\d+$/);
      assert.equal(created.metadata.creationTimestamp, '2025-06-01T12:00:00Z');
      assert.deepEqual(created.spec, workflow('x').spec);
      assert.deepEqual(fake.workflows, [created]);
      assert.deepEqual(fake.workflowsIn('argo'), [created]);
      assert.deepEqual(fake.workflowsIn('shop'), []);
      assert.deepEqual(fake.requests, [
        { method: 'POST', path: '/apis/argoproj.io/v1alpha1/namespaces/argo/workflows', query: {} },
      ]);
    });

    it('resolves generateName with a 5-character suffix', async () => {
      const body = workflow('');
      delete body.metadata.name;
      body.metadata.generateName = 'kube-sentinel-diagnose-';
      const created = await create('argo', body);
      assert.match(created.metadata.name, /^kube-sentinel-diagnose-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
      assert.equal(created.metadata.generateName, 'kube-sentinel-diagnose-');
    });

    it('answers 409 AlreadyExists when the name exists in that namespace, and not in another', async () => {
      await create('argo', workflow('kube-sentinel-oom-1a2b3c'));
      const error = await apiException(create('argo', workflow('kube-sentinel-oom-1a2b3c')));
      assert.equal(error.code, 409);
      assert.deepEqual(statusOf(error), {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: 'workflows.argoproj.io "kube-sentinel-oom-1a2b3c" already exists',
        reason: 'AlreadyExists',
        details: { name: 'kube-sentinel-oom-1a2b3c', group: 'argoproj.io', kind: 'workflows' },
        code: 409,
      });
      assert.equal(error.headers['content-type'], 'application/json');
      await create('shop', workflow('kube-sentinel-oom-1a2b3c'));
      assert.equal(fake.workflows.length, 2);
    });

    it('answers 422 Invalid naming the unknown field, and stores nothing', async () => {
      const body = workflow('kube-sentinel-oom-1a2b3c');
      body.spec.entryPoint = 'main';
      body.spec.arguments.parameters[0].value = 5;
      const error = await apiException(create('argo', body));
      assert.equal(error.code, 422);
      const status = statusOf(error);
      assert.equal(status.reason, 'Invalid');
      assert.equal(
        status.message,
        'Workflow.argoproj.io "kube-sentinel-oom-1a2b3c" is invalid: ' +
          '[spec.entryPoint: unknown field, spec.arguments.parameters[0].value: must be string]',
      );
      assert.deepEqual(
        status.details.causes?.map((cause) => cause.field),
        ['spec.entryPoint', 'spec.arguments.parameters[0].value'],
      );
      assert.equal(status.details.kind, 'Workflow');
      assert.deepEqual(fake.workflows, []);
    });

    it('answers 422 for a label value over 63 characters', async () => {
      const error = await apiException(
        create('argo', workflow('kube-sentinel-x', { labels: { 'kube-sentinel.io/rule': 'r'.repeat(64) } })),
      );
      assert.equal(error.code, 422);
      assert.equal(statusOf(error).details.causes?.[0]?.field, 'metadata.labels');
    });

    it('answers 400 BadRequest when metadata.namespace differs from the namespace in the path', async () => {
      const error = await apiException(create('argo', workflow('kube-sentinel-x', { namespace: 'shop' })));
      assert.equal(error.code, 400);
      assert.equal(statusOf(error).reason, 'BadRequest');
      assert.equal(
        statusOf(error).message,
        'the namespace of the provided object does not match the namespace sent on the request',
      );
    });

    it('answers 413 for a body over 3 MiB', async () => {
      const body = workflow('kube-sentinel-big');
      body.metadata.annotations = { 'kube-sentinel.io/target': 'x'.repeat(MAX_REQUEST_BODY_BYTES) };
      const error = await apiException(create('argo', body));
      assert.equal(error.code, 413);
      assert.equal(statusOf(error).reason, 'RequestEntityTooLarge');
    });

    it('does not store a dry-run create', async () => {
      const created = await customObjects.createNamespacedCustomObject({
        group: 'argoproj.io',
        version: 'v1alpha1',
        namespace: 'argo',
        plural: 'workflows',
        body: workflow('kube-sentinel-dry'),
        dryRun: 'All',
      });
      assert.equal(created.metadata.name, 'kube-sentinel-dry');
      assert.deepEqual(fake.workflows, []);
      assert.deepEqual(fake.requests[0]?.query, { dryRun: 'All' });
    });
  });

  describe('authentication and authorization', () => {
    it('answers 401 Unauthorized without the bearer token', async () => {
      const anonymous = new k8s.KubeConfig();
      anonymous.loadFromFile(writeKubeconfig(mkdtempSync(join(dir, 'anonymous-')), fake.url));
      const error = await apiException(
        anonymous.makeApiClient(k8s.CustomObjectsApi).createNamespacedCustomObject({
          group: 'argoproj.io',
          version: 'v1alpha1',
          namespace: 'argo',
          plural: 'workflows',
          body: workflow('kube-sentinel-x'),
        }),
      );
      assert.equal(error.code, 401);
      // The client drops 401 bodies; the wire still carries a Status.
      const raw = await fetch(`${fake.url}/apis/argoproj.io/v1alpha1/namespaces/argo/workflows`);
      assert.equal(raw.status, 401);
      assert.equal(((await raw.json()) as Status).reason, 'Unauthorized');
      assert.deepEqual(fake.workflows, []);
    });

    it('answers 403 Forbidden like RBAC for creates in a denied namespace only', async () => {
      fake.denyCreate('payments');
      const error = await apiException(create('payments', workflow('kube-sentinel-x')));
      assert.equal(error.code, 403);
      assert.equal(statusOf(error).reason, 'Forbidden');
      assert.equal(
        statusOf(error).message,
        'workflows.argoproj.io is forbidden: User "system:serviceaccount:kube-sentinel:kube-sentinel" cannot create ' +
          'resource "workflows" in API group "argoproj.io" in the namespace "payments"',
      );
      await create('argo', workflow('kube-sentinel-x'));
      assert.deepEqual(
        fake.workflows.map((stored) => stored.metadata.namespace),
        ['argo'],
      );
    });

    it('answers SelfSubjectAccessReviews with allowed true, and false where creates are denied', async () => {
      fake.denyCreate('payments');
      const authorization = kc.makeApiClient(k8s.AuthorizationV1Api);
      const review = (namespace: string) =>
        authorization.createSelfSubjectAccessReview({
          body: {
            apiVersion: 'authorization.k8s.io/v1',
            kind: 'SelfSubjectAccessReview',
            spec: { resourceAttributes: { namespace, verb: 'create', group: 'argoproj.io', resource: 'workflows' } },
          },
        });
      const allowed = await review('argo');
      assert.equal(allowed.status?.allowed, true);
      assert.equal(allowed.spec.resourceAttributes?.namespace, 'argo');
      const denied = await review('payments');
      assert.equal(denied.status?.allowed, false);
    });

    it('answers SelfSubjectAccessReviews of a denied verb with allowed false, for that verb and namespace only', async () => {
      fake.deny('payments', 'watch');
      const authorization = kc.makeApiClient(k8s.AuthorizationV1Api);
      const allowed = async (namespace: string, verb: string) =>
        (
          await authorization.createSelfSubjectAccessReview({
            body: {
              apiVersion: 'authorization.k8s.io/v1',
              kind: 'SelfSubjectAccessReview',
              spec: { resourceAttributes: { namespace, verb, group: 'argoproj.io', resource: 'workflows' } },
            },
          })
        ).status?.allowed;
      assert.equal(await allowed('payments', 'watch'), false);
      assert.equal(await allowed('payments', 'list'), true);
      assert.equal(await allowed('payments', 'create'), true);
      assert.equal(await allowed('argo', 'watch'), true);
      fake.reset();
      assert.equal(await allowed('payments', 'watch'), true, 'reset forgets the denial');
    });
  });

  describe('fault injection', () => {
    it('answers the next create with 500 InternalError, then recovers', async () => {
      fake.failNext(1, { status: 500 });
      const error = await apiException(create('argo', workflow('kube-sentinel-x')));
      assert.equal(error.code, 500);
      assert.equal(statusOf(error).reason, 'InternalError');
      assert.deepEqual(fake.workflows, []);
      await create('argo', workflow('kube-sentinel-x'));
      assert.equal(fake.workflows.length, 1);
    });

    it('answers 429 TooManyRequests with Retry-After for as many creates as asked', async () => {
      fake.failNext(2, { status: 429, retryAfterSeconds: 2 });
      for (const attempt of [1, 2]) {
        const error = await apiException(create('argo', workflow('kube-sentinel-x')));
        assert.equal(error.code, 429, `attempt ${attempt}`);
        assert.equal(error.headers['retry-after'], '2');
        assert.equal(statusOf(error).reason, 'TooManyRequests');
        assert.equal(statusOf(error).details.retryAfterSeconds, 2);
      }
      await create('argo', workflow('kube-sentinel-x'));
      assert.equal(fake.workflows.length, 1);
    });

    it('refuses connections with ECONNREFUSED, which is not an ApiException, until it accepts them again', async () => {
      await fake.refuseConnections();
      const error: unknown = await create('argo', workflow('kube-sentinel-x')).then(
        () => assert.fail('expected the create to fail'),
        (failure: unknown) => failure,
      );
      // node-fetch's FetchError: name 'FetchError', type 'system', code and errno 'ECONNREFUSED',
      // message "request to http://127.0.0.1:PORT/apis/... failed, reason: connect ECONNREFUSED
      // 127.0.0.1:PORT". No status code, no body: callers must classify it by `code`.
      assert.ok(!(error instanceof k8s.ApiException));
      assert.ok(error instanceof Error);
      assert.equal(error.name, 'FetchError');
      assert.equal((error as Error & { code?: string }).code, 'ECONNREFUSED');
      assert.match(error.message, /ECONNREFUSED/);

      await fake.acceptConnections();
      await create('argo', workflow('kube-sentinel-x'));
      assert.equal(fake.workflows.length, 1);
    });

    // Without store: true taking effect at once, the latch below would wait out the whole delay.
    it('stores a delayed create at once with store: true, so a retry after the caller gave up gets 409', {
      timeout: 10_000,
    }, async () => {
      fake.delayNext(1, 60_000, { store: true });
      const caller = new AbortController();
      const late = create('argo', workflow('kube-sentinel-late'), withSignal(caller.signal));
      await fake.waitForWorkflows(1);
      caller.abort();
      const gaveUp: unknown = await late.then(
        () => assert.fail('expected the create to be aborted'),
        (failure: unknown) => failure,
      );
      // An aborted request is node-fetch's AbortError (name 'AbortError', type 'aborted').
      assert.ok(gaveUp instanceof Error && gaveUp.name === 'AbortError', String(gaveUp));

      const listed = await customObjects.listNamespacedCustomObject({
        group: 'argoproj.io',
        version: 'v1alpha1',
        namespace: 'argo',
        plural: 'workflows',
      });
      assert.deepEqual(
        listed.items.map((item: { metadata: { name: string } }) => item.metadata.name),
        ['kube-sentinel-late'],
      );
      const retry = await apiException(create('argo', workflow('kube-sentinel-late')));
      assert.equal(retry.code, 409);
    });

    it('holds a delayed create with store: false for the delay, then stores and answers it', async () => {
      fake.delayNext(1, 50, { store: false });
      const started = performance.now();
      const created = await create('argo', workflow('kube-sentinel-slow'));
      // Timers may fire up to a millisecond early; the point is that the answer was held.
      assert.ok(performance.now() - started >= 45, 'answered before the delay');
      assert.equal(created.metadata.name, 'kube-sentinel-slow');
      assert.deepEqual(
        fake.workflows.map((stored) => stored.metadata.name),
        ['kube-sentinel-slow'],
      );
    });
  });

  describe('reading', () => {
    it('gets a WorkflowTemplate that exists, and answers 404 NotFound for one that does not', async () => {
      fake.addWorkflowTemplate('argo', 'diagnose-pod');
      const template = await customObjects.getNamespacedCustomObject({
        group: 'argoproj.io',
        version: 'v1alpha1',
        namespace: 'argo',
        plural: 'workflowtemplates',
        name: 'diagnose-pod',
      });
      assert.equal(template.kind, 'WorkflowTemplate');
      assert.equal(template.metadata.name, 'diagnose-pod');

      const error = await apiException(
        customObjects.getNamespacedCustomObject({
          group: 'argoproj.io',
          version: 'v1alpha1',
          namespace: 'shop',
          plural: 'workflowtemplates',
          name: 'diagnose-pod',
        }),
      );
      assert.equal(error.code, 404);
      assert.equal(statusOf(error).reason, 'NotFound');
      assert.equal(statusOf(error).message, 'workflowtemplates.argoproj.io "diagnose-pod" not found');
    });

    it('gets a ClusterWorkflowTemplate that exists, and answers 404 for one that does not', async () => {
      fake.addClusterWorkflowTemplate('cluster-diagnose');
      const template = await customObjects.getClusterCustomObject({
        group: 'argoproj.io',
        version: 'v1alpha1',
        plural: 'clusterworkflowtemplates',
        name: 'cluster-diagnose',
      });
      assert.equal(template.kind, 'ClusterWorkflowTemplate');
      const error = await apiException(
        customObjects.getClusterCustomObject({
          group: 'argoproj.io',
          version: 'v1alpha1',
          plural: 'clusterworkflowtemplates',
          name: 'missing',
        }),
      );
      assert.equal(error.code, 404);
      assert.equal(statusOf(error).message, 'clusterworkflowtemplates.argoproj.io "missing" not found');
    });

    it('refuses to add a template the API server would reject', () => {
      assert.throws(
        () => fake.addWorkflowTemplate('argo', 'broken', { entryPoint: 'main' }),
        /spec\.entryPoint: unknown field/,
      );
    });

    it('lists Workflows of one namespace, filtered by label selector', async () => {
      await create('argo', workflow('kube-sentinel-a', { labels: { 'kube-sentinel.io/rule': 'oom' } }));
      await create('argo', workflow('kube-sentinel-b', { labels: { 'kube-sentinel.io/rule': 'crash' } }));
      await create('shop', workflow('kube-sentinel-c', { labels: { 'kube-sentinel.io/rule': 'oom' } }));
      const listed = await customObjects.listNamespacedCustomObject({
        group: 'argoproj.io',
        version: 'v1alpha1',
        namespace: 'argo',
        plural: 'workflows',
        labelSelector: 'kube-sentinel.io/rule=oom',
      });
      assert.equal(listed.kind, 'WorkflowList');
      assert.deepEqual(
        listed.items.map((item: { metadata: { name: string } }) => item.metadata.name),
        ['kube-sentinel-a'],
      );
    });

    it('serves version and API discovery including argoproj.io and authorization.k8s.io', async () => {
      const version = await kc.makeApiClient(k8s.VersionApi).getCode();
      assert.equal(version.gitVersion, 'v1.33.0');
      const groups = await kc.makeApiClient(k8s.ApisApi).getAPIVersions();
      assert.deepEqual(groups.groups.map((group) => group.preferredVersion?.groupVersion).sort(), [
        'argoproj.io/v1alpha1',
        'authorization.k8s.io/v1',
      ]);
    });

    it('answers unknown paths with a 404 Status', async () => {
      const response = await fetch(`${fake.url}/apis/argoproj.io/v1alpha1/namespaces/argo/cronworkflows`, {
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      assert.equal(response.status, 404);
      assert.equal(response.headers.get('content-type'), 'application/json');
      const status = (await response.json()) as Status;
      assert.equal(status.kind, 'Status');
      assert.equal(status.reason, 'NotFound');
    });
  });
});

describe('the fake Kubernetes API with validation off', () => {
  it('stores a Workflow with unknown fields', async () => {
    const fake = await startFakeKube({ validate: false });
    try {
      const response = await fetch(`${fake.url}/apis/argoproj.io/v1alpha1/namespaces/argo/workflows`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ...workflow('kube-sentinel-loose'), spec: { entryPoint: 'main' } }),
      });
      assert.equal(response.status, 201);
      assert.equal(fake.workflows[0]?.metadata.name, 'kube-sentinel-loose');
    } finally {
      await fake.close();
    }
  });
});
