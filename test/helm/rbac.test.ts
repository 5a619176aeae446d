/**
 * The receiver's RBAC must grant exactly what its code calls. The calls are not listed by hand:
 * the code runs against the fake API server — a submit (with its opt-out reads), `kube-sentinel
 * check` over rules that use a namespaced and a cluster-scoped template — and the requests the
 * server saw are turned into (API group, resource, verb, scope) and compared with the Role and
 * ClusterRole the chart renders. A ClusterRole's grant covers a call in any namespace.
 * The workflows' ClusterRole lets restarts evict, never delete (SPEC §11).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import pino from 'pino';
import { createKubeSubmitter, loadKubeConfig } from '../../src/kube/client.js';
import { WorkflowInformer } from '../../src/kube/informer.js';
import { OptOutCache } from '../../src/kube/opt-out.js';
import { MANAGED_SELECTOR } from '../../src/kube/workflow.js';
import { listWorkflows, patchWorkflow } from '../../src/kube/workflows.js';
import { firing, testApp, webhook } from '../support/app.js';
import { type FakeKube, startFakeKube } from '../support/fake-kube.js';
import { type KubeObject, renderChart } from '../support/helm.js';
import { writeKubeconfig } from '../support/kubeconfig.js';
import { CLI, REPO_ROOT } from '../support/receiver.js';

const WORKFLOW_NAMESPACE = 'argo';

/** `group/resource verb @scope`, scope being a namespace or `cluster`. */
type Permission = string;

function permissionOf(method: string, path: string, query: Record<string, string> = {}): Permission {
  // The core group: only Namespaces are read there, and a Namespace is cluster-scoped.
  if (method === 'GET' && /^\/api\/v1\/namespaces\/[^/]+$/.test(path)) return '/namespaces get @cluster';
  const match =
    /^\/apis\/([^/]+)\/[^/]+\/namespaces\/([^/]+)\/([^/]+)(?:\/([^/]+))?$/.exec(path) ??
    /^\/apis\/([^/]+)\/[^/]+\/()([^/]+)(?:\/([^/]+))?$/.exec(path);
  if (!match) throw new Error(`unexpected API call ${method} ${path}`);
  const [, group, namespace, resource, name] = match;
  const watching = query.watch === 'true' || query.watch === '1';
  const verb =
    method === 'POST'
      ? 'create'
      : method === 'GET'
        ? name
          ? 'get'
          : watching
            ? 'watch'
            : 'list'
        : method.toLowerCase();
  return `${group}/${resource} ${verb} @${namespace || 'cluster'}`;
}

function granted(objects: KubeObject[], component: 'receiver' | 'workflow' = 'receiver'): Set<Permission> {
  const permissions = new Set<Permission>();
  for (const object of objects) {
    const kind = object.kind as string;
    const metadata = object.metadata as { name: string; namespace?: string; labels?: Record<string, string> };
    if ((kind !== 'Role' && kind !== 'ClusterRole') || metadata.labels?.['app.kubernetes.io/component'] !== component)
      continue;
    const scope = kind === 'Role' ? metadata.namespace! : 'cluster';
    for (const rule of object.rules as { apiGroups: string[]; resources: string[]; verbs: string[] }[]) {
      for (const group of rule.apiGroups)
        for (const resource of rule.resources)
          for (const verb of rule.verbs) {
            permissions.add(`${group}/${resource} ${verb} @${scope}`);
          }
    }
  }
  return permissions;
}

/** A ClusterRole's grant covers the call in every namespace. */
function isGranted(call: Permission, permissions: Set<Permission>): boolean {
  return permissions.has(call) || permissions.has(call.replace(/@[^@]+$/, '@cluster'));
}

/** A grant is used when a call it covers was made. */
function isUsed(permission: Permission, calls: Set<Permission>): boolean {
  if (calls.has(permission)) return true;
  if (!permission.endsWith(' @cluster')) return false;
  const stem = permission.slice(0, -'@cluster'.length);
  return [...calls].some((call) => call.startsWith(stem));
}

describe('the receiver RBAC in the chart', () => {
  let kube: FakeKube;
  let called: Set<Permission>;
  before(async () => {
    kube = await startFakeKube({ token: 'k' });
    const dir = mkdtempSync(join(tmpdir(), 'ks-rbac-'));
    const kubeconfig = writeKubeconfig(dir, kube.url, 'k');
    kube.addWorkflowTemplate(WORKFLOW_NAMESPACE, 'diagnose-pod');
    kube.addClusterWorkflowTemplate('cluster-diagnose');

    // Submit: the pipeline reads the opt-out annotations (a pod name of no controller's shape:
    // the Namespace and all three kinds of workload), then creates a Workflow.
    const loaded = await loadKubeConfig({ kind: 'file', path: kubeconfig });
    const { app } = await testApp({
      submitter: await createKubeSubmitter({ kind: 'file', path: kubeconfig }),
      optOuts: (now) =>
        new OptOutCache({ request: loaded.request, logger: pino({ level: 'silent' }), timeoutMs: 5000, now }),
    });
    const res = await app.inject({
      method: 'POST',
      url: '/webhook/alertmanager',
      payload: webhook([
        firing({ alertname: 'A', namespace: 'shop', pod: 'standalone' }, { description: 'crashloop' }),
      ]),
    });
    assert.equal(res.json().decisions[0].outcome, 'submitted');

    // The closed loop (SPEC §9): a labelled LIST before the watcher has synced, the watcher's list
    // and watch, and the merge-patch that stops a Workflow.
    await listWorkflows(loaded.request, WORKFLOW_NAMESPACE, MANAGED_SELECTOR);
    const informer = new WorkflowInformer({
      request: loaded.request,
      watch: loaded.watch,
      namespace: WORKFLOW_NAMESPACE,
      onEvent: () => undefined,
    });
    informer.start();
    await informer.whenSynced();
    await kube.waitForWatches(1);
    await informer.stop();
    const [created] = kube.workflows;
    assert.ok(created);
    await patchWorkflow(loaded.request, WORKFLOW_NAMESPACE, created.metadata.name, { spec: { shutdown: 'Stop' } });

    // check (and /readyz --check-templates, which asks the same): templates of both scopes, access reviews.
    writeFileSync(
      join(dir, 'rules.yaml'),
      `
rules:
  - name: a
    match: {pattern: a}
    priority: P1
    remediation: {action: trigger-argo-workflow, params: {workflow_template: diagnose-pod}}
  - name: b
    match: {pattern: b}
    priority: P1
    remediation: {action: trigger-argo-workflow, params: {workflow_template: cluster-diagnose, cluster_scope: true}}
`,
    );
    const { stdout } = await promisify(execFile)(
      'node',
      [CLI, 'check', '--rules', join(dir, 'rules.yaml'), '--kubeconfig', kubeconfig],
      { cwd: REPO_ROOT, env: { PATH: process.env.PATH } },
    );
    assert.match(stdout, /5 passed, 0 failed/);
    called = new Set(
      kube.requests
        .filter(
          (r) =>
            (r.path.startsWith('/apis/') && !/^\/apis(\/[^/]+(\/[^/]+)?)?$/.test(r.path)) ||
            r.path.startsWith('/api/v1/'),
        )
        .map((r) => permissionOf(r.method, r.path, r.query)),
    );
  });
  after(() => kube.close());

  it('grants every call the code makes', async () => {
    const permissions = granted(await renderChart());
    for (const call of called) assert.ok(isGranted(call, permissions), `the chart must grant ${call}`);
  });

  it('grants nothing the code does not call (SPEC §8 adds list beside get on templates, get beside the watch, list and watch beside the opt-out reads)', async () => {
    const permissions = granted(await renderChart());
    const allowedExtra = new Set([
      `argoproj.io/workflowtemplates list @${WORKFLOW_NAMESPACE}`,
      'argoproj.io/clusterworkflowtemplates list @cluster',
      // SPEC §8 grants get beside list and watch on Workflows.
      `argoproj.io/workflows get @${WORKFLOW_NAMESPACE}`,
      // SPEC §8 grants the opt-out reads as get, list and watch; the receiver only gets.
      ...['/namespaces', 'apps/deployments', 'apps/statefulsets', 'apps/daemonsets'].flatMap((resource) => [
        `${resource} list @cluster`,
        `${resource} watch @cluster`,
      ]),
    ]);
    for (const permission of permissions) {
      assert.ok(
        isUsed(permission, called) || allowedExtra.has(permission),
        `the chart grants ${permission}, which the code never calls`,
      );
    }
    assert.deepEqual([...called].sort(), [
      '/namespaces get @cluster',
      'apps/daemonsets get @shop',
      'apps/deployments get @shop',
      'apps/statefulsets get @shop',
      'argoproj.io/clusterworkflowtemplates get @cluster',
      `argoproj.io/workflows create @${WORKFLOW_NAMESPACE}`,
      `argoproj.io/workflows list @${WORKFLOW_NAMESPACE}`,
      `argoproj.io/workflows patch @${WORKFLOW_NAMESPACE}`,
      `argoproj.io/workflows watch @${WORKFLOW_NAMESPACE}`,
      `argoproj.io/workflowtemplates get @${WORKFLOW_NAMESPACE}`,
      'authorization.k8s.io/selfsubjectaccessreviews create @cluster',
    ]);
  });
});

describe('the workflow ClusterRole in the chart', () => {
  let permissions: Set<Permission>;
  before(async () => {
    permissions = granted(await renderChart(), 'workflow');
  });

  it('lets the workflows evict pods and read the PodDisruptionBudgets that may refuse it', () => {
    for (const permission of [
      '/pods/eviction create @cluster',
      'policy/poddisruptionbudgets get @cluster',
      'policy/poddisruptionbudgets list @cluster',
    ]) {
      assert.ok(permissions.has(permission), `the chart must grant ${permission}`);
    }
  });

  it('lets them delete nothing, pods least of all: a restart evicts, so that budgets apply', () => {
    assert.ok(permissions.has('/pods get @cluster'), 'the workflow ClusterRole was found');
    assert.deepEqual(
      [...permissions].filter(
        (permission) => / (delete|deletecollection|\*) @/.test(permission) || permission.includes('*'),
      ),
      [],
    );
  });
});
