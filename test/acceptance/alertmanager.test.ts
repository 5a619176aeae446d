/**
 * End to end as a user runs it: a real prometheus-alertmanager sends its webhook to the built
 * `kube-sentinel serve`, which keeps cooldowns in a real redis-server and submits to a fake
 * Kubernetes API that validates every Workflow strictly against the upstream Argo CRD.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Alertmanager, startAlertmanager } from '../support/alertmanager.js';
import { TEST_RULES } from '../support/app.js';
import { validateArgoObject } from '../support/argo-schema.js';
import { type FakeKube, startFakeKube } from '../support/fake-kube.js';
import { writeKubeconfig } from '../support/kubeconfig.js';
import { eventually, freePort } from '../support/processes.js';
import { type Receiver, startReceiver } from '../support/receiver.js';
import { type RedisServer, startRedis } from '../support/redis-server.js';

const TOKEN = 'acceptance-token';

interface AuditEntry {
  fingerprint: string;
  status: string;
  outcome: string;
  reason?: string;
  workflow?: { name: string };
}

describe('Alertmanager → Kube Sentinel → Argo Workflow', () => {
  let redis: RedisServer;
  let kube: FakeKube;
  let am: Alertmanager;
  let receiver: Receiver;
  let port: number;
  let receiverArgs: string[];

  const startKubeSentinel = async () => {
    receiver = await startReceiver(receiverArgs, { KUBE_SENTINEL_AUTH_TOKEN: TOKEN });
  };

  const audit = async (): Promise<AuditEntry[]> => {
    const res = await fetch(`http://127.0.0.1:${port}/v1/decisions?limit=1000`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    return ((await res.json()) as { decisions: AuditEntry[] }).decisions;
  };

  /** Waits until Kube Sentinel has recorded a decision for the alert that satisfies `accept`. */
  const decisionFor = (labels: Record<string, string>, accept: (d: AuditEntry) => boolean = () => true) =>
    eventually(
      async () => {
        const { fingerprintOf } = await import('../../src/pipeline/fingerprint.js');
        const fingerprint = fingerprintOf(labels);
        return (await audit()).find((d) => d.fingerprint === fingerprint && accept(d));
      },
      `a decision for ${JSON.stringify(labels)}`,
    );

  const alert = (
    labels: Record<string, string>,
    annotations: Record<string, string> = { description: 'Pod is crash looping' },
    endsAt?: string,
  ) => ({
    labels: { alertname: 'KubePodCrashLooping', ...labels },
    annotations,
    ...(endsAt ? { endsAt } : {}),
  });

  before(async () => {
    redis = await startRedis();
    kube = await startFakeKube({ token: 'kube-token' });
    kube.addWorkflowTemplate('argo', 'diagnose-pod');
    kube.addWorkflowTemplate('argo', 'diagnose-and-recover');
    const dir = mkdtempSync(join(tmpdir(), 'ks-acceptance-'));
    const rulesFile = join(dir, 'rules.yaml');
    writeFileSync(rulesFile, TEST_RULES);
    port = await freePort();
    receiverArgs = [
      '--port',
      String(port),
      '--rules',
      rulesFile,
      '--redis-url',
      redis.url,
      '--kubeconfig',
      writeKubeconfig(dir, kube.url, 'kube-token'),
      '--max-workflows-per-minute',
      '0',
    ];
    await startKubeSentinel();
    am = await startAlertmanager({ webhookUrl: `http://127.0.0.1:${port}/webhook/alertmanager`, token: TOKEN });
  });

  after(async () => {
    await am?.stop();
    await receiver?.stop();
    await kube?.close();
    await redis?.stop();
  });

  it('turns an alert posted to Alertmanager into exactly one valid Workflow', async () => {
    await am.postAlerts([alert({ namespace: 'shop', pod: 'checkout-7d9f8b6c5-x2x9k', container: 'checkout' })]);
    await kube.waitForWorkflows(1);
    const decision = await decisionFor({
      alertname: 'KubePodCrashLooping',
      namespace: 'shop',
      pod: 'checkout-7d9f8b6c5-x2x9k',
      container: 'checkout',
    });
    assert.equal(decision.outcome, 'submitted');
    assert.equal(kube.workflows.length, 1);
    const [workflow] = kube.workflows;
    assert.deepEqual(validateArgoObject(workflow), []);
    assert.equal(workflow!.metadata.name, decision.workflow?.name);
    const params = Object.fromEntries(
      (workflow!.spec as { arguments: { parameters: { name: string; value: string }[] } }).arguments.parameters.map(
        (p) => [p.name, p.value],
      ),
    );
    assert.equal(params.namespace, 'shop');
    assert.equal(params.pod, 'checkout-7d9f8b6c5-x2x9k');
    assert.equal(params.container, 'checkout');
    assert.equal(params.rule, 'crashloop');
  });

  it('gives a repeat and a second pod of the same Deployment a cooldown', async () => {
    const repeat = await fetch(`http://127.0.0.1:${port}/api/v2/alerts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify([alert({ namespace: 'shop', pod: 'checkout-7d9f8b6c5-x2x9k', container: 'checkout' })]),
    });
    assert.equal(repeat.status, 200);
    assert.equal(((await repeat.json()) as { decisions: AuditEntry[] }).decisions[0]!.outcome, 'cooldown');

    const second = { namespace: 'shop', pod: 'checkout-7d9f8b6c5-zz9pq', container: 'checkout' };
    await am.postAlerts([alert(second)]);
    const decision = await decisionFor({ alertname: 'KubePodCrashLooping', ...second });
    assert.equal(decision.outcome, 'cooldown');
    assert.equal(kube.workflows.length, 1);
  });

  it('remediates the same workload in another namespace', async () => {
    await am.postAlerts([alert({ namespace: 'web', pod: 'checkout-7d9f8b6c5-x2x9k' })]);
    await kube.waitForWorkflows(2);
    assert.equal(kube.workflowsIn('argo').length, 2);
  });

  it('keeps the cooldown across a restart of Kube Sentinel', async () => {
    const code = await receiver.stop('SIGTERM');
    assert.equal(code, 0, receiver.process.output().split('\n').slice(-8).join('\n'));
    await startKubeSentinel();
    const res = await fetch(`http://127.0.0.1:${port}/webhook/alertmanager`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({
        version: '4',
        status: 'firing',
        alerts: [{ status: 'firing', ...alert({ namespace: 'shop', pod: 'checkout-7d9f8b6c5-q4w5x' }) }],
      }),
    });
    assert.equal(((await res.json()) as { decisions: AuditEntry[] }).decisions[0]!.outcome, 'cooldown');
    assert.equal(kube.workflows.length, 2);
  });

  it("answers a Kubernetes 500 with 503, and Alertmanager's redelivery submits exactly once", async () => {
    kube.failNext(1, { status: 500, message: 'etcdserver: request timed out' });
    const labels = { alertname: 'KubePodCrashLooping', namespace: 'payments', pod: 'ledger-0' };
    await am.postAlerts([alert({ namespace: 'payments', pod: 'ledger-0' })]);
    const retried = await decisionFor(labels, (d) => d.outcome === 'retry');
    assert.match(retried.reason ?? '', /500/);
    const submitted = await decisionFor(labels, (d) => d.outcome === 'submitted');
    assert.equal(submitted.workflow?.name, retried.workflow?.name);
    await kube.waitForWorkflows(3);
    assert.equal(kube.workflows.filter((w) => w.metadata.name === submitted.workflow?.name).length, 1);
    assert.equal(kube.workflows.length, 3);
  });

  it('submits nothing for a resolved alert', async () => {
    // This workload fired (and was remediated) above; Alertmanager now sends it resolved.
    const labels = { namespace: 'shop', pod: 'checkout-7d9f8b6c5-x2x9k', container: 'checkout' };
    const before = kube.workflows.length;
    await am.postAlerts([alert(labels, undefined, new Date(Date.now() - 1000).toISOString())]);
    const decision = await decisionFor({ alertname: 'KubePodCrashLooping', ...labels }, (d) => d.status === 'resolved');
    assert.equal(decision.outcome, 'resolved');
    // The v2 API directly: a fresh workload, already resolved — nothing submitted either.
    const res = await fetch(`http://127.0.0.1:${port}/api/v2/alerts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify([
        alert({ namespace: 'billing', pod: 'invoice-0' }, undefined, new Date(Date.now() - 1000).toISOString()),
      ]),
    });
    assert.equal(((await res.json()) as { decisions: AuditEntry[] }).decisions[0]!.outcome, 'resolved');
    assert.equal(kube.workflows.length, before);
  });

  for (const pod of ['a;curl x|sh', '$(id)', '{{workflow.name}}']) {
    it(`refuses the hostile label ${JSON.stringify(pod)} as invalid_target`, async () => {
      const labels = { alertname: 'KubePodCrashLooping', namespace: 'hostile', pod };
      const before = kube.workflows.length;
      await am.postAlerts([alert({ namespace: 'hostile', pod })]);
      const decision = await decisionFor(labels);
      assert.equal(decision.outcome, 'invalid_target');
      assert.equal(kube.workflows.length, before);
    });
  }

  it('answers 401 without the token', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/webhook/alertmanager`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ version: '4', alerts: [] }),
    });
    assert.equal(res.status, 401);
  });
});
