import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { type FakeKube, startFakeKube } from '../support/fake-kube.js';
import { writeKubeconfig, writeProxyKubeconfig } from '../support/kubeconfig.js';
import { CLI, REPO_ROOT, startReceiver } from '../support/receiver.js';

const RULES = `
rules:
  - name: crashloop
    match: {pattern: "CrashLoopBackOff"}
    priority: P3
    remediation:
      action: trigger-argo-workflow
      params: {workflow_template: diagnose-pod}
  - name: oom
    match: {pattern: "OOMKilled"}
    priority: P2
    remediation:
      action: trigger-argo-workflow
      params: {workflow_template: diagnose-memory, namespace: ops}
  - name: shared
    match: {pattern: "shared"}
    priority: P4
    remediation:
      action: trigger-argo-workflow
      params: {workflow_template: cluster-diagnose, cluster_scope: true}
  - name: off
    enabled: false
    match: {pattern: "never"}
    priority: P4
    remediation:
      action: trigger-argo-workflow
      params: {workflow_template: not-installed}
`;

function run(cliArgs: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('node', [CLI, ...cliArgs], { cwd: REPO_ROOT, env: { PATH: process.env.PATH } }, (err, stdout, stderr) => {
      resolve({ status: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe('kube-sentinel check', () => {
  let kube: FakeKube;
  let dir: string;
  let args: string[];
  // Asynchronous on purpose: the fake API server runs in this process and must keep answering.
  const check = (extra: string[] = args) => run(['check', ...extra]);

  before(async () => {
    kube = await startFakeKube({ token: 'k' });
    dir = mkdtempSync(join(tmpdir(), 'ks-check-'));
    writeFileSync(join(dir, 'rules.yaml'), RULES);
    args = ['--rules', join(dir, 'rules.yaml'), '--kubeconfig', writeKubeconfig(dir, kube.url, 'k')];
  });
  after(() => kube.close());
  beforeEach(() => {
    kube.reset();
    kube.addWorkflowTemplate('argo', 'diagnose-pod');
    kube.addWorkflowTemplate('ops', 'diagnose-memory');
    kube.addClusterWorkflowTemplate('cluster-diagnose');
  });

  it('passes when every template exists and workflows may be created, watched and stopped in every target namespace', async () => {
    const result = await check();
    assert.equal(result.status, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /ok +WorkflowTemplate argo\/diagnose-pod \(rules: crashloop\)/);
    assert.match(result.stdout, /ok +WorkflowTemplate ops\/diagnose-memory/);
    assert.match(result.stdout, /ok +ClusterWorkflowTemplate cluster-diagnose/);
    assert.match(result.stdout, /ok +create workflows.argoproj.io in namespace argo/);
    assert.match(result.stdout, /ok +create workflows.argoproj.io in namespace ops/);
    assert.match(
      result.stdout,
      /ok +get, list, watch and patch workflows.argoproj.io in namespace argo \(rules: crashloop, shared\)/,
    );
    assert.match(result.stdout, /ok +get, list, watch and patch workflows.argoproj.io in namespace ops \(rules: oom\)/);
    assert.match(
      result.stdout,
      /ok +get namespaces, and deployments, statefulsets, daemonsets.apps in every namespace \(opt-out annotations\)/,
    );
    assert.match(result.stdout, /^8 passed, 0 failed$/m);
    assert.doesNotMatch(result.stdout, /not-installed/, 'disabled rules are not checked');
  });

  it('names the missing template and how to install it', async () => {
    kube.reset();
    kube.addWorkflowTemplate('argo', 'diagnose-pod');
    kube.addClusterWorkflowTemplate('cluster-diagnose');
    const result = await check();
    assert.equal(result.status, 1);
    assert.match(
      result.stdout,
      /FAIL +WorkflowTemplate ops\/diagnose-memory \(rules: oom\)\n +WorkflowTemplate ops\/diagnose-memory does not exist\n +fix: .*kubectl get workflowtemplates -n ops/,
    );
  });

  it('names the namespace where the receiver lacks permission, with the RBAC rule and the can-i command', async () => {
    kube.denyCreate('ops');
    const result = await check();
    assert.equal(result.status, 1);
    assert.match(result.stdout, /FAIL +create workflows.argoproj.io in namespace ops \(rules: oom\)/);
    assert.match(
      result.stdout,
      /fix: add a Role in ops with rules: \[\{apiGroups: \[argoproj.io\], resources: \[workflows\], verbs: \[create\]\}\]/,
    );
    assert.match(result.stdout, /kubectl auth can-i create workflows.argoproj.io -n ops/);
    assert.match(result.stdout, /^7 passed, 1 failed$/m);
  });

  it('names the verb the receiver may not use on workflows, what it is needed for, and the RBAC rule that grants it', async () => {
    kube.deny('ops', 'watch');
    const result = await check();
    assert.equal(result.status, 1);
    assert.match(
      result.stdout,
      /FAIL +get, list, watch and patch workflows.argoproj.io in namespace ops \(rules: oom\)\n +the receiver may not watch workflows in ops: it needs get, list and watch to follow what became of the Workflows it creates, and patch to stop one/,
    );
    assert.match(
      result.stdout,
      /fix: add to the receiver's Role in ops the rule \{apiGroups: \[argoproj.io\], resources: \[workflows\], verbs: \[get, list, watch, patch\]\}/,
    );
    assert.match(result.stdout, /verify: kubectl auth can-i watch workflows.argoproj.io -n ops --as=/);
    assert.match(result.stdout, /ok +create workflows.argoproj.io in namespace ops/);
    assert.match(result.stdout, /ok +get, list, watch and patch workflows.argoproj.io in namespace argo/);
    assert.match(result.stdout, /^7 passed, 1 failed$/m);
  });

  it('names every denied verb of a namespace in one finding, with a can-i command for each', async () => {
    kube.deny('argo', 'patch');
    kube.deny('argo', 'get');
    const result = await check();
    assert.equal(result.status, 1);
    assert.match(result.stdout, /the receiver may not get, patch workflows in argo:/);
    assert.match(
      result.stdout,
      /verify: for verb in get patch; do kubectl auth can-i \$verb workflows.argoproj.io -n argo --as=/,
    );
    assert.match(result.stdout, /^7 passed, 1 failed$/m);
  });

  it('names the opt-out reads the receiver may not make, why they matter, and the ClusterRole rules that grant them', async () => {
    kube.forbidReads('Deployment');
    const result = await check();
    assert.equal(result.status, 1);
    assert.match(
      result.stdout,
      /FAIL +get namespaces, and deployments, statefulsets, daemonsets.apps in every namespace \(opt-out annotations\)\n +the receiver may not get deployments.apps in every namespace: it reads the kube-sentinel.io\/remediation annotation there, and an alert whose Namespace or workload it cannot read is decided retry \(503\)/,
    );
    assert.match(
      result.stdout,
      /fix: add to the receiver's ClusterRole the rules .*\{apiGroups: \[apps\], resources: \[deployments, statefulsets, daemonsets\], verbs: \[get, list, watch\]\}.*verify: kubectl auth can-i get deployments.apps --all-namespaces --as=/,
    );
    assert.match(result.stdout, /^7 passed, 1 failed$/m);
  });

  it('says a cluster is needed when none is configured: one line naming what is missing, exit 2 (usage)', async () => {
    const result = await check(['--rules', join(dir, 'rules.yaml')]);
    assert.equal(result.status, 2, result.stdout + result.stderr);
    assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
    assert.match(result.stderr, /check needs a cluster: no --kubeconfig \(or KUBECONFIG\).*not a pod/);
    assert.equal(result.stdout, '');
  });

  it('exits 2 naming the kubeconfig when it cannot work', async () => {
    const broken = join(dir, 'broken-kubeconfig');
    writeFileSync(broken, 'apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\n');
    const result = await check(['--rules', join(dir, 'rules.yaml'), '--kubeconfig', broken]);
    assert.equal(result.status, 2, result.stdout + result.stderr);
    assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
    assert.match(result.stderr, /broken-kubeconfig: no current-context/);
  });

  it('works through kubectl proxy: a plain http:// server and a context without a user', async () => {
    const proxy = await startFakeKube();
    try {
      proxy.addWorkflowTemplate('argo', 'diagnose-pod');
      proxy.addWorkflowTemplate('ops', 'diagnose-memory');
      proxy.addClusterWorkflowTemplate('cluster-diagnose');
      const result = await check([
        '--rules',
        join(dir, 'rules.yaml'),
        '--kubeconfig',
        writeProxyKubeconfig(dir, proxy.url),
      ]);
      assert.equal(result.status, 0, result.stdout + result.stderr);
      assert.match(result.stdout, /^8 passed, 0 failed$/m);
      assert.equal(result.stderr, '', 'no warning: no credentials, and the proxy is on loopback');
    } finally {
      await proxy.close();
    }
  });
});

describe('kube-sentinel check --clusters', () => {
  let a: FakeKube;
  let b: FakeKube;
  let dir: string;
  let args: string[];

  before(async () => {
    [a, b] = await Promise.all([startFakeKube({ token: 'ka' }), startFakeKube({ token: 'kb' })]);
    dir = mkdtempSync(join(tmpdir(), 'ks-check-clusters-'));
    writeFileSync(join(dir, 'rules.yaml'), RULES);
    for (const [name, token] of [
      ['a', 'ka'],
      ['b', 'kb'],
    ] as const) {
      mkdirSync(join(dir, name));
      writeKubeconfig(join(dir, name), (name === 'a' ? a : b).url, token);
    }
    writeFileSync(
      join(dir, 'clusters.yaml'),
      'default: a\nclusters:\n  - {name: a, kubeconfig: a/kubeconfig}\n  - {name: b, kubeconfig: b/kubeconfig}\n',
    );
    args = ['check', '--rules', join(dir, 'rules.yaml'), '--clusters', join(dir, 'clusters.yaml')];
  });
  after(async () => {
    await a.close();
    await b.close();
  });
  beforeEach(() => {
    for (const kube of [a, b]) {
      kube.reset();
      kube.addWorkflowTemplate('argo', 'diagnose-pod');
      kube.addWorkflowTemplate('ops', 'diagnose-memory');
      kube.addClusterWorkflowTemplate('cluster-diagnose');
    }
  });

  it('reports each cluster by name: its API server, templates and permissions', async () => {
    const result = await run(args);
    assert.equal(result.status, 0, result.stdout + result.stderr);
    for (const [name, kube] of [
      ['a', a],
      ['b', b],
    ] as const) {
      assert.match(
        result.stdout,
        new RegExp(`ok +cluster ${name}: the API server ${kube.url} answers and serves argoproj.io/v1alpha1`),
      );
      assert.match(
        result.stdout,
        new RegExp(`ok +cluster ${name}: WorkflowTemplate ops/diagnose-memory \\(rules: oom\\)`),
      );
      assert.match(result.stdout, new RegExp(`ok +cluster ${name}: create workflows.argoproj.io in namespace ops`));
    }
    assert.match(result.stdout, /^clusters ok: a, b$/m);
    assert.match(result.stdout, /^18 passed, 0 failed$/m);
  });

  it('fails naming the cluster whose API server does not answer, and still checks the others', async () => {
    await b.refuseConnections();
    try {
      const result = await run(args);
      assert.equal(result.status, 1, result.stdout + result.stderr);
      assert.match(
        result.stdout,
        new RegExp(
          `FAIL +cluster b: the API server ${b.url} answers and serves argoproj.io/v1alpha1\\n +cannot reach the API server ${b.url}: .*ECONNREFUSED`,
        ),
      );
      assert.doesNotMatch(
        result.stdout,
        /cluster b: WorkflowTemplate/,
        'nothing more is asked of a cluster that does not answer',
      );
      assert.match(result.stdout, /ok +cluster a: WorkflowTemplate argo\/diagnose-pod/);
      assert.match(result.stdout, /^clusters failing: b$/m);
      assert.match(result.stdout, /^9 passed, 1 failed$/m);
    } finally {
      await b.acceptConnections();
    }
  });

  it('fails naming the cluster that lacks a template', async () => {
    b.reset();
    b.addWorkflowTemplate('argo', 'diagnose-pod');
    b.addClusterWorkflowTemplate('cluster-diagnose');
    const result = await run(args);
    assert.equal(result.status, 1, result.stdout + result.stderr);
    assert.match(result.stdout, /FAIL +cluster b: WorkflowTemplate ops\/diagnose-memory \(rules: oom\)/);
    assert.match(result.stdout, /ok +cluster a: WorkflowTemplate ops\/diagnose-memory/);
    assert.match(result.stdout, /^clusters failing: b$/m);
  });

  it('exits 2 with one line naming the clusters file, the field and the value when it is wrong', async () => {
    const file = join(dir, 'wrong-clusters.yaml');
    writeFileSync(
      file,
      'default: c\nclusters:\n  - {name: a, kubeconfig: a/kubeconfig}\n  - {name: b, kubeconfig: b/kubeconfig}\n',
    );
    const result = await run(['check', '--rules', join(dir, 'rules.yaml'), '--clusters', file]);
    assert.equal(result.status, 2, result.stdout + result.stderr);
    assert.equal(
      result.stderr,
      `kube-sentinel: invalid --clusters ${file}: default "c" is not one of the clusters (a, b)\n`,
    );
    assert.equal(result.stdout, '');
  });
});

describe('/readyz with --check-templates', () => {
  let kube: FakeKube;
  before(async () => {
    kube = await startFakeKube({ token: 'k' });
  });
  after(() => kube.close());

  it('is 503 naming a missing template, 200 once all exist', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ks-ready-'));
    writeFileSync(join(dir, 'rules.yaml'), RULES);
    const args = [
      '--port',
      '0',
      '--rules',
      join(dir, 'rules.yaml'),
      '--kubeconfig',
      writeKubeconfig(dir, kube.url, 'k'),
      '--check-templates',
    ];
    kube.addWorkflowTemplate('argo', 'diagnose-pod');
    kube.addClusterWorkflowTemplate('cluster-diagnose');
    const missing = await startReceiver(args);
    try {
      const res = await fetch(`${missing.url}/readyz`);
      assert.equal(res.status, 503);
      assert.match(JSON.stringify(await res.json()), /WorkflowTemplate ops\/diagnose-memory does not exist/);
    } finally {
      await missing.stop();
    }
    kube.addWorkflowTemplate('ops', 'diagnose-memory');
    const ready = await startReceiver(args);
    try {
      assert.equal((await fetch(`${ready.url}/readyz`)).status, 200);
    } finally {
      await ready.stop();
    }
  });
});
