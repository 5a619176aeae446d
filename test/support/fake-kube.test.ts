import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { get as httpGet, type IncomingHttpHeaders } from 'node:http';
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

    it('serves version and API discovery including apps, argoproj.io and authorization.k8s.io', async () => {
      const version = await kc.makeApiClient(k8s.VersionApi).getCode();
      assert.equal(version.gitVersion, 'v1.33.0');
      const groups = await kc.makeApiClient(k8s.ApisApi).getAPIVersions();
      assert.deepEqual(groups.groups.map((group) => group.preferredVersion?.groupVersion).sort(), [
        'apps/v1',
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
  describe('Namespaces and workloads, read for opt-out annotations', () => {
    const OPT_OUT = { 'kube-sentinel.io/remediation': 'disabled' };
    const core = () => kc.makeApiClient(k8s.CoreV1Api);
    const apps = () => kc.makeApiClient(k8s.AppsV1Api);

    it('gets a Namespace and each kind of workload with the annotations a test gave them', async () => {
      fake.putObject({ kind: 'Namespace', name: 'shop' }, OPT_OUT);
      fake.putObject({ kind: 'Deployment', namespace: 'shop', name: 'checkout' });
      fake.putObject({ kind: 'StatefulSet', namespace: 'shop', name: 'db' }, OPT_OUT);
      fake.putObject({ kind: 'DaemonSet', namespace: 'shop', name: 'agent' }, { team: 'infra' });

      const namespace = await core().readNamespace({ name: 'shop' });
      assert.equal(namespace.kind, 'Namespace');
      assert.deepEqual(namespace.metadata?.annotations, OPT_OUT);
      assert.equal(namespace.metadata?.labels?.['kubernetes.io/metadata.name'], 'shop');
      const deployment = await apps().readNamespacedDeployment({ namespace: 'shop', name: 'checkout' });
      assert.equal(deployment.kind, 'Deployment');
      assert.equal(deployment.metadata?.annotations, undefined);
      assert.equal(deployment.spec?.selector.matchLabels?.app, 'checkout');
      const statefulSet = await apps().readNamespacedStatefulSet({ namespace: 'shop', name: 'db' });
      assert.deepEqual(statefulSet.metadata?.annotations, OPT_OUT);
      const daemonSet = await apps().readNamespacedDaemonSet({ namespace: 'shop', name: 'agent' });
      assert.deepEqual(daemonSet.metadata?.annotations, { team: 'infra' });
    });

    it('answers 404 NotFound naming the resource as the API server does, in its group', async () => {
      fake.putObject({ kind: 'Deployment', namespace: 'shop', name: 'checkout' });
      const namespace = statusOf(await apiException(core().readNamespace({ name: 'shop' })));
      assert.equal(namespace.code, 404);
      assert.equal(namespace.reason, 'NotFound');
      assert.equal(namespace.message, 'namespaces "shop" not found');
      assert.deepEqual(namespace.details, { name: 'shop', kind: 'namespaces' });
      const elsewhere = statusOf(
        await apiException(apps().readNamespacedDeployment({ namespace: 'cart', name: 'checkout' })),
      );
      assert.equal(elsewhere.message, 'deployments.apps "checkout" not found');
      assert.deepEqual(elsewhere.details, { name: 'checkout', group: 'apps', kind: 'deployments' });
    });

    it('sets and removes annotations as kubectl annotate does, and deletes', async () => {
      const ref = { kind: 'Deployment', namespace: 'shop', name: 'checkout' } as const;
      const added = fake.putObject(ref, { team: 'payments' });
      const annotated = fake.annotate(ref, OPT_OUT);
      assert.deepEqual(annotated.metadata.annotations, { team: 'payments', ...OPT_OUT });
      assert.ok(Number(annotated.metadata.resourceVersion) > Number(added.metadata.resourceVersion));
      fake.annotate(ref, { 'kube-sentinel.io/remediation': null, team: null });
      assert.equal((await apps().readNamespacedDeployment(ref)).metadata?.annotations, undefined);
      assert.throws(() => fake.annotate({ kind: 'Namespace', name: 'cart' }, OPT_OUT), /no Namespace cart/);
      fake.deleteObject(ref);
      assert.equal(fake.getObject(ref), undefined);
      assert.equal((await apiException(apps().readNamespacedDeployment(ref))).code, 404);
    });

    it('lists Namespaces, and workloads of one namespace or of all', async () => {
      fake.putObject({ kind: 'Namespace', name: 'shop' });
      fake.putObject({ kind: 'Namespace', name: 'cart' });
      fake.putObject({ kind: 'Deployment', namespace: 'shop', name: 'checkout' });
      fake.putObject({ kind: 'Deployment', namespace: 'cart', name: 'basket' });
      fake.putObject({ kind: 'DaemonSet', namespace: 'shop', name: 'agent' });
      const names = (list: { items: { metadata?: { name?: string } }[] }) =>
        list.items.map((item) => item.metadata?.name).sort();
      assert.deepEqual(names(await core().listNamespace()), ['cart', 'shop']);
      assert.deepEqual(names(await apps().listNamespacedDeployment({ namespace: 'shop' })), ['checkout']);
      assert.deepEqual(names(await apps().listDeploymentForAllNamespaces()), ['basket', 'checkout']);
      assert.deepEqual(names(await apps().listNamespacedStatefulSet({ namespace: 'shop' })), []);
    });

    it('answers injected failures on reads of one kind until they are cleared, and counts requests per path', async () => {
      fake.putObject({ kind: 'Namespace', name: 'shop' });
      fake.putObject({ kind: 'Deployment', namespace: 'shop', name: 'checkout' });
      fake.failReads('Namespace', { status: 503, retryAfterSeconds: 2 });
      fake.failReads('Deployment', { status: 403 });
      const unavailable = await apiException(core().readNamespace({ name: 'shop' }));
      assert.equal(unavailable.code, 503);
      assert.equal(statusOf(unavailable).reason, 'ServiceUnavailable');
      assert.equal(unavailable.headers['retry-after'], '2');
      const denied = statusOf(
        await apiException(apps().readNamespacedDeployment({ namespace: 'shop', name: 'checkout' })),
      );
      assert.equal(denied.reason, 'Forbidden');
      assert.equal(
        denied.message,
        'deployments.apps "checkout" is forbidden: User "system:serviceaccount:kube-sentinel:kube-sentinel" ' +
          'cannot get resource "deployments" in API group "apps" in the namespace "shop"',
      );
      fake.failReads('Namespace', undefined);
      assert.equal((await core().readNamespace({ name: 'shop' })).metadata?.name, 'shop');
      assert.equal(fake.requestsTo('/api/v1/namespaces/shop'), 2);
      assert.equal(fake.requestsTo('/apis/apps/v1/namespaces/shop/deployments/checkout'), 1);
    });

    it('forbids reads of a kind as RBAC does: 403 worded at the cluster scope, and access reviews denied', async () => {
      fake.putObject({ kind: 'Namespace', name: 'shop' });
      fake.forbidReads('Namespace');
      const denied = statusOf(await apiException(core().readNamespace({ name: 'shop' })));
      assert.equal(denied.code, 403);
      assert.equal(
        denied.message,
        'namespaces "shop" is forbidden: User "system:serviceaccount:kube-sentinel:kube-sentinel" ' +
          'cannot get resource "namespaces" in API group "" at the cluster scope',
      );
      const authorization = kc.makeApiClient(k8s.AuthorizationV1Api);
      const allowed = async (attributes: k8s.V1ResourceAttributes) =>
        (
          await authorization.createSelfSubjectAccessReview({
            body: {
              apiVersion: 'authorization.k8s.io/v1',
              kind: 'SelfSubjectAccessReview',
              spec: { resourceAttributes: attributes },
            },
          })
        ).status?.allowed;
      assert.equal(await allowed({ verb: 'get', resource: 'namespaces', name: 'shop' }), false);
      assert.equal(await allowed({ verb: 'list', group: '', resource: 'namespaces' }), false);
      assert.equal(await allowed({ verb: 'get', group: 'apps', resource: 'deployments', namespace: 'shop' }), true);
      fake.reset();
      assert.equal(await allowed({ verb: 'get', resource: 'namespaces' }), true, 'reset forgets the denial');
    });

    it('refuses to change or watch them through the API', async () => {
      const headers = { authorization: `Bearer ${TOKEN}` };
      const post = await fetch(`${fake.url}/api/v1/namespaces`, { method: 'POST', headers, body: '{}' });
      assert.equal(post.status, 405);
      const watch = await fetch(`${fake.url}/apis/apps/v1/namespaces/shop/deployments?watch=true`, { headers });
      assert.equal(watch.status, 405);
      const pods = await fetch(`${fake.url}/api/v1/namespaces/shop/pods`, { headers });
      assert.equal(pods.status, 404);
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

/** A watch read as it arrives: its events so far, a latch for the next ones, and how it ended. */
interface OpenedWatch {
  status: number;
  headers: IncomingHttpHeaders;
  events: { type: string; object: Json }[];
  /** Resolves once at least `count` events have arrived. */
  received(count: number): Promise<{ type: string; object: Json }[]>;
  /** 'end' for a clean end of the stream, the error for a broken connection. */
  ended: Promise<'end' | Error>;
  close(): void;
}

function openWatch(fake: FakeKube, path: string, query: Record<string, string> = {}): Promise<OpenedWatch> {
  const url = new URL(path, fake.url);
  for (const [name, value] of Object.entries({ watch: 'true', ...query })) url.searchParams.set(name, value);
  return new Promise((resolve, reject) => {
    const request = httpGet(url, (response) => {
      const events: { type: string; object: Json }[] = [];
      let waiters: { count: number; resolve: (events: { type: string; object: Json }[]) => void }[] = [];
      let buffered = '';
      const ended = new Promise<'end' | Error>((settle) => {
        response.on('end', () => settle('end'));
        response.on('error', (error) => settle(error));
      });
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        buffered += chunk;
        const lines = buffered.split('\n');
        buffered = lines.pop() ?? '';
        for (const line of lines) if (line !== '') events.push(JSON.parse(line));
        const ready = waiters.filter((waiter) => events.length >= waiter.count);
        waiters = waiters.filter((waiter) => events.length < waiter.count);
        for (const waiter of ready) waiter.resolve([...events]);
      });
      resolve({
        status: response.statusCode ?? 0,
        headers: response.headers,
        events,
        received: (count) =>
          events.length >= count
            ? Promise.resolve([...events])
            : new Promise((settle) => waiters.push({ count, resolve: settle })),
        ended,
        close: () => request.destroy(),
      });
    });
    request.on('error', reject);
  });
}

const WORKFLOWS = '/apis/argoproj.io/v1alpha1/namespaces/argo/workflows';
const MANAGED = 'app.kubernetes.io/managed-by=kube-sentinel';

describe('the fake Kubernetes API, watched and patched', () => {
  let fake: FakeKube;
  const opened: OpenedWatch[] = [];

  const create = async (namespace: string, body: Json): Promise<Json> => {
    const response = await fetch(`${fake.url}/apis/argoproj.io/v1alpha1/namespaces/${namespace}/workflows`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    assert.equal(response.status, 201);
    return response.json();
  };
  const watch = async (path: string, query: Record<string, string> = {}): Promise<OpenedWatch> => {
    const result = await openWatch(fake, path, query);
    opened.push(result);
    return result;
  };
  const patch = (name: string, body: unknown, contentType = 'application/merge-patch+json', query = '') =>
    fetch(`${fake.url}${WORKFLOWS}/${name}${query}`, {
      method: 'PATCH',
      headers: { 'content-type': contentType },
      body: JSON.stringify(body),
    });

  before(async () => {
    fake = await startFakeKube({ now: () => NOW });
  });
  after(() => fake.close());
  beforeEach(() => {
    for (const watch of opened.splice(0)) watch.close();
    fake.reset();
  });

  describe('resource versions', () => {
    it('gives every change its own resourceVersion from one counter, and a list the counter as it stands', async () => {
      const a = await create('argo', workflow('kube-sentinel-a'));
      const b = await create('shop', workflow('kube-sentinel-b'));
      assert.ok(Number(b.metadata.resourceVersion) > Number(a.metadata.resourceVersion));
      const phased = fake.setPhase('argo', 'kube-sentinel-a', 'Running');
      assert.ok(Number(phased.metadata.resourceVersion) > Number(b.metadata.resourceVersion));
      assert.equal(fake.resourceVersion, phased.metadata.resourceVersion);
      const list = (await (await fetch(`${fake.url}${WORKFLOWS}`)).json()) as Json;
      assert.equal(list.metadata.resourceVersion, fake.resourceVersion);
      assert.deepEqual(list.items, [phased]);
    });

    it('serves a list in pages as of its first page, and refuses a page continued from before a compaction', async () => {
      for (const name of ['kube-sentinel-a', 'kube-sentinel-b', 'kube-sentinel-c'])
        await create('argo', workflow(name));
      const first = (await (await fetch(`${fake.url}${WORKFLOWS}?limit=2`)).json()) as Json;
      assert.deepEqual(
        first.items.map((item: Json) => item.metadata.name),
        ['kube-sentinel-a', 'kube-sentinel-b'],
      );
      assert.equal(first.metadata.remainingItemCount, 1);
      fake.setPhase('argo', 'kube-sentinel-c', 'Running');
      const rest = (await (
        await fetch(`${fake.url}${WORKFLOWS}?limit=2&continue=${first.metadata.continue}`)
      ).json()) as Json;
      assert.equal(rest.metadata.resourceVersion, first.metadata.resourceVersion);
      assert.equal(rest.metadata.continue, undefined);
      assert.equal(rest.items[0].status, undefined, 'the page shows the list as it was');

      const again = (await (await fetch(`${fake.url}${WORKFLOWS}?limit=1`)).json()) as Json;
      fake.setPhase('argo', 'kube-sentinel-c', 'Succeeded');
      fake.compactHistory();
      const expired = await fetch(`${fake.url}${WORKFLOWS}?limit=1&continue=${again.metadata.continue}`);
      assert.equal(expired.status, 410);
      assert.equal(((await expired.json()) as Status).reason, 'Expired');
    });
  });

  describe('watching Workflows', () => {
    it('starts without a resourceVersion with ADDED for every selected Workflow, then streams each change as a line of JSON', async () => {
      const a = await create('argo', workflow('kube-sentinel-a'));
      const stream = await watch(WORKFLOWS, { labelSelector: MANAGED });
      assert.equal(stream.status, 200);
      assert.equal(stream.headers['content-type'], 'application/json');
      assert.equal(stream.headers['transfer-encoding'], 'chunked');
      assert.deepEqual(await stream.received(1), [{ type: 'ADDED', object: a }]);

      const b = await create('argo', workflow('kube-sentinel-b'));
      const running = fake.setPhase('argo', 'kube-sentinel-a', 'Running');
      const deleted = fake.deleteWorkflow('argo', 'kube-sentinel-b');
      assert.ok(Number(deleted.metadata.resourceVersion) > Number(running.metadata.resourceVersion));
      assert.deepEqual(await stream.received(4), [
        { type: 'ADDED', object: a },
        { type: 'ADDED', object: b },
        { type: 'MODIFIED', object: running },
        { type: 'DELETED', object: deleted },
      ]);
      assert.deepEqual(
        fake.requests.filter((request) => request.query.watch).map((request) => request.query),
        [{ watch: 'true', labelSelector: MANAGED }],
      );
    });

    it('treats resourceVersion "0" like none, and watch=1 like watch=true', async () => {
      const a = await create('argo', workflow('kube-sentinel-a'));
      const stream = await watch(WORKFLOWS, { watch: '1', resourceVersion: '0' });
      assert.deepEqual(await stream.received(1), [{ type: 'ADDED', object: a }]);
    });

    it('replays only the changes strictly after a resourceVersion, of the namespace, matching the selector', async () => {
      const a = await create('argo', workflow('kube-sentinel-a'));
      const since = a.metadata.resourceVersion;
      const b = await create('argo', workflow('kube-sentinel-b'));
      await create('shop', workflow('kube-sentinel-c'));
      const unlabelled = workflow('kube-sentinel-d');
      unlabelled.metadata.labels = {};
      await create('argo', unlabelled);
      const running = fake.setPhase('argo', 'kube-sentinel-a', 'Running');
      const stream = await watch(WORKFLOWS, { labelSelector: MANAGED, resourceVersion: since });
      assert.deepEqual(await stream.received(2), [
        { type: 'ADDED', object: b },
        { type: 'MODIFIED', object: running },
      ]);
      fake.setPhase('argo', 'kube-sentinel-d', 'Running');
      fake.setPhase('shop', 'kube-sentinel-c', 'Running');
      const succeeded = fake.setPhase('argo', 'kube-sentinel-a', 'Succeeded');
      assert.deepEqual((await stream.received(3))[2], { type: 'MODIFIED', object: succeeded });
    });

    it('watches every namespace at /apis/argoproj.io/v1alpha1/workflows', async () => {
      await create('argo', workflow('kube-sentinel-a'));
      const stream = await watch('/apis/argoproj.io/v1alpha1/workflows', { resourceVersion: fake.resourceVersion });
      const c = await create('shop', workflow('kube-sentinel-c'));
      const running = fake.setPhase('argo', 'kube-sentinel-a', 'Running');
      assert.deepEqual(await stream.received(2), [
        { type: 'ADDED', object: c },
        { type: 'MODIFIED', object: running },
      ]);
    });

    it('sends DELETED when a Workflow stops matching the selector and ADDED when it comes to match', async () => {
      await create('argo', workflow('kube-sentinel-a'));
      const stream = await watch(WORKFLOWS, { labelSelector: MANAGED, resourceVersion: fake.resourceVersion });
      await patch('kube-sentinel-a', { metadata: { labels: { 'app.kubernetes.io/managed-by': null } } });
      await patch('kube-sentinel-a', { metadata: { labels: { 'app.kubernetes.io/managed-by': 'kube-sentinel' } } });
      assert.deepEqual(
        (await stream.received(2)).map((event) => event.type),
        ['DELETED', 'ADDED'],
      );
    });

    it('sends a BOOKMARK carrying only the resourceVersion, to watches that allow bookmarks', async () => {
      const quiet = await watch(WORKFLOWS, { resourceVersion: fake.resourceVersion });
      const stream = await watch(WORKFLOWS, { resourceVersion: fake.resourceVersion, allowWatchBookmarks: 'true' });
      await create('shop', workflow('kube-sentinel-c'));
      fake.bookmark();
      assert.deepEqual(await stream.received(1), [
        {
          type: 'BOOKMARK',
          object: {
            kind: 'Workflow',
            apiVersion: 'argoproj.io/v1alpha1',
            metadata: { resourceVersion: fake.resourceVersion },
          },
        },
      ]);
      await create('argo', workflow('kube-sentinel-a'));
      assert.deepEqual(
        (await quiet.received(1)).map((event) => event.type),
        ['ADDED'],
      );
    });

    it('ends the stream cleanly after timeoutSeconds', async () => {
      const stream = await watch(WORKFLOWS, { timeoutSeconds: '1' });
      assert.equal(fake.openWatches, 1);
      assert.equal(await stream.ended, 'end');
      assert.equal(fake.openWatches, 0);
    });

    it('ends every stream cleanly on endWatches', async () => {
      const stream = await watch(WORKFLOWS);
      fake.endWatches();
      assert.equal(await stream.ended, 'end');
    });

    it('drops every open watch connection abruptly on dropWatches, and counts the open ones', async () => {
      const first = await watch(WORKFLOWS);
      const second = await watch('/apis/argoproj.io/v1alpha1/workflows');
      assert.equal(fake.openWatches, 2);
      fake.dropWatches();
      assert.equal(fake.openWatches, 0);
      for (const stream of [first, second]) {
        const ended = await stream.ended;
        assert.ok(ended instanceof Error, `expected a broken connection, got ${String(ended)}`);
      }
      const waited = fake.waitForWatches(1);
      await watch(WORKFLOWS);
      await waited;
      assert.equal(fake.openWatches, 1);
    });

    it('answers a watch from a compacted resourceVersion with 200, one ERROR event 410 Expired, and the end', async () => {
      const a = await create('argo', workflow('kube-sentinel-a'));
      await create('argo', workflow('kube-sentinel-b'));
      fake.compactHistory();
      const compactedAt = fake.resourceVersion;
      const stream = await watch(WORKFLOWS, { resourceVersion: a.metadata.resourceVersion });
      assert.equal(stream.status, 200);
      assert.equal(await stream.ended, 'end');
      assert.deepEqual(stream.events, [
        {
          type: 'ERROR',
          object: {
            kind: 'Status',
            apiVersion: 'v1',
            metadata: {},
            status: 'Failure',
            message: `too old resource version: ${a.metadata.resourceVersion} (${compactedAt})`,
            reason: 'Expired',
            details: {},
            code: 410,
          },
        },
      ]);
      const current = await watch(WORKFLOWS, { resourceVersion: compactedAt });
      const c = await create('argo', workflow('kube-sentinel-c'));
      assert.deepEqual(await current.received(1), [{ type: 'ADDED', object: c }]);
    });

    it('answers it with a plain HTTP 410 Status when expiredWatches is "status"', async () => {
      const a = await create('argo', workflow('kube-sentinel-a'));
      await create('argo', workflow('kube-sentinel-b'));
      fake.compactHistory();
      fake.expiredWatches = 'status';
      const response = await fetch(`${fake.url}${WORKFLOWS}?watch=true&resourceVersion=${a.metadata.resourceVersion}`);
      assert.equal(response.status, 410);
      const status = (await response.json()) as Status;
      assert.equal(status.reason, 'Expired');
      assert.match(status.message, /^too old resource version: \d+ \(\d+\)$/);
    });

    it('forgets the history on reset: a watch from before it is too old', async () => {
      const a = await create('argo', workflow('kube-sentinel-a'));
      const stream = await watch(WORKFLOWS);
      fake.reset();
      assert.ok((await stream.ended) instanceof Error);
      const late = await watch(WORKFLOWS, { resourceVersion: a.metadata.resourceVersion });
      assert.equal((await late.received(1))[0]?.object.code, 410);
    });

    it('is understood by @kubernetes/client-node’s Watch', async () => {
      const kc = new k8s.KubeConfig();
      const dir = mkdtempSync(join(tmpdir(), 'fake-kube-watch-'));
      try {
        kc.loadFromFile(writeKubeconfig(dir, fake.url));
        const seen: string[] = [];
        let done: (error: unknown) => void = () => {};
        const finished = new Promise((resolve) => {
          done = resolve;
        });
        let arrived: () => void = () => {};
        const both = new Promise<void>((resolve) => {
          arrived = resolve;
        });
        await new k8s.Watch(kc).watch(
          WORKFLOWS,
          { labelSelector: MANAGED, resourceVersion: fake.resourceVersion, allowWatchBookmarks: true },
          (type, object: Json) => {
            seen.push(`${type} ${object.metadata.name ?? object.metadata.resourceVersion}`);
            if (seen.length === 2) arrived();
          },
          (error) => done(error),
        );
        await fake.waitForWatches(1);
        await create('argo', workflow('kube-sentinel-a'));
        fake.bookmark();
        await both;
        assert.deepEqual(seen, ['ADDED kube-sentinel-a', `BOOKMARK ${fake.resourceVersion}`]);
        fake.dropWatches();
        await finished;
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe('merge-patching a Workflow', () => {
    it('merges nested objects, deletes what is null, bumps the resourceVersion and sends MODIFIED', async () => {
      const body = workflow('kube-sentinel-a');
      body.spec.suspend = true;
      const created = await create('argo', body);
      const stream = await watch(WORKFLOWS, { resourceVersion: fake.resourceVersion });
      const response = await patch('kube-sentinel-a', {
        metadata: { annotations: { 'kube-sentinel.io/stopped': 'approval expired' } },
        spec: { shutdown: 'Stop', suspend: null },
      });
      assert.equal(response.status, 200);
      const patched = (await response.json()) as Json;
      assert.equal(patched.spec.shutdown, 'Stop');
      assert.equal(patched.spec.suspend, undefined);
      assert.deepEqual(patched.spec.workflowTemplateRef, created.spec.workflowTemplateRef);
      assert.deepEqual(patched.metadata.labels, created.metadata.labels);
      assert.deepEqual(patched.metadata.annotations, { 'kube-sentinel.io/stopped': 'approval expired' });
      assert.equal(patched.metadata.uid, created.metadata.uid);
      assert.equal(patched.metadata.generation, 2);
      assert.ok(Number(patched.metadata.resourceVersion) > Number(created.metadata.resourceVersion));
      assert.deepEqual(fake.getWorkflow('argo', 'kube-sentinel-a'), patched);
      assert.deepEqual(await stream.received(1), [{ type: 'MODIFIED', object: patched }]);
    });

    it('changes nothing, and sends nothing, for a patch that changes nothing', async () => {
      const created = await create('argo', workflow('kube-sentinel-a'));
      const stream = await watch(WORKFLOWS, { resourceVersion: fake.resourceVersion });
      const response = await patch('kube-sentinel-a', { spec: { workflowTemplateRef: { name: 'diagnose-pod' } } });
      assert.equal(((await response.json()) as Json).metadata.resourceVersion, created.metadata.resourceVersion);
      const later = await create('argo', workflow('kube-sentinel-b'));
      assert.deepEqual(await stream.received(1), [{ type: 'ADDED', object: later }]);
    });

    it('refuses a strategic merge patch with 415, as for every custom resource', async () => {
      await create('argo', workflow('kube-sentinel-a'));
      const response = await patch(
        'kube-sentinel-a',
        { spec: { shutdown: 'Stop' } },
        'application/strategic-merge-patch+json',
      );
      assert.equal(response.status, 415);
      const status = (await response.json()) as Status;
      assert.equal(status.reason, 'UnsupportedMediaType');
      assert.match(status.message, /accepted media types include: .*application\/merge-patch\+json/);
      assert.equal(fake.getWorkflow('argo', 'kube-sentinel-a')?.spec.suspend, undefined);
      const jsonPatch = await patch(
        'kube-sentinel-a',
        [{ op: 'add', path: '/spec/shutdown', value: 'Stop' }],
        'application/json-patch+json',
      );
      assert.equal(jsonPatch.status, 415);
    });

    it('answers 404 NotFound for a Workflow that does not exist', async () => {
      const response = await patch('kube-sentinel-missing', { spec: { shutdown: 'Stop' } });
      assert.equal(response.status, 404);
      assert.equal(
        ((await response.json()) as Status).message,
        'workflows.argoproj.io "kube-sentinel-missing" not found',
      );
    });

    it('answers 422 Invalid for a result the schema refuses, and stores nothing', async () => {
      const created = await create('argo', workflow('kube-sentinel-a'));
      const response = await patch('kube-sentinel-a', { spec: { shutdwn: 'Stop' } });
      assert.equal(response.status, 422);
      const status = (await response.json()) as Status;
      assert.equal(status.reason, 'Invalid');
      assert.deepEqual(
        status.details.causes?.map((cause) => cause.field),
        ['spec.shutdwn'],
      );
      assert.deepEqual(fake.getWorkflow('argo', 'kube-sentinel-a'), created);
    });

    it('answers 409 Conflict when the patch names a resourceVersion that is no longer current', async () => {
      const created = await create('argo', workflow('kube-sentinel-a'));
      fake.setPhase('argo', 'kube-sentinel-a', 'Running');
      const stale = await patch('kube-sentinel-a', {
        metadata: { resourceVersion: created.metadata.resourceVersion },
        spec: { shutdown: 'Stop' },
      });
      assert.equal(stale.status, 409);
      assert.equal(((await stale.json()) as Status).reason, 'Conflict');
      const current = await patch('kube-sentinel-a', {
        metadata: { resourceVersion: fake.resourceVersion },
        spec: { shutdown: 'Stop' },
      });
      assert.equal(current.status, 200);
    });

    it('answers 400 for a patch that renames the Workflow, and stores nothing on a dry run', async () => {
      await create('argo', workflow('kube-sentinel-a'));
      const renamed = await patch('kube-sentinel-a', { metadata: { name: 'other' } });
      assert.equal(renamed.status, 400);
      const dry = await patch('kube-sentinel-a', { spec: { shutdown: 'Stop' } }, undefined, '?dryRun=All');
      assert.equal(((await dry.json()) as Json).spec.shutdown, 'Stop');
      assert.equal(fake.getWorkflow('argo', 'kube-sentinel-a')?.spec.shutdown, undefined);
    });

    it('deletes a Workflow through the API, which watches see', async () => {
      await create('argo', workflow('kube-sentinel-a'));
      const stream = await watch(WORKFLOWS, { resourceVersion: fake.resourceVersion });
      const response = await fetch(`${fake.url}${WORKFLOWS}/kube-sentinel-a`, { method: 'DELETE' });
      assert.equal(response.status, 200);
      assert.equal(fake.getWorkflow('argo', 'kube-sentinel-a'), undefined);
      assert.equal((await stream.received(1))[0]?.type, 'DELETED');
    });
  });

  describe('playing the Argo controller and people', () => {
    it('sets the phase with Argo’s labels and times: completed "false" while running, "true" once final', async () => {
      await create('argo', workflow('kube-sentinel-a'));
      const pending = fake.setPhase('argo', 'kube-sentinel-a', 'Pending');
      assert.deepEqual(pending.status, { phase: 'Pending', startedAt: '2025-06-01T12:00:00Z' });
      assert.equal(pending.metadata.labels?.['workflows.argoproj.io/phase'], 'Pending');
      assert.equal(pending.metadata.labels?.['workflows.argoproj.io/completed'], 'false');
      const failed = fake.setPhase('argo', 'kube-sentinel-a', 'Failed', { message: 'child "restart" failed' });
      assert.deepEqual(failed.status, {
        phase: 'Failed',
        startedAt: '2025-06-01T12:00:00Z',
        message: 'child "restart" failed',
        finishedAt: '2025-06-01T12:00:00Z',
      });
      assert.equal(failed.metadata.labels?.['workflows.argoproj.io/phase'], 'Failed');
      assert.equal(failed.metadata.labels?.['workflows.argoproj.io/completed'], 'true');
      assert.equal(failed.metadata.labels?.['app.kubernetes.io/managed-by'], 'kube-sentinel');
      assert.throws(
        () => fake.setPhase('argo', 'kube-sentinel-missing', 'Running'),
        /no Workflow argo\/kube-sentinel-missing/,
      );
    });

    it('resumes a suspended Workflow, naming the actor, and sends MODIFIED', async () => {
      const body = workflow('kube-sentinel-a');
      body.spec.suspend = true;
      await create('argo', body);
      const stream = await watch(WORKFLOWS, { resourceVersion: fake.resourceVersion });
      const resumed = fake.resume('argo', 'kube-sentinel-a', 'jane.doe');
      assert.equal(resumed.spec.suspend, undefined);
      assert.equal(resumed.metadata.labels?.['workflows.argoproj.io/actor'], 'jane.doe');
      assert.deepEqual(await stream.received(1), [{ type: 'MODIFIED', object: resumed }]);
      assert.throws(() => fake.resume('argo', 'kube-sentinel-a', 'jane doe@example.com'), /invalid actor label/);
    });

    it('hands out copies: changing what getWorkflow returned changes nothing stored', async () => {
      await create('argo', workflow('kube-sentinel-a'));
      const copy = fake.getWorkflow('argo', 'kube-sentinel-a');
      assert.ok(copy);
      copy.spec.suspend = true;
      assert.equal(fake.getWorkflow('argo', 'kube-sentinel-a')?.spec.suspend, undefined);
      assert.equal(fake.getWorkflow('argo', 'kube-sentinel-missing'), undefined);
    });
  });
});
