/**
 * SPEC §10, one receiver and many clusters, end to end: the built `kube-sentinel serve --clusters`
 * against two fake Kubernetes API servers (which validate every Workflow against the Argo CRD and
 * play Argo's controller).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { crashLoopAlert, type DecisionView, type PostableAlert, post } from '../support/cluster.js';
import { type FakeKube, startFakeKube } from '../support/fake-kube.js';
import { writeKubeconfig } from '../support/kubeconfig.js';
import { eventually } from '../support/processes.js';
import { CLI, REPO_ROOT, type Receiver, startReceiver } from '../support/receiver.js';

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
const TOKEN = 'many-clusters-token';

describe('kube-sentinel serve --clusters (the built binary, two API servers)', () => {
  let east: FakeKube;
  let west: FakeKube;
  let dir: string;
  let receiver: Receiver;

  const decide = async (alert: PostableAlert): Promise<DecisionView & { cluster?: string }> => {
    const answer = await post(receiver.url, '/api/v2/alerts', [alert], TOKEN);
    assert.equal(answer.status, 200, JSON.stringify(answer));
    return answer.decisions[0] ?? assert.fail('no decision');
  };

  before(async () => {
    [east, west] = await Promise.all([startFakeKube({ token: 'k-east' }), startFakeKube({ token: 'k-west' })]);
    dir = mkdtempSync(join(tmpdir(), 'ks-many-clusters-'));
    writeFileSync(join(dir, 'rules.yaml'), RULES);
    for (const [name, kube] of [
      ['east', east],
      ['west', west],
    ] as const) {
      kube.addWorkflowTemplate('argo', 'diagnose-pod');
      mkdirSync(join(dir, name));
      writeKubeconfig(join(dir, name), kube.url, `k-${name}`);
    }
    writeFileSync(
      join(dir, 'clusters.yaml'),
      [
        'label: k8s_cluster',
        'default: east',
        'clusters:',
        '  - name: east',
        '    kubeconfig: east/kubeconfig',
        '  - name: west',
        '    kubeconfig: west/kubeconfig',
        '    context: fake-kube',
        '',
      ].join('\n'),
    );
    receiver = await startReceiver(['--port', '0', '--rules', join(dir, 'rules.yaml'), '--auth-token', TOKEN], {
      KUBE_SENTINEL_CLUSTERS: join(dir, 'clusters.yaml'),
    });
  });
  after(async () => {
    await receiver?.stop();
    await east.close();
    await west.close();
  });

  it('creates each alert’s Workflow in the cluster its label names, the default without one, and none for an unknown cluster', async () => {
    const toWest = await decide(crashLoopAlert({ namespace: 'shop', pod: 'api-0', k8s_cluster: 'west' }));
    const toEast = await decide(crashLoopAlert({ namespace: 'shop', pod: 'api-0' }));
    const toNowhere = await decide(crashLoopAlert({ namespace: 'shop', pod: 'api-0', k8s_cluster: 'north' }));
    assert.deepEqual(
      [toWest, toEast].map((decision) => [decision.outcome, decision.cluster, decision.cooldownKey]),
      [
        ['submitted', 'west', 'west/crashloop:shop/api'],
        ['submitted', 'east', 'east/crashloop:shop/api'],
      ],
    );
    assert.equal(toNowhere.outcome, 'invalid_target');
    assert.match(toNowhere.reason ?? '', /names cluster "north", which is not configured \(clusters: east, west\)/);
    assert.deepEqual(
      west.workflows.map((workflow) => [
        workflow.metadata.name,
        workflow.metadata.annotations?.['kube-sentinel.io/cluster'],
      ]),
      [[toWest.workflow?.name, 'west']],
    );
    assert.deepEqual(
      east.workflows.map((workflow) => [
        workflow.metadata.name,
        workflow.metadata.annotations?.['kube-sentinel.io/cluster'],
      ]),
      [[toEast.workflow?.name, 'east']],
    );
  });

  it('records a Workflow’s outcome in its own cluster, the cluster in the remediation', async () => {
    const decision = await decide(crashLoopAlert({ namespace: 'shop', pod: 'db-0', k8s_cluster: 'west' }));
    const name = decision.workflow?.name ?? assert.fail('no workflow');
    west.setPhase('argo', name, 'Succeeded');
    const recorded = await eventually(async () => {
      const res = await fetch(`${receiver.url}/v1/remediations?state=succeeded`, {
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      const { remediations } = (await res.json()) as { remediations: { workflow: string; cluster?: string }[] };
      return remediations.find((remediation) => remediation.workflow === `west/argo/${name}`);
    }, 'the succeeded remediation in west');
    assert.equal(recorded.cluster, 'west');
  });

  it('explain --clusters shows the cluster an alert would go to, and refuses an unknown one', async () => {
    const alerts = join(dir, 'alerts.json');
    writeFileSync(
      alerts,
      JSON.stringify([
        { labels: { alertname: 'CrashLoop', namespace: 'shop', pod: 'web-0', k8s_cluster: 'west' }, annotations: {} },
        { labels: { alertname: 'CrashLoop', namespace: 'shop', pod: 'web-0', k8s_cluster: 'north' }, annotations: {} },
      ]),
    );
    const stdout = await new Promise<string>((resolve) => {
      execFile(
        'node',
        [
          CLI,
          'explain',
          '--alert',
          alerts,
          '--rules',
          join(dir, 'rules.yaml'),
          '--clusters',
          join(dir, 'clusters.yaml'),
        ],
        { cwd: REPO_ROOT, env: { PATH: process.env.PATH } },
        (_err, out) => resolve(out),
      );
    });
    const { alerts: explained } = parse(stdout) as {
      alerts: {
        decision: DecisionView & { cluster?: string };
        manifest?: { metadata: { annotations: Record<string, string> } };
      }[];
    };
    const [west, north] = explained;
    assert.deepEqual(
      [west?.decision.outcome, west?.decision.cluster, west?.decision.cooldownKey],
      ['dry_run', 'west', 'west/crashloop:shop/web'],
    );
    assert.equal(west?.manifest?.metadata.annotations['kube-sentinel.io/cluster'], 'west');
    assert.equal(north?.decision.outcome, 'invalid_target');
  });

  it('is listed by --help with its environment variable', async () => {
    const help = await new Promise<string>((resolve) => {
      execFile('node', [CLI, '--help'], { cwd: REPO_ROOT, env: { PATH: process.env.PATH } }, (_err, stdout) =>
        resolve(stdout),
      );
    });
    assert.match(help, /^ {2}--clusters VALUE +KUBE_SENTINEL_CLUSTERS$/m);
    assert.match(help, /check \[--rules P\] \[flags\] +against the configured cluster \(each of --clusters, by name\)/);
  });

  it('refuses to start on a clusters file that names a context the kubeconfig lacks: exit 2, one line naming it', async () => {
    const file = join(dir, 'wrong.yaml');
    writeFileSync(file, 'clusters:\n  - {name: east, kubeconfig: east/kubeconfig, context: prod}\n');
    const result = await new Promise<{ status: number; stderr: string }>((resolve) => {
      execFile(
        'node',
        [CLI, 'serve', '--port', '0', '--rules', join(dir, 'rules.yaml'), '--clusters', file],
        { cwd: REPO_ROOT, env: { PATH: process.env.PATH } },
        (err, _stdout, stderr) => resolve({ status: err ? Number((err as { code?: number }).code ?? 1) : 0, stderr }),
      );
    });
    assert.equal(result.status, 2, result.stderr);
    assert.match(
      result.stderr,
      /^kube-sentinel: invalid --clusters .*wrong\.yaml: clusters\[0\]\.context \(east\): .*context "prod" is not among its contexts \(fake-kube\)\n$/,
    );
  });
});
