/**
 * `serve --clusters` as composed by startServer, in this process, against two fake Kubernetes API
 * servers (each validating Workflows against the Argo CRD): each alert's cluster label picks the
 * API server that gets its Workflow, the cluster is carried in keys, annotations, decisions,
 * remediations and metrics, and each cluster has its own closed loop.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { stringify } from 'yaml';
import { loadConfig } from '../src/config.js';
import { loadKubeConfig } from '../src/kube/kubeconfig.js';
import { keyHash, LabelKey, MANAGED_BY } from '../src/kube/workflow.js';
import { type RunningServer, startServer } from '../src/server.js';
import { crashLoopAlert, type DecisionView, type PostableAlert, post } from './support/cluster.js';
import { type FakeKube, type StoredWorkflow, startFakeKube } from './support/fake-kube.js';
import { writeKubeconfig } from './support/kubeconfig.js';
import { eventually } from './support/processes.js';

const RULES = `
rules:
  - name: crashloop
    match: {pattern: CrashLoop}
    priority: P2
    remediation:
      action: trigger-argo-workflow
      params: {workflow_template: diagnose-pod}
      cooldown: 10m
`;
const V2 = '/api/v2/alerts';

interface RemediationView {
  workflow: string;
  cluster?: string;
  state: string;
  cooldownKey: string;
}

const cleanup: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const step of cleanup.reverse()) await step();
});

/** Two fake API servers, a kubeconfig for each in its own folder, and the rules. */
async function twoClusters(): Promise<{ a: FakeKube; b: FakeKube; dir: string; rules: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'ks-clusters-'));
  const [a, b] = await Promise.all([startFakeKube({ token: 'token-a' }), startFakeKube({ token: 'token-b' })]);
  cleanup.push(
    () => a.close(),
    () => b.close(),
  );
  for (const [name, kube] of [
    ['a', a],
    ['b', b],
  ] as const) {
    kube.addWorkflowTemplate('argo', 'diagnose-pod');
    mkdirSync(join(dir, name));
    writeKubeconfig(join(dir, name), kube.url, `token-${name}`);
  }
  const rules = join(dir, 'rules.yaml');
  writeFileSync(rules, RULES);
  return { a, b, dir, rules };
}

async function serve(args: string[]): Promise<{ server: RunningServer; logs: Record<string, unknown>[] }> {
  const lines: string[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(line) > 0 });
  const config = loadConfig(['--port', '0', '--host', '127.0.0.1', ...args], {});
  const server = await startServer(config, {}, logger, { rulesWatch: { every: () => () => {} } });
  cleanup.push(() => server.close());
  return {
    server,
    get logs() {
      return lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    },
  };
}

async function decide(server: RunningServer, alert: PostableAlert): Promise<DecisionView & { cluster?: string }> {
  const answer = await post(server.url, V2, [alert]);
  assert.equal(answer.status, 200, JSON.stringify(answer));
  const [decision] = answer.decisions;
  assert.ok(decision);
  return decision;
}

async function remediations(server: RunningServer): Promise<RemediationView[]> {
  const res = await fetch(`${server.url}/v1/remediations?limit=1000`);
  assert.equal(res.status, 200);
  return ((await res.json()) as { remediations: RemediationView[] }).remediations;
}

const podOf = (workflows: StoredWorkflow[]) =>
  workflows.map((workflow) => workflow.spec.arguments?.parameters?.find((p) => p.name === 'pod')?.value);

describe('one receiver, two clusters (--clusters)', () => {
  let a: FakeKube;
  let b: FakeKube;
  let dir: string;
  let server: RunningServer;
  let logs: () => Record<string, unknown>[];

  before(async () => {
    ({ a, b, dir } = await twoClusters());
    const file = join(dir, 'clusters.yaml');
    writeFileSync(
      file,
      stringify({
        default: 'a',
        clusters: [
          { name: 'a', kubeconfig: 'a/kubeconfig' },
          { name: 'b', kubeconfig: 'b/kubeconfig' },
        ],
      }),
    );
    const served = await serve(['--rules', join(dir, 'rules.yaml'), '--clusters', file]);
    server = served.server;
    logs = () => served.logs;
    // Both clusters' watchers have listed and are watching.
    await Promise.all([a.waitForWatches(1), b.waitForWatches(1)]);
  });

  it('sends an alert labelled cluster: b to b’s API server only, and says so in the decision, the key, the annotation and the log line', async () => {
    const decision = await decide(
      server,
      crashLoopAlert({ namespace: 'shop', pod: 'only-b-7d4b9c8f6-x2x9z', cluster: 'b' }),
    );
    assert.equal(decision.outcome, 'submitted', JSON.stringify(decision));
    assert.equal(decision.cluster, 'b');
    assert.equal(decision.cooldownKey, 'b/crashloop:shop/only-b');
    assert.deepEqual(podOf(b.workflows), ['only-b-7d4b9c8f6-x2x9z']);
    assert.deepEqual(podOf(a.workflows), []);
    const [workflow] = b.workflows;
    assert.equal(workflow?.metadata.annotations?.['kube-sentinel.io/cluster'], 'b');
    assert.equal(workflow?.metadata.name, decision.workflow?.name);
    const line = logs().find((entry) => entry.msg === 'decision' && entry.workflow === decision.workflow?.name);
    assert.equal(line?.cluster, 'b');
  });

  it('sends an alert labelled cluster: a to a’s API server only', async () => {
    const decision = await decide(server, crashLoopAlert({ namespace: 'shop', pod: 'only-a-0', cluster: 'a' }));
    assert.equal(decision.outcome, 'submitted', JSON.stringify(decision));
    assert.equal(decision.cluster, 'a');
    assert.ok(podOf(a.workflows).includes('only-a-0'));
    assert.ok(!podOf(b.workflows).includes('only-a-0'));
  });

  it('sends an alert without the label to the default cluster', async () => {
    const decision = await decide(server, crashLoopAlert({ namespace: 'shop', pod: 'unlabelled-0' }));
    assert.equal(decision.outcome, 'submitted', JSON.stringify(decision));
    assert.equal(decision.cluster, 'a');
    assert.equal(decision.cooldownKey, 'a/crashloop:shop/unlabelled');
    assert.ok(podOf(a.workflows).includes('unlabelled-0'));
    assert.ok(!podOf(b.workflows).includes('unlabelled-0'));
  });

  it('refuses an alert for a cluster not configured as invalid_target naming it and the known clusters: nothing created anywhere, no cooldown held', async () => {
    const before = { a: a.workflows.length, b: b.workflows.length };
    const decision = await decide(server, crashLoopAlert({ namespace: 'shop', pod: 'nowhere-0', cluster: 'c' }));
    assert.equal(decision.outcome, 'invalid_target');
    assert.equal(decision.rule, 'crashloop');
    assert.match(
      decision.reason ?? '',
      /label "cluster" names cluster "c", which is not configured \(clusters: a, b\)/,
    );
    assert.equal(decision.cluster, undefined);
    assert.equal(decision.cooldownKey, undefined);
    assert.deepEqual({ a: a.workflows.length, b: b.workflows.length }, before);
    const held = (await (await fetch(`${server.url}/v1/cooldowns`)).json()) as { cooldowns: { key: string }[] };
    assert.deepEqual(
      held.cooldowns.filter((cooldown) => cooldown.key.includes('nowhere')),
      [],
    );
  });

  it('gives the same workload in two clusters two Workflows (two cooldowns), and the same one again in one cluster none more', async () => {
    const labels = { namespace: 'shop', pod: 'twin-7d4b9c8f6-x2x9z' };
    const inA = await decide(server, crashLoopAlert({ ...labels, cluster: 'a' }));
    const inB = await decide(server, crashLoopAlert({ ...labels, cluster: 'b' }));
    const againInB = await decide(server, crashLoopAlert({ ...labels, cluster: 'b', instance: 'another' }));
    assert.deepEqual(
      [inA.outcome, inB.outcome, againInB.outcome],
      ['submitted', 'submitted', 'cooldown'],
      JSON.stringify([inA, inB, againInB]),
    );
    assert.deepEqual([inA.cooldownKey, inB.cooldownKey], ['a/crashloop:shop/twin', 'b/crashloop:shop/twin']);
    assert.equal(podOf(a.workflows).filter((pod) => pod === labels.pod).length, 1);
    assert.equal(podOf(b.workflows).filter((pod) => pod === labels.pod).length, 1);
  });

  it('reads opt-out annotations from the alert’s own cluster: excluded where its Namespace opted out, submitted in the other', async () => {
    b.putObject({ kind: 'Namespace', name: 'frozen' }, { 'kube-sentinel.io/remediation': 'disabled' });
    a.putObject({ kind: 'Namespace', name: 'frozen' });
    const labels = { namespace: 'frozen', pod: 'ledger-0' };
    const inB = await decide(server, crashLoopAlert({ ...labels, cluster: 'b' }));
    assert.equal(inB.outcome, 'excluded', JSON.stringify(inB));
    assert.equal(inB.reason, 'Namespace frozen has kube-sentinel.io/remediation: disabled');
    assert.equal(inB.cluster, 'b');
    const inA = await decide(server, crashLoopAlert({ ...labels, cluster: 'a' }));
    assert.equal(inA.outcome, 'submitted', JSON.stringify(inA));
    assert.equal(b.requestsTo('/api/v1/namespaces/frozen'), 1);
    assert.equal(a.requestsTo('/api/v1/namespaces/frozen'), 1);
    assert.equal(b.requestsTo('/apis/apps/v1/namespaces/frozen/statefulsets/ledger'), 1, 'the pod’s StatefulSet too');
  });

  it('records what became of a Workflow in each cluster, with its cluster, and counts it by cluster', async () => {
    const decision = await decide(server, crashLoopAlert({ namespace: 'shop', pod: 'heals-0', cluster: 'b' }));
    const name = decision.workflow?.name ?? assert.fail('no workflow');
    b.setPhase('argo', name, 'Succeeded');
    const recorded = await eventually(
      async () => (await remediations(server)).find((r) => r.workflow === `b/argo/${name}` && r.state === 'succeeded'),
      'the remediation in b recorded as succeeded',
    );
    assert.equal(recorded.cluster, 'b');
    assert.equal(recorded.cooldownKey, 'b/crashloop:shop/heals');
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(metrics, /^kube_sentinel_remediations_total\{rule="crashloop",state="succeeded",cluster="b"\} 1$/m);
    assert.match(
      metrics,
      /^kube_sentinel_submissions_total\{template="diagnose-pod",result="created",code="201",cluster="b"\} \d+$/m,
    );
  });

  it('keeps two clusters’ Workflows of the same namespace and name apart: two remediations', async () => {
    const workflow = (cluster: string) => ({
      apiVersion: 'argoproj.io/v1alpha1',
      kind: 'Workflow',
      metadata: {
        name: 'kube-sentinel-same-name',
        namespace: 'argo',
        labels: { [LabelKey.ManagedBy]: MANAGED_BY, [LabelKey.Rule]: 'crashloop' },
        annotations: { 'kube-sentinel.io/rule': 'crashloop', 'kube-sentinel.io/cluster': cluster },
      },
      spec: { workflowTemplateRef: { name: 'diagnose-pod' } },
    });
    for (const [name, kube] of [
      ['a', a],
      ['b', b],
    ] as const) {
      const loaded = await loadKubeConfig({ kind: 'file', path: join(dir, name, 'kubeconfig') });
      await loaded.request('POST', '/apis/argoproj.io/v1alpha1/namespaces/argo/workflows', workflow(name));
      assert.ok(kube.getWorkflow('argo', 'kube-sentinel-same-name'));
    }
    a.setPhase('argo', 'kube-sentinel-same-name', 'Failed', { message: 'a failed' });
    b.setPhase('argo', 'kube-sentinel-same-name', 'Succeeded');
    const both = await eventually(async () => {
      const found = (await remediations(server)).filter((r) => r.workflow.endsWith('/argo/kube-sentinel-same-name'));
      return found.length === 2 && found.every((r) => r.state !== 'pending') ? found : undefined;
    }, 'both remediations recorded in their final states');
    assert.deepEqual(both.map((r) => [r.workflow, r.cluster, r.state]).sort(), [
      ['a/argo/kube-sentinel-same-name', 'a', 'failed'],
      ['b/argo/kube-sentinel-same-name', 'b', 'succeeded'],
    ]);
  });

  it('asks the alert’s own cluster for the key’s Workflows before a create (the cluster is the record Redis may have lost)', async () => {
    // A Workflow of the key that only cluster b has: created by another receiver, or before Redis forgot.
    const loaded = await loadKubeConfig({ kind: 'file', path: join(dir, 'b', 'kubeconfig') });
    await loaded.request('POST', '/apis/argoproj.io/v1alpha1/namespaces/argo/workflows', {
      apiVersion: 'argoproj.io/v1alpha1',
      kind: 'Workflow',
      metadata: {
        name: 'kube-sentinel-crashloop-remembered',
        namespace: 'argo',
        labels: { [LabelKey.ManagedBy]: MANAGED_BY, [LabelKey.KeyHash]: keyHash('b/crashloop:shop/recall') },
        annotations: { 'kube-sentinel.io/cluster': 'b', 'kube-sentinel.io/cooldown-key': 'b/crashloop:shop/recall' },
      },
      spec: { workflowTemplateRef: { name: 'diagnose-pod' } },
    });
    await eventually(
      async () => (await remediations(server)).find((r) => r.workflow === 'b/argo/kube-sentinel-crashloop-remembered'),
      'b’s watcher to have seen it',
    );
    const inB = await decide(server, crashLoopAlert({ namespace: 'shop', pod: 'recall-0', cluster: 'b' }));
    assert.equal(inB.outcome, 'cooldown', JSON.stringify(inB));
    assert.match(inB.reason ?? '', /kube-sentinel-crashloop-remembered was submitted .* ago \(found in the cluster\)/);
    // The same workload in a has no Workflow there: it is remediated.
    const inA = await decide(server, crashLoopAlert({ namespace: 'shop', pod: 'recall-0', cluster: 'a' }));
    assert.equal(inA.outcome, 'submitted', JSON.stringify(inA));
  });

  it('warns in /readyz, naming the cluster, and sets kube_sentinel_workflow_watch_healthy 0 for it while its watch fails', async () => {
    await b.refuseConnections();
    try {
      const warnings = await eventually(
        async () => {
          const body = (await (await fetch(`${server.url}/readyz`)).json()) as { warnings?: string[] };
          return body.warnings?.some((warning) => warning.startsWith('cluster b: ')) ? body.warnings : undefined;
        },
        'a /readyz warning about cluster b',
        20_000,
      );
      assert.ok(!warnings.some((warning) => warning.startsWith('cluster a: ')), warnings.join('\n'));
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      assert.match(metrics, /^kube_sentinel_workflow_watch_healthy\{workflow_namespace="argo",cluster="b"\} 0$/m);
      assert.match(metrics, /^kube_sentinel_workflow_watch_healthy\{workflow_namespace="argo",cluster="a"\} 1$/m);
    } finally {
      await b.acceptConnections();
    }
  });
});

describe('--clusters with --dry-run', () => {
  it('routes (an unknown cluster is still invalid_target) but creates nothing in any cluster', async () => {
    const { a, b, dir, rules } = await twoClusters();
    const file = join(dir, 'clusters.json');
    writeFileSync(
      file,
      JSON.stringify({
        label: 'k8s_cluster',
        default: 'a',
        clusters: [
          { name: 'a', kubeconfig: 'a/kubeconfig' },
          { name: 'b', kubeconfig: 'b/kubeconfig' },
        ],
      }),
    );
    const { server } = await serve(['--rules', rules, '--clusters', file, '--dry-run']);
    const toB = await decide(server, crashLoopAlert({ namespace: 'shop', pod: 'dry-0', k8s_cluster: 'b' }));
    assert.deepEqual([toB.outcome, toB.cluster, toB.cooldownKey], ['dry_run', 'b', 'b/crashloop:shop/dry']);
    const unknown = await decide(server, crashLoopAlert({ namespace: 'shop', pod: 'dry-0', k8s_cluster: 'z' }));
    assert.equal(unknown.outcome, 'invalid_target');
    assert.match(unknown.reason ?? '', /label "k8s_cluster" names cluster "z"/);
    assert.deepEqual([a.workflows.length, b.workflows.length], [0, 0]);
  });
});

describe('--clusters with --check-templates', () => {
  it('is not ready while a cluster lacks a template the rules use, naming that cluster', async () => {
    const { b, dir, rules } = await twoClusters();
    b.reset();
    const file = join(dir, 'clusters.yaml');
    writeFileSync(
      file,
      stringify({
        default: 'a',
        clusters: [
          { name: 'a', kubeconfig: 'a/kubeconfig' },
          { name: 'b', kubeconfig: 'b/kubeconfig' },
        ],
      }),
    );
    const { server } = await serve(['--rules', rules, '--clusters', file, '--check-templates']);
    const res = await fetch(`${server.url}/readyz`);
    assert.equal(res.status, 503);
    const body = JSON.stringify(await res.json());
    assert.match(body, /cluster b: WorkflowTemplate argo\/diagnose-pod does not exist/);
    assert.doesNotMatch(body, /cluster a:/);
  });
});

describe('without --clusters', () => {
  it('names no cluster anywhere: keys, Workflows, decisions, remediations and metric series are as before', async () => {
    const { a, rules, dir } = await twoClusters();
    const { server } = await serve(['--rules', rules, '--kubeconfig', join(dir, 'a', 'kubeconfig')]);
    const decision = await decide(server, crashLoopAlert({ namespace: 'shop', pod: 'single-0', cluster: 'b' }));
    assert.equal(decision.outcome, 'submitted', JSON.stringify(decision));
    assert.equal(decision.cluster, undefined);
    assert.equal(decision.cooldownKey, 'crashloop:shop/single');
    const [workflow] = a.workflows;
    assert.equal(workflow?.metadata.annotations?.['kube-sentinel.io/cluster'], undefined);
    a.setPhase('argo', workflow?.metadata.name ?? '', 'Succeeded');
    const recorded = await eventually(
      async () => (await remediations(server)).find((r) => r.state === 'succeeded'),
      'the remediation recorded',
    );
    assert.equal(recorded.workflow, `argo/${workflow?.metadata.name}`);
    assert.equal(recorded.cluster, undefined);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(
      metrics,
      /^kube_sentinel_submissions_total\{template="diagnose-pod",result="created",code="201"\} 1$/m,
    );
    assert.match(metrics, /^kube_sentinel_remediations_total\{rule="crashloop",state="succeeded"\} 1$/m);
    assert.doesNotMatch(metrics, /cluster=/);
  });
});
