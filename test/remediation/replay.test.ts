/**
 * The store came back, maybe empty (a Redis restarted without persistence, the receivers still
 * running): the closed loop records again what its watchers hold, the cluster being the record
 * (SPEC §9), without waiting for a relist that may never come.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import pino from 'pino';
import type { Alert } from '../../src/alert.js';
import { type LoadedKubeConfig, loadKubeConfig } from '../../src/kube/kubeconfig.js';
import type { Workflow } from '../../src/kube/workflow.js';
import { createMetrics } from '../../src/pipeline/metrics.js';
import { buildWorkflow } from '../../src/pipeline/render.js';
import { type EscalationSender, Escalations, escalationBuilders } from '../../src/remediation/escalations.js';
import { ClosedLoop } from '../../src/remediation/loop.js';
import type { RemediationState } from '../../src/remediation/model.js';
import type { RuleSet } from '../../src/rules/types.js';
import type { CooldownStore } from '../../src/stores/cooldown-store.js';
import { MemoryCooldownStore } from '../../src/stores/memory.js';
import { rulesFrom } from '../support/app.js';
import { type FakeKube, startFakeKube } from '../support/fake-kube.js';
import { writeKubeconfig } from '../support/kubeconfig.js';
import { eventually } from '../support/processes.js';

const RULES = `
rules:
  - name: crashloop
    match: {pattern: CrashLoop}
    priority: P2
    remediation:
      action: trigger-argo-workflow
      params: {workflow_template: diagnose-pod}
  - name: gated
    match: {pattern: Gated}
    priority: P1
    remediation:
      action: trigger-argo-workflow
      params: {workflow_template: diagnose-pod}
      approval: required
      approval_timeout: 1h
`;

const HOUR = 3600_000;
/** Bounds every wait: the replay is one pass over a handful of cached Workflows. */
const BOUND_MS = 5000;

/**
 * A memory store that can restart empty, and then says null to onCooldownEnded as the Redis
 * store does once its subscription is up again; it counts the recordTransition calls.
 */
function restartableStore(now: () => number) {
  let inner = new MemoryCooldownStore({ now });
  const listeners = new Set<(key: string | null) => void>();
  const calls = { recordTransition: 0 };
  const store: CooldownStore = new Proxy(inner, {
    get(_target, property) {
      if (property === 'onCooldownEnded') {
        return (listener: (key: string | null) => void) => {
          listeners.add(listener);
          return () => listeners.delete(listener);
        };
      }
      if (property === 'recordTransition') {
        return (...args: Parameters<CooldownStore['recordTransition']>) => {
          calls.recordTransition += 1;
          return inner.recordTransition(...args);
        };
      }
      const value: unknown = Reflect.get(inner, property, inner);
      return typeof value === 'function' ? value.bind(inner) : value;
    },
  });
  return {
    store,
    calls,
    /** The subscription is up again; the data is kept or, `empty`, gone. */
    reconnect(empty: boolean) {
      if (empty) inner = new MemoryCooldownStore({ now });
      for (const listener of [...listeners]) listener(null);
    },
    listening: () => listeners.size,
  };
}

function alert(alertname: string, pod: string): Alert {
  const labels = { alertname, namespace: 'shop', pod };
  return { source: 'api_v2', status: 'firing', labels, annotations: {}, fingerprint: `fp-${pod}` };
}

describe('the closed loop when the store comes back', () => {
  let kube: FakeKube;
  let kubeconfig: LoadedKubeConfig;
  let rules: RuleSet;
  let clock: number;
  let restartable: ReturnType<typeof restartableStore>;
  let sent: string[];
  let loop: ClosedLoop;

  /** Creates, through the API, the Workflow the receiver would have created, under `key`. */
  const created = async (rule: 'crashloop' | 'gated', pod: string, key: string): Promise<Workflow> => {
    const found = rules.rules.find((r) => r.name === rule);
    assert.ok(found);
    const workflow = buildWorkflow(
      alert(rule === 'gated' ? 'Gated' : 'CrashLoop', pod),
      found,
      { target: { namespace: 'shop', pod, container: '' }, parameters: [] },
      { workflowNamespace: 'argo' },
      key,
      `kube-sentinel-${rule}-${pod}`,
    );
    await kubeconfig.request('POST', '/apis/argoproj.io/v1alpha1/namespaces/argo/workflows', workflow);
    // Workflows created a minute apart: which came later is plain.
    clock += 60_000;
    return workflow;
  };

  const statesIn = async (store: CooldownStore): Promise<Record<string, RemediationState>> =>
    Object.fromEntries((await store.listRemediations(100)).map((r) => [r.workflow, r.state]));

  const recorded = (expected: Record<string, RemediationState>) =>
    eventually(
      async () => {
        const states = await statesIn(restartable.store);
        return Object.entries(expected).every(([workflow, state]) => states[workflow] === state) ? states : undefined;
      },
      `recorded: ${JSON.stringify(expected)}`,
      BOUND_MS,
    );

  before(async () => {
    kube = await startFakeKube({ token: 'k', now: () => clock });
    const dir = mkdtempSync(join(tmpdir(), 'ks-replay-'));
    kubeconfig = await loadKubeConfig({ kind: 'file', path: writeKubeconfig(dir, kube.url, 'k') });
    rules = await rulesFrom(RULES);
  });
  after(() => kube.close());

  beforeEach(() => {
    clock = Date.parse('2026-11-29T10:00:00Z');
    kube.reset();
    kube.addWorkflowTemplate('argo', 'diagnose-pod');
    restartable = restartableStore(() => clock);
    sent = [];
    const logger = pino({ level: 'silent' });
    const sender: EscalationSender = {
      fire: (escalation) => sent.push(`fire ${escalation.labels.alertname} ${escalation.labels.workflow}`),
      resolve: (escalation) => sent.push(`resolve ${escalation.labels.alertname} ${escalation.labels.workflow}`),
    };
    const { store } = restartable;
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

  /** A failure, an approval awaited, and a failure a later success of its key healed. */
  const remediationsOfEveryKind = async () => {
    const failed = await created('crashloop', 'api-0', 'crashloop:shop/api');
    const gated = await created('gated', 'ledger-0', 'gated:shop/ledger');
    const healed = await created('crashloop', 'web-0', 'crashloop:shop/web');
    const success = await created('crashloop', 'web-1', 'crashloop:shop/web');
    kube.setPhase('argo', failed.metadata.name, 'Failed', { message: 'child "restart" failed' });
    kube.setPhase('argo', healed.metadata.name, 'Failed', { message: 'child "restart" failed' });
    kube.setPhase('argo', success.metadata.name, 'Succeeded');
    const id = (workflow: Workflow) => `argo/${workflow.metadata.name}`;
    const states: Record<string, RemediationState> = {
      [id(failed)]: 'failed',
      [id(gated)]: 'awaiting_approval',
      [id(healed)]: 'failed',
      [id(success)]: 'succeeded',
    };
    return { failed: id(failed), gated: id(gated), healed: id(healed), success: id(success), states };
  };

  it('records again, in their states now, the Workflows its watchers hold when the store restarted empty', async () => {
    const workflows = await remediationsOfEveryKind();
    loop.start();
    await recorded(workflows.states);
    const before = new Map((await restartable.store.listRemediations(100)).map((r) => [r.workflow, r]));

    restartable.reconnect(true);
    assert.deepEqual(await statesIn(restartable.store), {}, 'the store is empty');
    await recorded(workflows.states);
    await loop.stop();

    // submittedAt and finishedAt come from the Workflow, not from when it was recorded again.
    clock += HOUR / 2;
    for (const again of await restartable.store.listRemediations(100)) {
      const was = before.get(again.workflow);
      assert.deepEqual(
        { submittedAt: again.submittedAt, finishedAt: again.finishedAt, message: again.message, rule: again.rule },
        { submittedAt: was?.submittedAt, finishedAt: was?.finishedAt, message: was?.message, rule: was?.rule },
      );
    }
  });

  it('opens again the escalations still due: the approval awaited and the failure not healed since', async () => {
    const workflows = await remediationsOfEveryKind();
    loop.start();
    await recorded(workflows.states);
    await eventually(
      () => (sent.some((s) => s.startsWith('resolve')) ? true : undefined),
      'the healed failure resolved',
    );
    sent.length = 0;

    restartable.reconnect(true);
    const open = await eventually(
      async () => {
        const listed = await restartable.store.listEscalations(100);
        return listed.length >= 2 ? listed : undefined;
      },
      'escalations open again',
      BOUND_MS,
    );
    await recorded(workflows.states);
    await loop.stop();
    const name = (workflow: string) => workflow.slice('argo/'.length);
    assert.deepEqual(open.map((escalation) => `${escalation.alert.labels.alertname} ${escalation.id}`).sort(), [
      `KubeSentinelApprovalRequired approval:${workflows.gated}`,
      `KubeSentinelRemediationFailed failed:${workflows.failed}`,
    ]);
    assert.deepEqual(sent.sort(), [
      `fire KubeSentinelApprovalRequired ${name(workflows.gated)}`,
      `fire KubeSentinelRemediationFailed ${name(workflows.failed)}`,
    ]);
  });

  it('writes nothing again when the store kept its data', async () => {
    const workflows = await remediationsOfEveryKind();
    loop.start();
    await recorded(workflows.states);
    const trail = (await restartable.store.listDecisions(1000)).length;
    const sends = sent.length;
    const calls = restartable.calls.recordTransition;

    restartable.reconnect(false);
    await eventually(
      () => (restartable.calls.recordTransition >= calls + 4 ? true : undefined),
      'each Workflow put to the store again',
      BOUND_MS,
    );
    // Waits for the replay under way.
    await loop.stop();
    // Each Workflow was put to the store again, and each was refused by its marker.
    assert.equal(restartable.calls.recordTransition, calls + 4);
    assert.equal((await restartable.store.listDecisions(1000)).length, trail);
    assert.equal(sent.length, sends);
  });

  it('runs one more replay, not one per request, for those asked for while one runs', async () => {
    const workflows = await remediationsOfEveryKind();
    loop.start();
    await recorded(workflows.states);
    const calls = restartable.calls.recordTransition;

    await Promise.all([loop.replay(), loop.replay(), loop.replay(), loop.replay(), loop.replay()]);
    await loop.stop();
    assert.equal(restartable.calls.recordTransition, calls + 2 * 4);
  });

  it('stops listening to the store when it stops', async () => {
    loop.start();
    assert.equal(restartable.listening(), 1);
    await loop.stop();
    assert.equal(restartable.listening(), 0);
  });
});
