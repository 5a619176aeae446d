import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AnnotationKey, ArgoLabel, type WatchedWorkflow } from '../../src/kube/workflow.js';
import { awaitsApproval, observe, remediationOf } from '../../src/remediation/state.js';

function workflow(
  overrides: {
    phase?: string;
    message?: string;
    suspend?: boolean;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    finishedAt?: string;
  } = {},
): WatchedWorkflow {
  return {
    metadata: {
      name: 'kube-sentinel-crashloop-abc',
      namespace: 'argo',
      creationTimestamp: '2026-11-29T10:00:00Z',
      labels: {
        'app.kubernetes.io/managed-by': 'kube-sentinel',
        'kube-sentinel.io/rule': 'crashloop',
        ...overrides.labels,
      },
      annotations: {
        [AnnotationKey.Rule]: 'crash loop',
        [AnnotationKey.CooldownKey]: 'crashloop:shop/checkout',
        [AnnotationKey.Target]: 'shop/checkout-7d9f8b6c5-x2x9k',
        [AnnotationKey.Attempt]: '2',
        ...overrides.annotations,
      },
    },
    spec: overrides.suspend === undefined ? {} : { suspend: overrides.suspend },
    status: {
      ...(overrides.phase ? { phase: overrides.phase } : {}),
      ...(overrides.message ? { message: overrides.message } : {}),
      ...(overrides.finishedAt ? { finishedAt: overrides.finishedAt } : {}),
    },
  };
}

const APPROVAL = { [AnnotationKey.ApprovalTimeout]: '3600' };

describe('the state of a remediation, read from its Workflow', () => {
  it('is pending before Argo gives it a phase, and while Pending', () => {
    assert.equal(observe(workflow(), false).state, 'pending');
    assert.equal(observe(workflow({ phase: 'Pending' }), false).state, 'pending');
  });

  it('is running, succeeded or failed as Argo says, with its message', () => {
    assert.equal(observe(workflow({ phase: 'Running' }), false).state, 'running');
    assert.deepEqual(observe(workflow({ phase: 'Succeeded' }), false), { state: 'succeeded' });
    assert.deepEqual(observe(workflow({ phase: 'Failed', message: 'child failed' }), false), {
      state: 'failed',
      message: 'child failed',
    });
    assert.equal(observe(workflow({ phase: 'Error' }), false).state, 'failed');
  });

  it('is failed with the step that failed and its message, where Argo only names the child', () => {
    const step = 'evict-pod: Cannot evict pod as it would violate the pod’s disruption budget.';
    const steps = workflow({ phase: 'Failed', message: "child 'wf-1' failed" });
    steps.status = { ...steps.status, failedStep: step };
    assert.deepEqual(observe(steps, false), { state: 'failed', message: `child 'wf-1' failed; ${step}` });
    const said = workflow({
      phase: 'Failed',
      message: 'Cannot evict pod as it would violate the pod’s disruption budget.',
    });
    said.status = { ...said.status, failedStep: step };
    assert.equal(observe(said, false).message, said.status.message, 'not twice when Argo said it already');
    const clipped = workflow({
      phase: 'Failed',
      message: 'Cannot evict pod as it would violate the pod’s disruption budget.',
    });
    clipped.status = { ...clipped.status, failedStep: 'evict-pod: Cannot evict pod as it would…' };
    assert.equal(observe(clipped, false).message, clipped.status.message, 'nor when the step’s was cut short');
    const bare = workflow({ phase: 'Error' });
    bare.status = { ...bare.status, failedStep: step };
    assert.equal(observe(bare, false).message, step);
  });

  it('reads the phase label when the status is not there', () => {
    const labelled = workflow({ labels: { [ArgoLabel.Phase]: 'Failed', [ArgoLabel.Completed]: 'true' } });
    assert.equal(observe(labelled, false).state, 'failed');
  });

  it('is unknown when deleted before it finished, and keeps a final state when deleted after', () => {
    assert.equal(observe(workflow({ phase: 'Running' }), true).state, 'unknown');
    assert.equal(observe(workflow({ phase: 'Succeeded' }), true).state, 'succeeded');
  });

  it('awaits approval while suspended, and runs, approved by the actor, once resumed', () => {
    const suspended = workflow({ suspend: true, phase: 'Running', annotations: APPROVAL });
    assert.equal(observe(suspended, false).state, 'awaiting_approval');
    assert.ok(awaitsApproval(suspended));
    const resumed = workflow({ annotations: APPROVAL, labels: { [ArgoLabel.Actor]: 'alice' } });
    assert.deepEqual(observe(resumed, false), { state: 'running', approver: 'alice' });
  });

  it('is cancelled once Kube Sentinel stopped it, whatever Argo reports after', () => {
    const stopped = workflow({
      phase: 'Failed',
      message: "Stopped with strategy 'Stop'",
      suspend: true,
      annotations: { ...APPROVAL, [AnnotationKey.Stopped]: 'approval expired' },
    });
    assert.deepEqual(observe(stopped, false), { state: 'cancelled', message: 'approval expired' });
    assert.ok(!awaitsApproval(stopped));
  });
});

describe('the remediation record of a Workflow', () => {
  it('carries the rule as written, the key, the target, the attempt and when it was submitted', () => {
    const record = remediationOf(
      workflow({ phase: 'Running' }),
      { state: 'running' },
      Date.parse('2026-11-29T10:01:00Z'),
    );
    assert.deepEqual(record, {
      workflow: 'argo/kube-sentinel-crashloop-abc',
      rule: 'crash loop',
      cooldownKey: 'crashloop:shop/checkout',
      target: 'shop/checkout-7d9f8b6c5-x2x9k',
      state: 'running',
      submittedAt: '2026-11-29T10:00:00.000Z',
      attempt: 2,
    });
  });

  it("takes Argo's finishedAt for a final state, or now when Argo gives none", () => {
    const now = Date.parse('2026-11-29T10:05:00Z');
    const failed = workflow({ phase: 'Failed', finishedAt: '2026-11-29T10:03:00Z' });
    assert.equal(remediationOf(failed, observe(failed, false), now).finishedAt, '2026-11-29T10:03:00Z');
    const gone = workflow({ phase: 'Running' });
    assert.equal(remediationOf(gone, observe(gone, true), now).finishedAt, '2026-11-29T10:05:00.000Z');
  });
});
