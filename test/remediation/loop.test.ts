import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import pino from 'pino';
import type { Alert } from '../../src/alert.js';
import { type LoadedKubeConfig, loadKubeConfig } from '../../src/kube/kubeconfig.js';
import type { Workflow } from '../../src/kube/workflow.js';
import { cooldownKey } from '../../src/pipeline/cooldown-key.js';
import { createMetrics } from '../../src/pipeline/metrics.js';
import { buildWorkflow } from '../../src/pipeline/render.js';
import { Escalations, escalationBuilders } from '../../src/remediation/escalations.js';
import { ClosedLoop } from '../../src/remediation/loop.js';
import type { RuleSet } from '../../src/rules/types.js';
import { MemoryCooldownStore } from '../../src/stores/memory.js';
import { rulesFrom } from '../support/app.js';
import { type FakeKube, startFakeKube } from '../support/fake-kube.js';
import { writeKubeconfig } from '../support/kubeconfig.js';
import { eventually } from '../support/processes.js';

const RULES = `
rules:
  - name: gated
    match: {pattern: Gated}
    priority: P1
    remediation:
      action: trigger-argo-workflow
      params: {workflow_template: diagnose-pod}
      approval: required
      approval_timeout: 10m
`;

const HOUR = 3600_000;

function alert(pod: string, status: Alert['status'] = 'firing'): Alert {
  const labels = { alertname: 'Gated', namespace: 'shop', pod };
  return { source: 'api_v2', status, labels, annotations: {}, fingerprint: `fp-${pod}` };
}

describe('the closed loop of one replica, against the API', () => {
  let kube: FakeKube;
  let kubeconfig: LoadedKubeConfig;
  let rules: RuleSet;
  let clock: number;
  let loop: ClosedLoop;

  /** Creates, through the API, the suspended Workflow the receiver would have created for `pod`. */
  const created = async (pod: string): Promise<Workflow> => {
    const rule = rules.rules[0]!;
    const firing = alert(pod);
    const key = cooldownKey(firing, rule);
    const workflow = buildWorkflow(
      firing,
      rule,
      {
        target: { namespace: 'shop', pod, container: '' },
        parameters: [],
      },
      { workflowNamespace: 'argo' },
      key,
      `kube-sentinel-gated-${pod}`,
    );
    await kubeconfig.request('POST', '/apis/argoproj.io/v1alpha1/namespaces/argo/workflows', workflow);
    return workflow;
  };

  const patches = () => kube.requests.filter((r) => r.method === 'PATCH').length;

  before(async () => {
    clock = Date.parse('2026-11-29T10:00:00Z');
    kube = await startFakeKube({ token: 'k', now: () => clock });
    kube.addWorkflowTemplate('argo', 'diagnose-pod');
    const dir = mkdtempSync(join(tmpdir(), 'ks-loop-'));
    kubeconfig = await loadKubeConfig({ kind: 'file', path: writeKubeconfig(dir, kube.url, 'k') });
    rules = await rulesFrom(RULES);
  });
  after(() => kube.close());

  beforeEach(() => {
    kube.reset();
    kube.addWorkflowTemplate('argo', 'diagnose-pod');
    const store = new MemoryCooldownStore({ now: () => clock });
    const logger = pino({ level: 'silent' });
    const sender = { fire: () => undefined, resolve: () => undefined };
    loop = new ClosedLoop({
      kube: kubeconfig,
      store,
      escalations: new Escalations({ store, sender, builders: escalationBuilders({}), ttlMs: HOUR, logger }),
      metrics: createMetrics({ defaults: false }),
      logger,
      now: () => clock,
      settings: { replica: 'test', auditMaxLen: 100, escalationTtlMs: HOUR },
      namespaces: () => ['argo'],
      workflowNamespace: 'argo',
      apiTimeoutMs: 5000,
    });
  });

  it('stops a Workflow awaiting approval whose alert resolved, even before its watch saw the Workflow', async () => {
    const workflow = await created('api-0');
    // Not started: the replica's cache is empty, as on a replica whose watch has not caught up.
    loop.sourceResolved(alert('api-0', 'resolved'), rules);
    const stopped = await eventually(
      () => (kube.getWorkflow('argo', workflow.metadata.name)?.spec.shutdown === 'Stop' ? true : undefined),
      'the Workflow stopped',
    );
    assert.ok(stopped);
    const stored = kube.getWorkflow('argo', workflow.metadata.name);
    assert.equal(stored?.spec.suspend, undefined, 'suspend cleared with the stop (argoproj/argo-workflows#17041)');
    assert.match(stored?.metadata.annotations?.['kube-sentinel.io/stopped'] ?? '', /source alert resolved/);
    await loop.stop();
  });

  it('stops a Workflow its watch brings after its alert resolved (created on another replica), without listing', async () => {
    loop.start();
    await kube.waitForWatches(1);
    const listsBefore = kube.requests.filter((r) => r.method === 'GET' && !r.query.watch).length;
    loop.sourceResolved(alert('api-3', 'resolved'), rules);
    const workflow = await created('api-3');
    await eventually(
      () => (kube.getWorkflow('argo', workflow.metadata.name)?.spec.shutdown === 'Stop' ? true : undefined),
      'the Workflow stopped when its watch brought it',
    );
    await loop.stop();
    assert.equal(kube.requests.filter((r) => r.method === 'GET' && !r.query.watch).length, listsBefore);
  });

  it('leaves alone the Workflows of other alerts, and alerts whose rule needs no approval', async () => {
    const workflow = await created('api-1');
    loop.sourceResolved(alert('api-2', 'resolved'), rules);
    loop.sourceResolved({ ...alert('api-1', 'resolved'), labels: { alertname: 'Other', pod: 'api-1' } }, rules);
    await new Promise((resolve) => setImmediate(resolve));
    await loop.stop();
    assert.equal(kube.getWorkflow('argo', workflow.metadata.name)?.spec.shutdown, undefined);
    assert.equal(patches(), 0);
  });

  it('stops each of many Workflows whose approval expired at once with one patch each', async () => {
    const workflows = await Promise.all(Array.from({ length: 20 }, (_, i) => created(`db-${i}-x`)));
    clock += 11 * 60_000;
    loop.start();
    await eventually(
      () =>
        workflows.every((w) => kube.getWorkflow('argo', w.metadata.name)?.spec.shutdown === 'Stop') ? true : undefined,
      'every expired approval stopped',
    );
    // The sweep and the deadlines may both look; a Workflow stopped once is never patched again.
    await loop.sweep();
    await loop.stop();
    assert.equal(patches(), 20);
  });
});
