import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Priority } from '../../src/decision.js';
import {
  approvalRequired,
  type EscalationSubject,
  remediationExhausted,
  remediationFailed,
  SEVERITY,
  type WorkflowRef,
  workflowUrl,
} from '../../src/escalation/alerts.js';

const WORKFLOW: WorkflowRef = { namespace: 'argo', name: 'kube-sentinel-crashloop-abc12' };

const subject = (overrides: Partial<EscalationSubject> = {}): EscalationSubject & { workflow: WorkflowRef } => ({
  rule: 'crashloop-restart',
  priority: 'P2',
  cooldownKey: 'crashloop-restart/shop/checkout',
  target: { namespace: 'shop', pod: 'checkout-7d9f8b6c5-x2x9k' },
  workload: 'checkout',
  workflow: WORKFLOW,
  sourceAlertname: 'KubePodCrashLooping',
  ...overrides,
});

const CREATED_AT = Date.parse('2026-11-29T12:00:00.000Z');

describe('escalation alerts', () => {
  describe('labels', () => {
    it('name the rule, priority, severity, target, workload, Workflow and source alert', () => {
      const alert = remediationFailed(subject(), { state: 'failed', message: 'step restart failed' });
      assert.deepEqual(alert.labels, {
        alertname: 'KubeSentinelRemediationFailed',
        rule: 'crashloop-restart',
        priority: 'P2',
        severity: 'critical',
        namespace: 'shop',
        pod: 'checkout-7d9f8b6c5-x2x9k',
        workload: 'checkout',
        workflow: 'kube-sentinel-crashloop-abc12',
        workflow_namespace: 'argo',
        source_alertname: 'KubePodCrashLooping',
      });
    });

    it('name the cluster with --clusters, and read the Workflow out of a cluster’s attempt', () => {
      const failed = remediationFailed(subject({ cluster: 'west' }), { state: 'failed' });
      assert.equal(failed.labels.cluster, 'west');
      assert.equal(remediationFailed(subject(), { state: 'failed' }).labels.cluster, undefined);
      const exhausted = remediationExhausted(subject({ cluster: 'west', workflow: undefined }), {
        attempts: [{ workflow: 'west/argo/kube-sentinel-crashloop-1', at: CREATED_AT, state: 'failed' }],
        maxAttempts: 1,
        attemptWindowMs: 3600_000,
      });
      assert.deepEqual(
        [exhausted.labels.cluster, exhausted.labels.workflow, exhausted.labels.workflow_namespace],
        ['west', 'kube-sentinel-crashloop-1', 'argo'],
      );
    });

    it('map P1 and P2 to critical, P3 to warning and P4 to info', () => {
      const severities = (['P1', 'P2', 'P3', 'P4'] as const).map(
        (priority: Priority) => remediationFailed(subject({ priority }), { state: 'failed' }).labels.severity,
      );
      assert.deepEqual(severities, ['critical', 'critical', 'warning', 'info']);
      assert.deepEqual(SEVERITY, { P1: 'critical', P2: 'critical', P3: 'warning', P4: 'info' });
    });

    it('leave out every label that would be empty', () => {
      const alert = remediationExhausted(
        subject({ workload: '', target: { namespace: 'shop', pod: '' }, workflow: undefined }),
        { attempts: [], maxAttempts: 3, attemptWindowMs: 3600_000 },
      );
      assert.deepEqual(Object.keys(alert.labels).sort(), [
        'alertname',
        'namespace',
        'priority',
        'rule',
        'severity',
        'source_alertname',
      ]);
      assert.ok(Object.values(alert.labels).every((value) => value !== ''));
    });

    it('bound the length of a long value', () => {
      const alert = remediationFailed(subject({ sourceAlertname: 'A'.repeat(5000) }), { state: 'failed' });
      assert.ok(alert.labels.source_alertname!.length <= 256, `${alert.labels.source_alertname!.length}`);
      assert.ok(alert.labels.source_alertname!.startsWith('AAAA'));
    });

    it('are the same for the same subject, so a resolve ends the alert that fired', () => {
      const fired = approvalRequired(subject(), { createdAt: CREATED_AT, approvalTimeoutMs: 3600_000 });
      const resolved = approvalRequired(subject(), { createdAt: CREATED_AT + 5000, approvalTimeoutMs: 60_000 });
      assert.deepEqual(resolved.labels, fired.labels);
    });
  });

  describe('annotations', () => {
    it('link the Workflow in the Argo UI when its base URL is known', () => {
      const alert = remediationFailed(subject(), { state: 'failed' }, { argoUiUrl: 'https://argo.example.com/' });
      assert.equal(
        alert.annotations.workflow_url,
        'https://argo.example.com/workflows/argo/kube-sentinel-crashloop-abc12',
      );
    });

    it('have no workflow_url without the Argo UI base URL', () => {
      const alert = remediationFailed(subject(), { state: 'failed' });
      assert.equal(alert.annotations.workflow_url, undefined);
      assert.deepEqual(Object.keys(alert.annotations).sort(), ['description', 'summary']);
    });

    it("carry the rule's runbook_url when it has one", () => {
      const alert = remediationFailed(subject({ runbookUrl: 'https://runbooks.example.com/crashloop' }), {
        state: 'failed',
      });
      assert.equal(alert.annotations.runbook_url, 'https://runbooks.example.com/crashloop');
    });

    it('keep the summary on one line, whatever the names hold', () => {
      const alert = remediationFailed(subject({ target: { namespace: 'shop', pod: 'checkout\n\nx' } }), {
        state: 'failed',
        message: 'line one\nline two',
      });
      assert.doesNotMatch(alert.annotations.summary!, /\n/);
    });

    it("bound the description when Argo's message is huge", () => {
      const alert = remediationFailed(subject(), { state: 'failed', message: 'x'.repeat(100_000) });
      assert.ok(alert.annotations.description!.length <= 4096);
    });
  });

  describe('KubeSentinelRemediationFailed', () => {
    it("says the remediation failed and gives Argo's message", () => {
      const alert = remediationFailed(subject(), { state: 'failed', message: 'child "restart" failed: exit code 1' });
      assert.equal(alert.labels.alertname, 'KubeSentinelRemediationFailed');
      assert.match(alert.annotations.summary!, /argo\/kube-sentinel-crashloop-abc12 .*shop\/checkout.* failed/);
      assert.match(alert.annotations.description!, /It failed: child "restart" failed: exit code 1\./);
      assert.match(alert.annotations.description!, /Rule crashloop-restart \(P2\)/);
      assert.match(alert.annotations.description!, /after alert KubePodCrashLooping/);
    });

    it('says so when Argo gave no message', () => {
      const alert = remediationFailed(subject(), { state: 'failed' });
      assert.match(alert.annotations.description!, /Argo gave no message/);
    });

    it('says the outcome is unknown when the Workflow was deleted before it completed', () => {
      const alert = remediationFailed(subject(), { state: 'unknown' });
      assert.match(alert.annotations.summary!, /deleted before it completed/);
      assert.match(alert.annotations.description!, /unknown/);
      assert.doesNotMatch(alert.annotations.description!, /It failed/);
    });
  });

  describe('KubeSentinelRemediationExhausted', () => {
    const attempts = [
      { workflow: 'argo/kube-sentinel-crashloop-aaaaa', at: CREATED_AT, state: 'failed' as const, message: 'OOM' },
      { workflow: 'argo/kube-sentinel-crashloop-ccccc', at: CREATED_AT + 1200_000, state: 'succeeded' as const },
      { workflow: 'argo/kube-sentinel-crashloop-bbbbb', at: CREATED_AT + 600_000 },
    ];
    const exhausted = () =>
      remediationExhausted(
        subject({ workflow: undefined }),
        { attempts, maxAttempts: 3, attemptWindowMs: 3600_000 },
        { argoUiUrl: 'https://argo.example.com' },
      );

    it('names the latest attempt as its Workflow', () => {
      const alert = exhausted();
      assert.equal(alert.labels.alertname, 'KubeSentinelRemediationExhausted');
      assert.equal(alert.labels.workflow, 'kube-sentinel-crashloop-ccccc');
      assert.equal(alert.labels.workflow_namespace, 'argo');
      assert.equal(
        alert.annotations.workflow_url,
        'https://argo.example.com/workflows/argo/kube-sentinel-crashloop-ccccc',
      );
    });

    it('lists the attempts, newest first, with their states, and the budget that is spent', () => {
      const description = exhausted().annotations.description!;
      assert.match(description, /attempt budget \(3 per 1h for cooldown key crashloop-restart\/shop\/checkout\)/);
      const order = ['ccccc (succeeded', 'bbbbb (state not recorded', 'aaaaa (failed'].map((text) =>
        description.indexOf(text),
      );
      assert.ok(
        order.every((at) => at >= 0),
        description,
      );
      assert.deepEqual(
        [...order].sort((a, b) => a - b),
        order,
      );
      assert.match(description, /aaaaa \(failed, created 2026-11-29T12:00:00\.000Z: OOM\)/);
      assert.match(exhausted().annotations.summary!, /3 attempts within 1h/);
    });

    it('keeps the Workflow the subject names', () => {
      const alert = remediationExhausted(subject(), { attempts, maxAttempts: 3, attemptWindowMs: 3600_000 });
      assert.equal(alert.labels.workflow, 'kube-sentinel-crashloop-abc12');
    });
  });

  describe('KubeSentinelApprovalRequired', () => {
    it('says how to approve and when the Workflow will be stopped', () => {
      const alert = approvalRequired(
        subject(),
        { createdAt: CREATED_AT, approvalTimeoutMs: 3600_000 },
        { argoUiUrl: 'https://argo.example.com' },
      );
      const description = alert.annotations.description!;
      assert.equal(alert.labels.alertname, 'KubeSentinelApprovalRequired');
      assert.match(alert.annotations.summary!, /awaits approval/);
      assert.match(description, /argo resume -n argo kube-sentinel-crashloop-abc12/);
      assert.match(
        description,
        /Argo UI \(https:\/\/argo\.example\.com\/workflows\/argo\/kube-sentinel-crashloop-abc12\)/,
      );
      assert.match(description, /by 2026-11-29T13:00:00\.000Z \(approval timeout 1h\)/);
    });
  });

  describe('workflowUrl', () => {
    it('joins the base URL and the Workflow without doubling the slash', () => {
      assert.equal(
        workflowUrl('http://argo:2746/', WORKFLOW),
        'http://argo:2746/workflows/argo/kube-sentinel-crashloop-abc12',
      );
      assert.equal(
        workflowUrl('http://argo:2746', WORKFLOW),
        'http://argo:2746/workflows/argo/kube-sentinel-crashloop-abc12',
      );
    });
  });
});
