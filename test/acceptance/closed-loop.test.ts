/**
 * SPEC §9 end to end: three `kube-sentinel serve` replicas behind one real Redis, submitting to
 * the fake Kubernetes API (which plays the Argo controller too), escalating to a real
 * Alertmanager. What became of every Workflow is recorded once, failures and spent budgets reach
 * Alertmanager and are resolved when the key heals, approvals wait for a person, and the cluster
 * is the record of what was done when Redis forgets.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { type Alertmanager, startAlertmanager } from '../support/alertmanager.js';
import {
  auditTrail,
  crashLoopAlert,
  type DecisionView,
  fingerprint,
  type PostableAlert,
  post,
  workflowCountProblems,
  writeRules,
} from '../support/cluster.js';
import { type FakeKube, type StoredWorkflow, startFakeKube } from '../support/fake-kube.js';
import { writeKubeconfig } from '../support/kubeconfig.js';
import { eventually } from '../support/processes.js';
import { type Receiver, startReceiver } from '../support/receiver.js';
import { type RedisServer, startRedis } from '../support/redis-server.js';

const TOKEN = 'closed-loop-token';
const KUBE_TOKEN = 'kube-token';
const ARGO_UI = 'https://argo.example.com';
const BOUNDED = { timeout: 90_000 };
const V2 = '/api/v2/alerts';

const RULES = `
rules:
  - name: crashloop
    match: {pattern: CrashLoop}
    priority: P2
    remediation:
      action: trigger-argo-workflow
      params: {workflow_template: diagnose-pod}
      cooldown: 1s
      max_attempts: 2
      attempt_window: 1h
      runbook_url: https://runbooks.example.com/crashloop
  - name: steady
    match: {pattern: SteadyFailure}
    priority: P3
    remediation:
      action: trigger-argo-workflow
      params: {workflow_template: diagnose-pod}
      cooldown: 10m
  - name: approve
    match: {pattern: NeedsApproval}
    priority: P1
    remediation:
      action: trigger-argo-workflow
      params: {workflow_template: diagnose-pod}
      cooldown: 1s
      approval: required
      approval_timeout: 1h
  - name: approve-briefly
    match: {pattern: BriefApproval}
    priority: P1
    remediation:
      action: trigger-argo-workflow
      params: {workflow_template: diagnose-pod}
      cooldown: 1s
      approval: required
      approval_timeout: 2s
`;

interface AlertmanagerAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  status: { state: string };
}

/** The alerts Alertmanager holds as active with this alertname (resolved ones are not listed). */
async function activeAlerts(am: Alertmanager, alertname: string): Promise<AlertmanagerAlert[]> {
  const filter = encodeURIComponent(`alertname="${alertname}"`);
  const response = await fetch(`${am.url}/api/v2/alerts?active=true&silenced=false&inhibited=false&filter=${filter}`);
  assert.equal(response.status, 200);
  return (await response.json()) as AlertmanagerAlert[];
}

interface RemediationView {
  workflow: string;
  rule: string;
  cooldownKey: string;
  target: string;
  state: string;
  message?: string;
  approver?: string;
  attempt?: number;
}

async function remediations(receiver: Receiver): Promise<RemediationView[]> {
  const res = await fetch(`${receiver.url}/v1/remediations?limit=1000`, {
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  assert.equal(res.status, 200);
  return ((await res.json()) as { remediations: RemediationView[] }).remediations;
}

/** The sum over every replica of one metric's samples whose labels include `labels`. */
async function metricSum(receivers: Receiver[], name: string, labels: Record<string, string>): Promise<number> {
  let sum = 0;
  for (const receiver of receivers) {
    const text = await (await fetch(`${receiver.url}/metrics`)).text();
    for (const line of text.split('\n')) {
      if (!line.startsWith(`${name}{`)) continue;
      if (Object.entries(labels).every(([key, value]) => line.includes(`${key}="${value}"`))) {
        sum += Number(line.slice(line.lastIndexOf(' ') + 1));
      }
    }
  }
  return sum;
}

function firing(alert: PostableAlert): Record<string, unknown> {
  return { ...alert, startsAt: new Date().toISOString() };
}

/** As Prometheus sends a resolved alert on /api/v2/alerts: endsAt in the past. */
function resolved(alert: PostableAlert): Record<string, unknown> {
  return {
    ...alert,
    startsAt: new Date(Date.now() - 60_000).toISOString(),
    endsAt: new Date(Date.now() - 1000).toISOString(),
  };
}

function alertOf(pattern: string, namespace: string, pod: string): PostableAlert {
  return crashLoopAlert({ alertname: pattern, namespace, pod, container: 'app' }, { description: pattern });
}

describe('closing the loop, with three replicas, a real Redis and a real Alertmanager', () => {
  let redis: RedisServer;
  let kube: FakeKube;
  let am: Alertmanager;
  let receivers: Receiver[] = [];
  let [a, b, c] = [] as unknown as [Receiver, Receiver, Receiver];

  before(async () => {
    redis = await startRedis();
    kube = await startFakeKube({ token: KUBE_TOKEN });
    kube.addWorkflowTemplate('argo', 'diagnose-pod');
    // Its own notifications go nowhere: here it is the team's Alertmanager, read through its API.
    am = await startAlertmanager({ webhookUrl: 'http://127.0.0.1:9/unused' });
    const { dir, file } = writeRules(RULES);
    const args = [
      '--port',
      '0',
      '--rules',
      file,
      '--redis-url',
      redis.url,
      '--kubeconfig',
      writeKubeconfig(dir, kube.url, KUBE_TOKEN),
      '--max-workflows-per-minute',
      '0',
      '--escalation-url',
      am.url,
      '--argo-ui-url',
      ARGO_UI,
    ];
    receivers = await Promise.all(
      ['replica-a', 'replica-b', 'replica-c'].map((name) =>
        startReceiver(args, { KUBE_SENTINEL_AUTH_TOKEN: TOKEN, HOSTNAME: name }),
      ),
    );
    [a, b, c] = receivers as [Receiver, Receiver, Receiver];
    // Every replica lists and then watches: 3 watches of the one namespace the rules submit to.
    await kube.waitForWatches(3);
  });

  after(async () => {
    await Promise.all(receivers.map((receiver) => receiver.stop()));
    await am?.stop();
    await kube?.close();
    await redis?.stop();
  });

  /** Posts to one replica and returns the alert's decision. */
  const decide = async (receiver: Receiver, body: Record<string, unknown>): Promise<DecisionView> => {
    const answer = await post(receiver.url, V2, [body], TOKEN);
    assert.equal(answer.status, 200, JSON.stringify(answer.decisions));
    const [decision] = answer.decisions;
    assert.ok(decision);
    return decision;
  };

  const workflowOf = (decision: DecisionView): StoredWorkflow => {
    const found = kube.getWorkflow(decision.workflow?.namespace ?? '', decision.workflow?.name ?? '');
    assert.ok(found, `the Workflow of ${JSON.stringify(decision)}`);
    return found;
  };

  const remediationOf = async (workflow: StoredWorkflow, state: string, receiver = c) =>
    eventually(
      async () =>
        (await remediations(receiver)).find(
          (r) => r.workflow === `${workflow.metadata.namespace}/${workflow.metadata.name}` && r.state === state,
        ),
      `${workflow.metadata.name} recorded ${state}`,
      15_000,
    );

  describe('a remediation that fails, then one that succeeds, then a spent budget', () => {
    const alert = alertOf('CrashLoopBackOff', 'shop', 'checkout-7d9f8b6c5-x2x9k');

    it(
      "records the failure with Argo's message, counts it once, and fires KubeSentinelRemediationFailed",
      BOUNDED,
      async () => {
        const decision = await decide(a, firing(alert));
        assert.equal(decision.outcome, 'submitted');
        const workflow = workflowOf(decision);
        kube.setPhase('argo', workflow.metadata.name, 'Running');
        kube.setPhase('argo', workflow.metadata.name, 'Failed', { message: 'child "restart" failed: exit code 1' });

        const failed = await remediationOf(workflow, 'failed');
        assert.equal(failed.message, 'child "restart" failed: exit code 1');
        assert.equal(failed.rule, 'crashloop');
        assert.equal(failed.target, 'shop/checkout-7d9f8b6c5-x2x9k');
        assert.equal(failed.attempt, 1);

        const [fired] = await eventually(async () => {
          const listed = await activeAlerts(am, 'KubeSentinelRemediationFailed');
          return listed.length > 0 ? listed : undefined;
        }, 'KubeSentinelRemediationFailed in Alertmanager');
        assert.equal(fired?.status.state, 'active');
        assert.deepEqual(
          {
            rule: fired?.labels.rule,
            priority: fired?.labels.priority,
            severity: fired?.labels.severity,
            namespace: fired?.labels.namespace,
            pod: fired?.labels.pod,
            workload: fired?.labels.workload,
            workflow: fired?.labels.workflow,
            workflow_namespace: fired?.labels.workflow_namespace,
            source_alertname: fired?.labels.source_alertname,
          },
          {
            rule: 'crashloop',
            priority: 'P2',
            severity: 'critical',
            namespace: 'shop',
            pod: 'checkout-7d9f8b6c5-x2x9k',
            workload: 'checkout',
            workflow: workflow.metadata.name,
            workflow_namespace: 'argo',
            source_alertname: 'CrashLoopBackOff',
          },
        );
        assert.equal(fired?.annotations.workflow_url, `${ARGO_UI}/workflows/argo/${workflow.metadata.name}`);
        assert.equal(fired?.annotations.runbook_url, 'https://runbooks.example.com/crashloop');
        assert.match(fired?.annotations.description ?? '', /child "restart" failed: exit code 1/);
        await eventually(
          async () =>
            (await metricSum(receivers, 'kube_sentinel_remediations_total', { rule: 'crashloop', state: 'failed' })) ===
            1
              ? true
              : undefined,
          'the failure counted once over the three replicas',
        );
      },
    );

    it('resolves KubeSentinelRemediationFailed when a later remediation of the key succeeds', BOUNDED, async () => {
      // The cooldown is 1 s: the next alert of the workload is a second attempt.
      const decision = await eventually(async () => {
        const answer = await decide(b, firing(alert));
        return answer.outcome === 'submitted' ? answer : undefined;
      }, 'a second remediation after the cooldown');
      const workflow = workflowOf(decision);
      assert.equal(workflow.metadata.annotations?.['kube-sentinel.io/attempt'], '2');
      kube.setPhase('argo', workflow.metadata.name, 'Running');
      kube.setPhase('argo', workflow.metadata.name, 'Succeeded');
      await remediationOf(workflow, 'succeeded');
      await eventually(
        async () => ((await activeAlerts(am, 'KubeSentinelRemediationFailed')).length === 0 ? true : undefined),
        'KubeSentinelRemediationFailed resolved',
      );
    });

    it(
      'escalates the third alert within the window: no third Workflow, KubeSentinelRemediationExhausted fires',
      BOUNDED,
      async () => {
        const before = kube.workflows.length;
        const decision = await eventually(async () => {
          const answer = await decide(c, firing(alert));
          return answer.outcome === 'escalated' ? answer : undefined;
        }, 'an escalated decision once the cooldown is over');
        assert.match(decision.reason ?? '', /attempt budget spent: 2 of 2 within 1h/);
        assert.equal(kube.workflows.length, before);
        const [exhausted] = await eventually(async () => {
          const listed = await activeAlerts(am, 'KubeSentinelRemediationExhausted');
          return listed.length > 0 ? listed : undefined;
        }, 'KubeSentinelRemediationExhausted in Alertmanager');
        assert.equal(exhausted?.labels.rule, 'crashloop');
        assert.equal(exhausted?.labels.namespace, 'shop');
        // Escalated again and again, it is sent once (the audit trail holds every send).
        await decide(a, firing(alert));
        const sends = (await auditTrail(c.url, TOKEN)).filter(
          (entry) =>
            (entry as { alertname?: string; kind?: string }).kind === 'escalation' &&
            entry.alertname === 'KubeSentinelRemediationExhausted',
        );
        assert.equal(sends.length, 1);
      },
    );
    it('has recorded each state change and sent each escalation once, over the three replicas', BOUNDED, async () => {
      const trail = (await auditTrail(c.url, TOKEN)) as unknown as {
        kind?: string;
        workflow?: string;
        state?: string;
        alertname?: string;
        status?: string;
        replica?: string;
      }[];
      const changes = trail.filter((entry) => entry.kind === 'remediation').map((e) => `${e.workflow} ${e.state}`);
      assert.equal(new Set(changes).size, changes.length, `a state change recorded twice: ${changes.join(', ')}`);
      // pending, running, failed; pending, running, succeeded
      assert.equal(changes.length, 6, changes.join(', '));
      const sends = trail
        .filter((entry) => entry.kind === 'escalation')
        .map((e) => `${e.alertname} ${e.status} ${e.workflow}`);
      assert.equal(new Set(sends).size, sends.length, `an escalation sent twice: ${sends.join(', ')}`);
      assert.deepEqual(sends.map((send) => send.split(' ').slice(0, 2).join(' ')).sort(), [
        'KubeSentinelRemediationExhausted firing',
        'KubeSentinelRemediationFailed firing',
        'KubeSentinelRemediationFailed resolved',
      ]);
      await eventually(
        async () =>
          (await metricSum(receivers, 'kube_sentinel_escalations_total', { result: 'sent' })) === 3 ? true : undefined,
        'three escalations counted as sent over the three replicas',
      );
    });
  });

  describe('approval', () => {
    it(
      'creates the Workflow suspended, asks for approval, and records the approver once resumed',
      BOUNDED,
      async () => {
        const decision = await decide(a, firing(alertOf('NeedsApproval', 'payments', 'ledger-0')));
        assert.equal(decision.outcome, 'awaiting_approval');
        const workflow = workflowOf(decision);
        assert.equal(workflow.spec.suspend, true);
        await remediationOf(workflow, 'awaiting_approval');
        const [asked] = await eventually(async () => {
          const listed = (await activeAlerts(am, 'KubeSentinelApprovalRequired')).filter(
            (x) => x.labels.workflow === workflow.metadata.name,
          );
          return listed.length > 0 ? listed : undefined;
        }, 'KubeSentinelApprovalRequired in Alertmanager');
        assert.match(asked?.annotations.description ?? '', new RegExp(`argo resume -n argo ${workflow.metadata.name}`));

        kube.resume('argo', workflow.metadata.name, 'alice');
        const approved = await remediationOf(workflow, 'running');
        assert.equal(approved.approver, 'alice');
        await eventually(
          async () =>
            (await activeAlerts(am, 'KubeSentinelApprovalRequired')).some(
              (x) => x.labels.workflow === workflow.metadata.name,
            )
              ? undefined
              : true,
          'KubeSentinelApprovalRequired resolved',
        );
      },
    );

    it('stops a remediation whose source alert resolves while it awaits approval', BOUNDED, async () => {
      const alert = alertOf('NeedsApproval', 'payments', 'billing-0');
      const decision = await decide(b, firing(alert));
      assert.equal(decision.outcome, 'awaiting_approval');
      const workflow = workflowOf(decision);
      await remediationOf(workflow, 'awaiting_approval');
      // Sent to another replica than the one that created it: every replica watches.
      assert.equal((await decide(c, resolved(alert))).outcome, 'resolved');
      const cancelled = await remediationOf(workflow, 'cancelled');
      assert.match(cancelled.message ?? '', /source alert resolved/);
      assert.equal(kube.getWorkflow('argo', workflow.metadata.name)?.spec.shutdown, 'Stop');
      await eventually(
        async () =>
          (await activeAlerts(am, 'KubeSentinelApprovalRequired')).some(
            (x) => x.labels.workflow === workflow.metadata.name,
          )
            ? undefined
            : true,
        'its KubeSentinelApprovalRequired resolved',
      );
    });

    it('stops a remediation whose approval times out', BOUNDED, async () => {
      const decision = await decide(c, firing(alertOf('BriefApproval', 'payments', 'audit-0')));
      assert.equal(decision.outcome, 'awaiting_approval');
      const workflow = workflowOf(decision);
      const cancelled = await remediationOf(workflow, 'cancelled');
      assert.match(cancelled.message ?? '', /approval expired/);
      assert.equal(kube.getWorkflow('argo', workflow.metadata.name)?.spec.shutdown, 'Stop');
    });
  });

  describe('the watch', () => {
    it('misses nothing and records nothing twice across a dropped connection and a 410 Gone', BOUNDED, async () => {
      const alerts = [0, 1, 2].map((i) => alertOf('CrashLoopBackOff', `watch-${i}`, 'api-0'));
      const created = await Promise.all(
        alerts.map(async (alert, i) => workflowOf(await decide(receivers[i]!, firing(alert)))),
      );
      for (const workflow of created) await remediationOf(workflow, 'pending');

      kube.dropWatches();
      // Changed while no replica watches: seen when they resume from their last resourceVersion.
      kube.setPhase('argo', created[0]!.metadata.name, 'Running');
      await kube.waitForWatches(3);
      await remediationOf(created[0]!, 'running');

      // History compacted while disconnected: the resumed watches get 410 and relist.
      kube.dropWatches();
      kube.setPhase('argo', created[0]!.metadata.name, 'Succeeded');
      kube.setPhase('argo', created[1]!.metadata.name, 'Failed', { message: 'boom' });
      kube.deleteWorkflow('argo', created[2]!.metadata.name);
      kube.compactHistory();
      await kube.waitForWatches(3);
      await remediationOf(created[0]!, 'succeeded');
      await remediationOf(created[1]!, 'failed');
      await remediationOf(created[2]!, 'unknown');

      const names = new Set(created.map((w) => `argo/${w.metadata.name}`));
      const entries = (await auditTrail(c.url, TOKEN))
        .map((entry) => entry as unknown as { kind?: string; workflow?: string; state?: string })
        .filter((entry) => entry.kind === 'remediation' && names.has(entry.workflow ?? ''));
      const counts = new Map<string, number>();
      for (const entry of entries)
        counts.set(`${entry.workflow} ${entry.state}`, (counts.get(`${entry.workflow} ${entry.state}`) ?? 0) + 1);
      assert.deepEqual(
        [...counts.values()].filter((n) => n !== 1),
        [],
        JSON.stringify([...counts]),
      );
      // pending, running, succeeded; pending, failed; pending, unknown
      assert.equal(entries.length, 7, JSON.stringify([...counts]));
    });
  });

  describe('a cooldown ended by hand', () => {
    it(
      'lets the next alert through on another replica at once, though the cluster still has the Workflow',
      BOUNDED,
      async () => {
        const alert = alertOf('SteadyFailure', 'manual', 'fixed-0');
        const first = await decide(a, firing(alert));
        assert.equal(first.outcome, 'submitted');
        // Answered from b's memory from the second repeat on, without Redis.
        assert.equal((await decide(b, firing(alert))).outcome, 'cooldown');
        assert.equal((await decide(b, firing(alert))).outcome, 'cooldown');
        const headers = { authorization: `Bearer ${TOKEN}` };
        const listed = (await (await fetch(`${c.url}/v1/cooldowns?limit=1000`, { headers })).json()) as {
          cooldowns: { key: string; workflow: string; state: string }[];
        };
        const held = listed.cooldowns.find((cooldown) => cooldown.key === first.cooldownKey);
        assert.deepEqual(
          { workflow: held?.workflow, state: held?.state },
          { workflow: first.workflow?.name, state: 'committed' },
        );

        const ended = await fetch(`${c.url}/v1/cooldowns/${encodeURIComponent(first.cooldownKey ?? '')}`, {
          method: 'DELETE',
          headers,
        });
        assert.equal(ended.status, 200);
        assert.equal(((await ended.json()) as { ended: { workflow: string } }).ended.workflow, first.workflow?.name);
        const again = await eventually(
          async () => {
            const decision = await decide(b, firing(alert));
            return decision.outcome === 'submitted' ? decision : undefined;
          },
          'the next alert on b remediated',
          5000,
        );
        assert.notEqual(again.workflow?.name, first.workflow?.name);
        assert.equal((await decide(a, firing(alert))).outcome, 'cooldown');
      },
    );
  });

  describe('a Workflow watch that fails', () => {
    it('is a warning in /readyz and a metric, still ready, until it recovers', BOUNDED, async () => {
      const readiness = async () => {
        const res = await fetch(`${a.url}/readyz`);
        return { status: res.status, body: (await res.json()) as { warnings?: string[] } };
      };
      await kube.refuseConnections();
      try {
        const failing = await eventually(async () => {
          const answer = await readiness();
          return answer.body.warnings?.some((w) => /watch of Workflows in argo/.test(w)) ? answer : undefined;
        }, 'a watch warning in /readyz');
        assert.equal(failing.status, 200);
        assert.equal(await metricSum([a], 'kube_sentinel_workflow_watch_healthy', { workflow_namespace: 'argo' }), 0);
      } finally {
        await kube.acceptConnections();
      }
      await eventually(
        async () => (((await readiness()).body.warnings ?? []).length === 0 ? true : undefined),
        'the warning gone once the API answers again',
        30_000,
      );
      assert.equal(await metricSum([a], 'kube_sentinel_workflow_watch_healthy', { workflow_namespace: 'argo' }), 1);
    });
  });

  describe('Redis loses its data', () => {
    const workloads = Array.from({ length: 20 }, (_, i) => alertOf('SteadyFailure', 'steady', `worker-${i}-0`));

    const keepFiring = async (rounds: number) => {
      for (let round = 0; round < rounds; round++) {
        await Promise.all(
          workloads.map(async (alert, i) => {
            const answer = await post(receivers[(i + round) % 3]!.url, V2, [firing(alert)], TOKEN);
            return answer.status;
          }),
        );
      }
    };

    const expectOneEach = () =>
      assert.deepEqual(
        workflowCountProblems(
          kube.workflows.filter((w) => w.metadata.annotations?.['kube-sentinel.io/target']?.startsWith('steady/')),
          new Map(workloads.map((alert) => [fingerprint(alert), 1])),
        ),
        [],
      );

    it(
      'gives no workload a second Workflow within its cooldown after FLUSHALL or a restart without persistence',
      BOUNDED,
      async () => {
        await keepFiring(2);
        await eventually(
          () =>
            kube.workflows.filter((w) => w.metadata.annotations?.['kube-sentinel.io/target']?.startsWith('steady/'))
              .length === 20
              ? true
              : undefined,
          '20 Workflows',
        );
        // Every replica's cache holds them before Redis forgets.
        await eventually(
          async () =>
            (await remediations(a)).filter((r) => r.target.startsWith('steady/')).length === 20 ? true : undefined,
          'recorded',
        );
        expectOneEach();

        const client = new Redis(redis.url);
        try {
          assert.equal(await client.flushall(), 'OK');
        } finally {
          client.disconnect();
        }
        await keepFiring(3);
        expectOneEach();
        // Each workload went to the three replicas in turn: two remembered its cooldown, the third
        // asked the flushed Redis, and the cluster answered (the trail is gone with the restart below).
        const afterFlush = await auditTrail(b.url, TOKEN);
        const repaired = afterFlush.filter(
          (d) => d.outcome === 'cooldown' && /found in the cluster/.test(d.reason ?? ''),
        );
        assert.ok(repaired.length >= 20, `the cluster answered for the forgotten keys (${repaired.length})`);

        await redis.stop();
        await redis.start();
        await eventually(
          async () => ((await fetch(`${a.url}/readyz`)).status === 200 ? true : undefined),
          'the replicas reconnect to the empty Redis',
        );
        await keepFiring(3);
        expectOneEach();
        // From the cluster or, until a replica's subscription is back, from its memory: never submitted.
        const afterRestart = await auditTrail(b.url, TOKEN);
        const steady = afterRestart.filter((d) => workloads.some((w) => fingerprint(w) === d.fingerprint));
        assert.ok(steady.length > 0);
        assert.deepEqual(
          steady.filter((d) => d.outcome === 'submitted'),
          [],
        );
      },
    );
  });
});
