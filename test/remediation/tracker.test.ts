import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import pino from 'pino';
import { KubeApiError } from '../../src/kube/http.js';
import { AnnotationKey, ArgoLabel, type WatchedWorkflow } from '../../src/kube/workflow.js';
import { createMetrics, type Metrics } from '../../src/pipeline/metrics.js';
import { type EscalationBuilders, type EscalationSender, Escalations } from '../../src/remediation/escalations.js';
import type { EscalationAlert } from '../../src/remediation/model.js';
import { RemediationTracker } from '../../src/remediation/tracker.js';
import { MemoryCooldownStore } from '../../src/stores/memory.js';

const T0 = Date.parse('2026-11-29T10:00:00Z');

function workflow(
  name: string,
  extra: Partial<WatchedWorkflow> & { annotations?: Record<string, string> } = {},
): WatchedWorkflow {
  return {
    metadata: {
      name,
      namespace: 'argo',
      creationTimestamp: new Date(T0).toISOString(),
      labels: { 'kube-sentinel.io/priority': 'P2', ...extra.metadata?.labels },
      annotations: {
        [AnnotationKey.Rule]: 'crashloop',
        [AnnotationKey.CooldownKey]: 'crashloop:shop/checkout',
        [AnnotationKey.Target]: 'shop/checkout-0',
        [AnnotationKey.AlertName]: 'KubePodCrashLooping',
        [AnnotationKey.Fingerprint]: 'f1',
        ...extra.annotations,
      },
    },
    spec: extra.spec ?? {},
    status: extra.status ?? {},
  };
}

function phase(base: WatchedWorkflow, value: string, message?: string): WatchedWorkflow {
  const final = value === 'Succeeded' || value === 'Failed' || value === 'Error';
  return {
    ...base,
    metadata: {
      ...base.metadata,
      labels: {
        ...base.metadata.labels,
        [ArgoLabel.Phase]: value,
        ...(final ? { [ArgoLabel.Completed]: 'true' } : {}),
      },
    },
    status: {
      phase: value,
      ...(message ? { message } : {}),
      ...(final ? { finishedAt: new Date(T0 + 90_000).toISOString() } : {}),
    },
  };
}

/** Builders that say which alert and which workflow, enough to follow what is sent. */
const builders: EscalationBuilders = {
  failed: (subject) => ({
    labels: {
      alertname: 'KubeSentinelRemediationFailed',
      workflow: subject.workflow?.name ?? '',
      workflow_namespace: 'argo',
    },
    annotations: {},
  }),
  approvalRequired: (subject) => ({
    labels: {
      alertname: 'KubeSentinelApprovalRequired',
      workflow: subject.workflow?.name ?? '',
      workflow_namespace: 'argo',
    },
    annotations: {},
  }),
  exhausted: () => ({ labels: { alertname: 'KubeSentinelRemediationExhausted' }, annotations: {} }),
};

interface Sent {
  action: 'fire' | 'resolve';
  alertname: string;
  workflow: string | undefined;
  lastsMs?: number;
}

function trackerDeps(store: MemoryCooldownStore, sent: Sent[], now: () => number, patches: unknown[] = []) {
  const sender: EscalationSender = {
    fire: (alert: EscalationAlert, context) =>
      sent.push({
        action: 'fire',
        alertname: alert.labels.alertname,
        workflow: alert.labels.workflow,
        ...(context.lastsMs === undefined ? {} : { lastsMs: context.lastsMs }),
      }),
    resolve: (alert: EscalationAlert) =>
      sent.push({ action: 'resolve', alertname: alert.labels.alertname, workflow: alert.labels.workflow }),
  };
  const logger = pino({ level: 'silent' });
  return {
    store,
    escalations: new Escalations({ store, sender, builders, ttlMs: 3600_000, logger }),
    metrics: createMetrics({ defaults: false }),
    logger,
    now,
    settings: { replica: 'r', auditMaxLen: 1000, escalationTtlMs: 3600_000 },
    patch: async (namespace: string, name: string, patch: object) => {
      patches.push({ namespace, name, patch });
    },
  };
}

function replica(store: MemoryCooldownStore, sent: Sent[], now: () => number, patches: unknown[] = []) {
  const deps = trackerDeps(store, sent, now, patches);
  return { tracker: new RemediationTracker(deps), metrics: deps.metrics };
}

async function counted(metrics: Metrics, state: string): Promise<number> {
  const values = (await metrics.remediations.get()).values;
  return values.filter((v) => v.labels.state === state).reduce((sum, v) => sum + v.value, 0);
}

describe('the remediation tracker', () => {
  let store: MemoryCooldownStore;
  let sent: Sent[];
  let clock: number;
  const now = () => clock;

  beforeEach(() => {
    clock = T0 + 120_000;
    store = new MemoryCooldownStore({ now });
    sent = [];
  });

  describe('with three replicas seeing the same events', () => {
    it('records, counts and escalates each state change once', async () => {
      const replicas = [replica(store, sent, now), replica(store, sent, now), replica(store, sent, now)];
      const created = workflow('wf-1');
      const running = phase(created, 'Running');
      const failed = phase(created, 'Failed', 'child "restart" failed');
      for (const event of [created, running, failed]) {
        await Promise.all(replicas.map(({ tracker }) => tracker.observe(event, false)));
      }
      const entries = (await store.listDecisions(100)).filter((e) => 'kind' in e && e.kind === 'remediation');
      assert.deepEqual(entries.map((e) => ('state' in e ? e.state : '')).reverse(), ['pending', 'running', 'failed']);
      const total = (await Promise.all(replicas.map(({ metrics }) => counted(metrics, 'failed')))).reduce(
        (a, b) => a + b,
      );
      assert.equal(total, 1);
      assert.deepEqual(sent, [{ action: 'fire', alertname: 'KubeSentinelRemediationFailed', workflow: 'wf-1' }]);
      const [record] = await store.listRemediations(10);
      assert.equal(record?.state, 'failed');
      assert.equal(record?.message, 'child "restart" failed');
    });

    it('never moves a remediation back when a replica lags behind', async () => {
      const [ahead, behind] = [replica(store, sent, now), replica(store, sent, now)];
      const created = workflow('wf-1');
      await ahead.tracker.observe(phase(created, 'Succeeded'), false);
      await behind.tracker.observe(phase(created, 'Running'), false);
      assert.equal((await store.getRemediation('argo/wf-1'))?.state, 'succeeded');
    });
  });

  it('resolves the failures of a key once a later remediation of it succeeds', async () => {
    const { tracker } = replica(store, sent, now);
    await tracker.observe(phase(workflow('wf-1'), 'Failed', 'boom'), false);
    await tracker.observe(phase(workflow('wf-2'), 'Succeeded'), false);
    assert.deepEqual(sent, [
      { action: 'fire', alertname: 'KubeSentinelRemediationFailed', workflow: 'wf-1' },
      { action: 'resolve', alertname: 'KubeSentinelRemediationFailed', workflow: 'wf-1' },
    ]);
  });

  it("leaves another Workflow's approval asked for when an older one of the key succeeds", async () => {
    const { tracker } = replica(store, sent, now);
    const waiting = workflow('wf-new', {
      spec: { suspend: true },
      annotations: { [AnnotationKey.ApprovalTimeout]: '3600' },
    });
    await tracker.observe(waiting, false);
    await tracker.observe(phase(workflow('wf-failed'), 'Failed'), false);
    await tracker.observe(phase(workflow('wf-old'), 'Succeeded'), false);
    assert.deepEqual(
      sent.map((s) => `${s.action} ${s.alertname} ${s.workflow}`),
      [
        'fire KubeSentinelApprovalRequired wf-new',
        'fire KubeSentinelRemediationFailed wf-failed',
        'resolve KubeSentinelRemediationFailed wf-failed',
      ],
    );
  });

  it('escalates once a state change whose reply was lost (the store recorded it, the client timed out)', async () => {
    const { tracker } = replica(store, sent, now);
    const original = store.recordTransition.bind(store);
    let lose = true;
    store.recordTransition = async (...args) => {
      const recorded = await original(...args);
      if (lose) {
        lose = false;
        const { StoreUnavailableError } = await import('../../src/stores/cooldown-store.js');
        throw new StoreUnavailableError('command timed out');
      }
      return recorded;
    };
    const failed = phase(workflow('wf-1'), 'Failed', 'boom');
    await tracker.observe(failed, false);
    assert.deepEqual(sent, []);
    await tracker.sweep([failed]);
    assert.deepEqual(sent, [{ action: 'fire', alertname: 'KubeSentinelRemediationFailed', workflow: 'wf-1' }]);
  });

  it('records unknown and escalates when a Workflow is deleted before it finished', async () => {
    const { tracker, metrics } = replica(store, sent, now);
    const running = phase(workflow('wf-1'), 'Running');
    await tracker.observe(running, false);
    await tracker.observe(running, true);
    assert.equal((await store.getRemediation('argo/wf-1'))?.state, 'unknown');
    assert.equal(await counted(metrics, 'unknown'), 1);
    assert.equal(sent.at(-1)?.alertname, 'KubeSentinelRemediationFailed');
  });

  describe('a Workflow awaiting approval', () => {
    const approval = { [AnnotationKey.ApprovalTimeout]: '600' };
    const suspended = () => {
      const waiting = workflow('wf-a', { spec: { suspend: true }, annotations: approval });
      waiting.metadata.resourceVersion = '7';
      return waiting;
    };

    it('asks for approval, and records the approver and resolves the ask once resumed', async () => {
      const { tracker } = replica(store, sent, now);
      await tracker.observe(suspended(), false);
      const resumed = workflow('wf-a', {
        annotations: approval,
        metadata: { name: 'wf-a', namespace: 'argo', labels: { [ArgoLabel.Actor]: 'alice' } },
      });
      await tracker.observe(resumed, false);
      const record = await store.getRemediation('argo/wf-a');
      assert.equal(record?.state, 'running');
      assert.equal(record?.approver, 'alice');
      assert.deepEqual(
        sent.map((s) => `${s.action} ${s.alertname}`),
        ['fire KubeSentinelApprovalRequired', 'resolve KubeSentinelApprovalRequired'],
      );
    });

    it('is stopped and cancelled when its approval times out, not before', async () => {
      const patches: unknown[] = [];
      const { tracker } = replica(store, sent, now, patches);
      await tracker.observe(suspended(), false);
      clock = T0 + 599_000;
      await tracker.sweep([suspended()]);
      assert.equal(patches.length, 0);
      clock = T0 + 600_000;
      await tracker.sweep([suspended()]);
      // Argo ignores spec.shutdown while spec.suspend is set (argoproj/argo-workflows#17041): both in one patch.
      assert.deepEqual(patches, [
        {
          namespace: 'argo',
          name: 'wf-a',
          patch: {
            metadata: {
              resourceVersion: '7',
              annotations: { [AnnotationKey.Stopped]: 'approval expired: not approved within 10m' },
            },
            spec: { suspend: null, shutdown: 'Stop' },
          },
        },
      ]);
      const record = await store.getRemediation('argo/wf-a');
      assert.equal(record?.state, 'cancelled');
      assert.equal(sent.at(-1)?.action, 'resolve');
    });

    it('is not stopped, nor cancelled, when it changed since (approved just in time: 409)', async () => {
      const { tracker } = replica(store, sent, now);
      const conflicted = new RemediationTracker({
        ...trackerDeps(store, sent, now),
        patch: async () => {
          throw new KubeApiError(409, '{"kind":"Status","reason":"Conflict","code":409}', {});
        },
      });
      await tracker.observe(suspended(), false);
      clock = T0 + 600_000;
      assert.equal(await conflicted.expire(suspended()), false);
      assert.equal((await store.getRemediation('argo/wf-a'))?.state, 'awaiting_approval');
    });

    it('pages for approval until its approval_timeout, when that is longer than the escalation ttl', async () => {
      const { tracker } = replica(store, sent, now);
      const long = workflow('wf-long', {
        spec: { suspend: true },
        annotations: { [AnnotationKey.ApprovalTimeout]: '14400' },
      });
      await tracker.observe(long, false);
      // Created at T0, 4 h to approve, seen 2 min later.
      assert.equal(sent.at(-1)?.lastsMs, 4 * 3600_000 - 120_000);
    });

    it('is stopped when its source alert resolves', async () => {
      const patches: unknown[] = [];
      const { tracker } = replica(store, sent, now, patches);
      await tracker.observe(suspended(), false);
      await tracker.sourceResolved('other', [suspended()]);
      assert.equal(patches.length, 0);
      await tracker.sourceResolved('f1', [suspended()]);
      assert.equal(patches.length, 1);
      assert.equal((await store.getRemediation('argo/wf-a'))?.message, 'source alert resolved before approval');
    });
  });

  it('does not page again for a failure that ended longer ago than an escalation lasts (a store that lost its markers)', async () => {
    const { tracker } = replica(store, sent, now);
    clock = T0 + 90_000 + 3600_000 + 1;
    await tracker.observe(phase(workflow('wf-old'), 'Failed', 'long ago'), false);
    assert.equal((await store.getRemediation('argo/wf-old'))?.state, 'failed');
    assert.deepEqual(sent, []);
  });

  it('tries a state again at the next sweep when the store did not answer', async () => {
    const { tracker } = replica(store, sent, now);
    const original = store.recordTransition.bind(store);
    let down = true;
    store.recordTransition = async (...args) => {
      if (down) {
        const { StoreUnavailableError } = await import('../../src/stores/cooldown-store.js');
        throw new StoreUnavailableError('connection refused');
      }
      return original(...args);
    };
    const failed = phase(workflow('wf-1'), 'Failed');
    await tracker.observe(failed, false);
    assert.equal(await store.getRemediation('argo/wf-1'), null);
    down = false;
    await tracker.sweep([failed]);
    assert.equal((await store.getRemediation('argo/wf-1'))?.state, 'failed');
  });
});
