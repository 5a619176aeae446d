/**
 * A fault matrix against the built `kube-sentinel serve`, a real redis-server and the fake
 * Kubernetes API. Alerts are delivered as Alertmanager delivers them (the same body again after
 * every non-2xx), before, during and after each fault; at the end every alert that should have
 * been remediated has exactly one Workflow, and none has two.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TEST_RULES } from '../support/app.js';
import { argoObjectProblems } from '../support/argo-schema.js';
import {
  type Answer,
  attemptsOf,
  crashLoopAlert,
  type DecisionView,
  deliver,
  fingerprint,
  logLines,
  networkErrorCode,
  type PostableAlert,
  post,
  webhookBody,
  workflowCountProblems,
  writeRules,
} from '../support/cluster.js';
import { type FakeKube, type StoredWorkflow, startFakeKube } from '../support/fake-kube.js';
import { writeKubeconfig } from '../support/kubeconfig.js';
import { eventually } from '../support/processes.js';
import { type Receiver, startReceiver } from '../support/receiver.js';
import { type RedisServer, startRedis } from '../support/redis-server.js';

const TOKEN = 'faults-token';
/** Every wait below is bounded; this bounds each test as a whole, so a hang is a failure rather than a stuck run. */
const BOUNDED = { timeout: 60_000 };
const KUBE_TOKEN = 'kube-token';
const WEBHOOK = '/webhook/alertmanager';
const SUBMIT_TIMEOUT_MS = 500;
const PENDING_LEASE_MS = 1000;
/** The store's command timeout (2 s) for the claim, and again for the audit append, plus slack. */
const SLOW_STORE_ANSWER_BOUND_MS = 6000;
/** Far below serve's own 20 s shutdown deadline: finishing one held create takes a couple of seconds. */
const SHUTDOWN_BOUND_MS = 8000;

/** The test rules plus one whose Workflows go to their own namespace, for a per-namespace RBAC denial. */
const FAULT_RULES = `${TEST_RULES}  - name: restricted-diagnose
    match:
      pattern: "restricted area"
    priority: P2
    remediation:
      action: trigger-argo-workflow
      params:
        workflow_template: diagnose-pod
        namespace: restricted
      cooldown: 10m
`;

/** Three alerts for three workloads of one namespace: sent before, during and after a fault. */
function phases(
  namespace: string,
  annotations: Record<string, string> = {},
): [PostableAlert, PostableAlert, PostableAlert] {
  return [
    crashLoopAlert({ namespace, pod: 'before-0' }, annotations),
    crashLoopAlert({ namespace, pod: 'during-0' }, annotations),
    crashLoopAlert({ namespace, pod: 'after-0' }, annotations),
  ];
}

function decisionOf(answer: Answer): DecisionView {
  assert.equal(
    answer.decisions.length,
    1,
    `one decision expected: ${answer.status} ${answer.error ?? ''} ${JSON.stringify(answer.decisions)}`,
  );
  return answer.decisions[0]!;
}

function createRequests(kube: FakeKube): number {
  return kube.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/workflows')).length;
}

async function status(url: string, path: string): Promise<number | string> {
  try {
    return (await fetch(`${url}${path}`)).status;
  } catch (err) {
    return networkErrorCode(err);
  }
}

function workflowsOf(workflows: readonly StoredWorkflow[], alert: PostableAlert): string[] {
  return workflows
    .filter((w) => w.metadata.annotations?.['kube-sentinel.io/fingerprint'] === fingerprint(alert))
    .map((w) => w.metadata.name);
}

describe('Kube Sentinel under faults', () => {
  let redis: RedisServer;
  let kube: FakeKube;
  let receiver: Receiver;
  let rulesFile: string;
  let kubeconfig: string;
  /** Workflows each alert should have in `kube` at the end (alerts not listed: none). */
  const expected = new Map<string, number>();
  /** Everything started by a single test, stopped at the end whatever happens. */
  const extraReceivers: Receiver[] = [];
  const extraRedis: RedisServer[] = [];
  const extraKubes: FakeKube[] = [];

  const args = (redisUrl: string, kubeconfigPath: string, extra: string[] = []) => [
    '--port',
    '0',
    '--rules',
    rulesFile,
    '--redis-url',
    redisUrl,
    '--kubeconfig',
    kubeconfigPath,
    '--max-workflows-per-minute',
    '0',
    ...extra,
  ];

  const startExtra = async (receiverArgs: string[], name: string): Promise<Receiver> => {
    const started = await startReceiver(receiverArgs, { KUBE_SENTINEL_AUTH_TOKEN: TOKEN, HOSTNAME: name });
    extraReceivers.push(started);
    return started;
  };

  /** Delivers one alert as a webhook group of one, redelivering until 2xx, and expects it submitted. */
  const remediate = async (url: string, alert: PostableAlert, workflows: Map<string, number> = expected) => {
    const delivery = deliver(url, WEBHOOK, webhookBody([alert]), { token: TOKEN });
    const decision = decisionOf(await delivery.done);
    assert.equal(decision.outcome, 'submitted', JSON.stringify(decision));
    workflows.set(fingerprint(alert), 1);
    return { decision, attempts: delivery.attempts };
  };

  /** The alerts' Workflows in `kube` right now, which must be exactly one each. */
  const assertOnceEach = (alerts: PostableAlert[], workflows: readonly StoredWorkflow[] = kube.workflows) => {
    for (const alert of alerts)
      assert.equal(workflowsOf(workflows, alert).length, 1, `one Workflow for ${JSON.stringify(alert.labels)}`);
  };

  before(async () => {
    redis = await startRedis();
    kube = await startFakeKube({ token: KUBE_TOKEN });
    kube.addWorkflowTemplate('argo', 'diagnose-pod');
    kube.addWorkflowTemplate('argo', 'diagnose-and-recover');
    // The fake compiles the Workflow schema on first use (about 2 s); done here, so that the
    // first create is not mistaken for a slow API server by the 500 ms submit timeout.
    argoObjectProblems({
      apiVersion: 'argoproj.io/v1alpha1',
      kind: 'Workflow',
      metadata: { name: 'warm-up' },
      spec: {},
    });
    const rules = writeRules(FAULT_RULES);
    rulesFile = rules.file;
    kubeconfig = writeKubeconfig(rules.dir, kube.url, KUBE_TOKEN);
    receiver = await startReceiver(args(redis.url, kubeconfig, ['--submit-timeout', `${SUBMIT_TIMEOUT_MS}ms`]), {
      KUBE_SENTINEL_AUTH_TOKEN: TOKEN,
      HOSTNAME: 'main',
    });
  });

  after(async () => {
    await Promise.all([receiver, ...extraReceivers].map((r) => r?.stop('SIGKILL')));
    await Promise.all([kube, ...extraKubes].map((k) => k?.close()));
    await Promise.all([redis, ...extraRedis].map((r) => r?.stop()));
  });

  describe('Kubernetes API faults', () => {
    it(
      'answers a Kubernetes 500 with 503, and redelivery submits exactly once with the same name',
      BOUNDED,
      async () => {
        const [first, during, last] = phases('k8s-500');
        await remediate(receiver.url, first);
        kube.failNext(2, { status: 500, message: 'etcdserver: request timed out' });
        const { decision, attempts } = await remediate(receiver.url, during);
        assert.deepEqual(
          attempts.map((a) => a.status),
          [503, 503, 200],
        );
        const retried = decisionOf(attempts[0]!);
        assert.equal(retried.outcome, 'retry');
        assert.match(retried.reason ?? '', /500/);
        // Every retry of one claim re-uses its Workflow name: that is what makes a create that did land answer 409.
        assert.equal(decision.workflow?.name, retried.workflow?.name);
        await remediate(receiver.url, last);
        assertOnceEach([first, during, last]);
      },
    );

    for (const [code, retryAfterSeconds] of [
      [503, 7],
      [429, 11],
    ] as const) {
      it(
        `passes a Kubernetes ${code} with Retry-After ${retryAfterSeconds} on as a 503 whose Retry-After is at least ${retryAfterSeconds}`,
        BOUNDED,
        async () => {
          const [first, during, last] = phases(`k8s-${code}`);
          await remediate(receiver.url, first);
          kube.failNext(1, { status: code, retryAfterSeconds });
          const { attempts } = await remediate(receiver.url, during);
          assert.deepEqual(
            attempts.map((a) => a.status),
            [503, 200],
          );
          assert.ok(Number(attempts[0]!.retryAfter) >= retryAfterSeconds, `Retry-After: ${attempts[0]!.retryAfter}`);
          assert.match(decisionOf(attempts[0]!).reason ?? '', new RegExp(String(code)));
          await remediate(receiver.url, last);
          assertOnceEach([first, during, last]);
        },
      );
    }

    it(
      'counts a create that the API answered only after the submit timeout, but stored, as submitted on redelivery',
      BOUNDED,
      async () => {
        const [first, during, last] = phases('k8s-slow');
        await remediate(receiver.url, first);
        kube.delayNext(1, 3 * SUBMIT_TIMEOUT_MS, { store: true });
        const { decision, attempts } = await remediate(receiver.url, during);
        const timedOut = attempts[0]!;
        assert.equal(timedOut.status, 503);
        assert.match(decisionOf(timedOut).reason ?? '', /timeout/);
        // Answered by the receiver's own timeout, not by the slow API server.
        assert.ok(
          timedOut.endedAt - timedOut.startedAt < 3 * SUBMIT_TIMEOUT_MS,
          `${timedOut.endedAt - timedOut.startedAt} ms`,
        );
        assert.match(decision.reason ?? '', /already exists/);
        assert.equal(decision.workflow?.name, decisionOf(timedOut).workflow?.name);
        await remediate(receiver.url, last);
        assertOnceEach([first, during, last]);
      },
    );

    it(
      'excludes an alert whose Deployment opted out by annotation, and answers 503 while a Namespace cannot be read (403), submitting once it can',
      BOUNDED,
      async () => {
        kube.putObject(
          { kind: 'Deployment', namespace: 'k8s-opt-out', name: 'checkout' },
          { 'kube-sentinel.io/remediation': 'disabled' },
        );
        const optedOut = crashLoopAlert({ namespace: 'k8s-opt-out', pod: 'checkout-7d9f8b6c5-x2x9k' });
        const excluded = decisionOf(await post(receiver.url, WEBHOOK, webhookBody([optedOut]), TOKEN));
        assert.equal(excluded.outcome, 'excluded', JSON.stringify(excluded));
        assert.equal(excluded.reason, 'Deployment k8s-opt-out/checkout has kube-sentinel.io/remediation: disabled');
        assert.deepEqual(workflowsOf(kube.workflows, optedOut), []);

        const unreadable = crashLoopAlert({ namespace: 'k8s-forbidden', pod: 'api-0' });
        kube.failReads('Namespace', { status: 403 });
        const delivery = deliver(receiver.url, WEBHOOK, webhookBody([unreadable]), { token: TOKEN });
        try {
          const [refused] = await attemptsOf(delivery, 1, 'the delivery while the Namespace cannot be read');
          assert.equal(refused?.status, 503);
          assert.equal(decisionOf(refused!).outcome, 'retry');
          assert.match(decisionOf(refused!).reason ?? '', /^cannot read Namespace k8s-forbidden .*: 403 Forbidden/);
          assert.deepEqual(workflowsOf(kube.workflows, unreadable), []);
        } finally {
          kube.failReads('Namespace', undefined);
        }
        assert.equal(decisionOf(await delivery.done).outcome, 'submitted');
        expected.set(fingerprint(unreadable), 1);
        assertOnceEach([unreadable]);
      },
    );

    it('keeps answering 503 while the API refuses connections, and submits once when it is back', BOUNDED, async () => {
      const [first, during, last] = phases('k8s-refused');
      await remediate(receiver.url, first);
      await kube.refuseConnections();
      const delivery = deliver(receiver.url, WEBHOOK, webhookBody([during]), { token: TOKEN });
      try {
        for (const attempt of await attemptsOf(delivery, 2, 'the delivery during the outage')) {
          assert.equal(attempt.status, 503);
          assert.match(decisionOf(attempt).reason ?? '', /ECONNREFUSED/);
        }
      } finally {
        await kube.acceptConnections();
      }
      assert.equal(decisionOf(await delivery.done).outcome, 'submitted');
      expected.set(fingerprint(during), 1);
      await remediate(receiver.url, last);
      assertOnceEach([first, during, last]);
    });

    it(
      'fails a create forbidden in one namespace with 200, logs which permission is missing, and releases the claim',
      BOUNDED,
      async () => {
        // A fake of its own: lifting the denial needs reset() (the fake has no allowCreate), which
        // would forget the shared fake's Workflows.
        const rbacKube = await startFakeKube({ token: KUBE_TOKEN });
        extraKubes.push(rbacKube);
        const addTemplates = () => {
          for (const namespace of ['argo', 'restricted']) rbacKube.addWorkflowTemplate(namespace, 'diagnose-pod');
        };
        addTemplates();
        const rbacReceiver = await startExtra(
          args(redis.url, writeKubeconfig(mkdtempSync(join(tmpdir(), 'ks-rbac-')), rbacKube.url, KUBE_TOKEN)),
          'rbac',
        );
        const rbacExpected = new Map<string, number>();
        const area = { description: 'restricted area is crash looping' };
        const [first, during, last] = phases('rbac', area);
        await remediate(rbacReceiver.url, first, rbacExpected);

        rbacKube.denyCreate('restricted');
        const denied = await post(rbacReceiver.url, WEBHOOK, webhookBody([during]), TOKEN);
        assert.equal(denied.status, 200, 'a permanent failure must not make Alertmanager redeliver');
        const failed = decisionOf(denied);
        assert.equal(failed.outcome, 'failed');
        assert.match(failed.reason ?? '', /403/);
        // The claim was released: another pod of the same workload is tried (and refused) again, not put in cooldown.
        const sibling = crashLoopAlert({ namespace: 'rbac', pod: 'during-1' }, area);
        assert.equal(
          decisionOf(await post(rbacReceiver.url, WEBHOOK, webhookBody([sibling]), TOKEN)).outcome,
          'failed',
        );
        // Other namespaces are not affected by the denial.
        const elsewhere = crashLoopAlert({ namespace: 'rbac', pod: 'elsewhere-0' });
        await remediate(rbacReceiver.url, elsewhere, rbacExpected);

        const refusal = await eventually(
          () =>
            logLines(rbacReceiver.process.output()).find(
              (line) => line.level === 50 && line.msg !== 'decision' && line.workflow === failed.workflow?.name,
            ),
          'the error log line of the refused create',
        );
        assert.match(String(refusal.msg), /workflows\.argoproj\.io/);
        assert.match(String(refusal.msg), /namespace restricted/);
        const metrics = await (await fetch(`${rbacReceiver.url}/metrics`)).text();
        assert.match(metrics, /^kube_sentinel_submissions_total\{[^}]*result="permanent"[^}]*\} 2$/m);

        // Fixing RBAC: the fake forgets its Workflows on reset, so keep the ones it had.
        const beforeFix = rbacKube.workflows;
        rbacKube.reset();
        addTemplates();
        await remediate(rbacReceiver.url, during, rbacExpected);
        await remediate(rbacReceiver.url, last, rbacExpected);
        assert.deepEqual(workflowCountProblems([...beforeFix, ...rbacKube.workflows], rbacExpected), []);
        assert.equal(workflowsOf([...beforeFix, ...rbacKube.workflows], sibling).length, 0);
      },
    );
  });

  describe('Redis faults', () => {
    it(
      'starts with Redis down, answers 503 fail-closed, and works once Redis is up without a restart',
      BOUNDED,
      async () => {
        const lateRedis = await startRedis();
        extraRedis.push(lateRedis);
        await lateRedis.stop();
        const late = await startExtra(
          args(lateRedis.url, kubeconfig, ['--submit-timeout', `${SUBMIT_TIMEOUT_MS}ms`]),
          'late',
        );
        assert.equal(await status(late.url, '/healthz'), 200);
        const readyz = await fetch(`${late.url}/readyz`);
        assert.equal(readyz.status, 503);
        assert.match(JSON.stringify(await readyz.json()), /cooldown store/);

        // No "before" here: nothing can be decided before Redis is up.
        const [, during, last] = phases('redis-late');
        const delivery = deliver(late.url, WEBHOOK, webhookBody([during]), { token: TOKEN });
        for (const attempt of await attemptsOf(delivery, 2, 'the delivery while Redis is down')) {
          assert.equal(attempt.status, 503);
          assert.equal(decisionOf(attempt).outcome, 'retry');
          assert.match(decisionOf(attempt).reason ?? '', /cooldown store unavailable/);
        }
        await lateRedis.start();
        assert.equal(decisionOf(await delivery.done).outcome, 'submitted');
        expected.set(fingerprint(during), 1);
        await eventually(
          async () => ((await status(late.url, '/readyz')) === 200 ? true : undefined),
          '/readyz to turn 200',
        );
        await remediate(late.url, last);
        assert.equal(late.process.child.exitCode, null);
        assertOnceEach([during, last]);
      },
    );

    it('survives losing Redis mid-run without a crash, and reconnects by itself to an empty one', BOUNDED, async () => {
      const [first, during, last] = phases('redis-lost');
      const flowing = crashLoopAlert({ namespace: 'redis-lost', pod: 'flowing-0' });
      await remediate(receiver.url, first);
      const inFlight = deliver(receiver.url, WEBHOOK, webhookBody([flowing]), { token: TOKEN });
      await redis.stop();
      const delivery = deliver(receiver.url, WEBHOOK, webhookBody([during]), { token: TOKEN });
      try {
        for (const attempt of await attemptsOf(delivery, 2, 'the delivery while Redis is gone')) {
          assert.equal(attempt.status, 503);
          assert.match(decisionOf(attempt).reason ?? '', /cooldown store unavailable/);
        }
        assert.equal(receiver.process.child.exitCode, null);
        assert.equal(await status(receiver.url, '/healthz'), 200);
        assert.equal(await status(receiver.url, '/readyz'), 503);
      } finally {
        await redis.start();
      }
      for (const settled of [inFlight, delivery]) assert.equal(decisionOf(await settled.done).outcome, 'submitted');
      expected.set(fingerprint(flowing), 1);
      expected.set(fingerprint(during), 1);
      await remediate(receiver.url, last);
      assertOnceEach([first, flowing, during, last]);
      assert.equal(receiver.process.child.exitCode, null);
      const output = receiver.process.output();
      assert.doesNotMatch(output, /uncaught|unhandled/i);
      assert.equal(logLines(output).filter((line) => Number(line.level) >= 60).length, 0, 'no fatal log line');
    });

    it('answers 503 within a bound while Redis hangs, and submits once when it answers again', BOUNDED, async () => {
      const [first, during, last] = phases('redis-slow');
      await remediate(receiver.url, first);
      redis.pause();
      const delivery = deliver(receiver.url, WEBHOOK, webhookBody([during]), { token: TOKEN });
      try {
        const [hung] = await attemptsOf(delivery, 1, 'the delivery while Redis hangs', 2 * SLOW_STORE_ANSWER_BOUND_MS);
        assert.equal(hung!.status, 503);
        assert.match(decisionOf(hung!).reason ?? '', /cooldown store unavailable/);
        assert.ok(
          hung!.endedAt - hung!.startedAt < SLOW_STORE_ANSWER_BOUND_MS,
          `answered after ${hung!.endedAt - hung!.startedAt} ms`,
        );
      } finally {
        redis.resume();
      }
      assert.equal(decisionOf(await delivery.done).outcome, 'submitted');
      expected.set(fingerprint(during), 1);
      await remediate(receiver.url, last);
      assertOnceEach([first, during, last]);
    });

    it(
      'does not remediate an alert again after Redis restarted empty: the cluster still has its Workflow',
      BOUNDED,
      async () => {
        // The empty store has forgotten the cooldown; the cluster, the record of what was done,
        // has not. The next alert for the workload finds the Workflow by its key-hash label and is
        // `cooldown`, and the claim is repaired, so the alert after it is answered by Redis alone.
        const [first, , last] = phases('redis-empty');
        const { decision: original } = await remediate(receiver.url, first);
        const again = () => post(receiver.url, WEBHOOK, webhookBody([first]), TOKEN);
        assert.equal(decisionOf(await again()).outcome, 'cooldown');

        await redis.stop();
        await redis.start();
        await eventually(
          async () => ((await status(receiver.url, '/readyz')) === 200 ? true : undefined),
          'the receiver to reconnect to Redis',
        );

        // Answered from the cluster (the empty Redis knows nothing), or, until the replica's
        // subscription is back and it forgets what it remembered, from its memory: either way
        // the original Workflow's cooldown.
        const afterRestart = decisionOf(await again());
        assert.equal(afterRestart.outcome, 'cooldown');
        assert.match(
          afterRestart.reason ?? '',
          new RegExp(`^${original.workflow?.name} was submitted( .* \\(found in the cluster\\))?$`),
        );
        const repaired = decisionOf(await again());
        assert.equal(repaired.outcome, 'cooldown');
        assert.equal(repaired.reason, `${original.workflow?.name} was submitted`);
        assert.deepEqual(workflowsOf(kube.workflows, first), [original.workflow?.name]);
        await remediate(receiver.url, last);
        assertOnceEach([first, last]);
      },
    );
  });

  describe('replicas that die or stop', () => {
    // The lease must outlive the submit timeout (a setting error otherwise).
    const lease = ['--pending-lease', `${PENDING_LEASE_MS}ms`, '--submit-timeout', `${PENDING_LEASE_MS - 100}ms`];
    let doomed: Receiver;
    let alsoDoomed: Receiver;
    let survivor: Receiver;
    let stopping: Receiver;

    before(async () => {
      [doomed, alsoDoomed, survivor, stopping] = await Promise.all([
        startExtra(args(redis.url, kubeconfig, lease), 'doomed'),
        startExtra(args(redis.url, kubeconfig, lease), 'also-doomed'),
        startExtra(args(redis.url, kubeconfig, lease), 'survivor'),
        // The default lease and submit timeout: this one finishes its held create while stopping.
        startExtra(args(redis.url, kubeconfig), 'stopping'),
      ]);
    });

    /** Sends `alert` to `victim`, waits until its create reached the API (held there), then SIGKILLs it. */
    const killBetweenClaimAndCreate = async (victim: Receiver, alert: PostableAlert) => {
      kube.delayNext(1, 60_000, { store: false });
      const creates = createRequests(kube);
      const sentAt = Date.now();
      const held = post(victim.url, WEBHOOK, webhookBody([alert]), TOKEN);
      await eventually(() => (createRequests(kube) > creates ? true : undefined), 'the held create request');
      assert.equal(await victim.stop('SIGKILL'), 'SIGKILL');
      assert.equal((await held).status, 0, 'the killed replica never answered');
      return sentAt;
    };

    it(
      'lets another replica remediate the workload once the lease of a replica killed between claim and create expires',
      BOUNDED,
      async () => {
        const alert = crashLoopAlert({ namespace: 'killed', pod: 'worker-0' });
        const sentAt = await killBetweenClaimAndCreate(doomed, alert);
        // Another pod of the same workload keeps firing (Prometheus resends every minute, here
        // much faster): the dead replica's pending claim holds it off only until the lease expires.
        const sibling = crashLoopAlert({ namespace: 'killed', pod: 'worker-1' });
        const answers: Answer[] = [];
        const submitted = await eventually(
          async () => {
            const answer = await post(survivor.url, WEBHOOK, webhookBody([sibling]), TOKEN);
            answers.push(answer);
            assert.equal(answer.status, 200);
            return decisionOf(answer).outcome === 'submitted' ? answer : undefined;
          },
          'the sibling alert to be submitted',
          10 * PENDING_LEASE_MS,
        );
        const waiting = answers.slice(0, -1);
        assert.ok(waiting.length > 0, 'the first resend came while the lease held');
        for (const answer of waiting) {
          assert.equal(decisionOf(answer).outcome, 'cooldown');
          assert.match(decisionOf(answer).reason ?? '', /being submitted/);
        }
        // The claim was taken after sentAt, so its lease cannot have expired before sentAt + lease.
        assert.ok(
          submitted.endedAt >= sentAt + PENDING_LEASE_MS,
          `submitted ${submitted.endedAt - sentAt} ms after the claim`,
        );
        expected.set(fingerprint(sibling), 1);
        expected.set(fingerprint(alert), 0);
        assert.equal(
          kube.workflows.filter(
            (w) => w.metadata.annotations?.['kube-sentinel.io/cooldown-key'] === 'crashloop:killed/worker',
          ).length,
          1,
        );
      },
    );

    it(
      "lets the redelivery of the same alert to another replica re-use the dead replica's claim and its Workflow name at once",
      BOUNDED,
      async () => {
        const alert = crashLoopAlert({ namespace: 'killed-redelivered', pod: 'worker-0' });
        await killBetweenClaimAndCreate(alsoDoomed, alert);
        // Alertmanager got no answer and redelivers the same group to the next replica. The dead
        // replica's pending claim belongs to this very alert, so it is re-used (its create never landed).
        const preview = decisionOf(await post(survivor.url, '/v1/explain', webhookBody([alert]), TOKEN));
        assert.equal(preview.outcome, 'dry_run');
        const { decision, attempts } = await remediate(survivor.url, alert);
        assert.equal(attempts.length, 1);
        assert.equal(decision.workflow?.name, preview.workflow?.name);
        assertOnceEach([alert]);
      },
    );

    it(
      'finishes the in-flight decision on SIGTERM, refuses new connections, commits the claim and exits 0',
      BOUNDED,
      async () => {
        const alert = crashLoopAlert({ namespace: 'shutdown', pod: 'api-0' });
        kube.delayNext(1, 1500, { store: true });
        const creates = createRequests(kube);
        let answered = false;
        const inFlight = post(stopping.url, WEBHOOK, webhookBody([alert]), TOKEN).finally(() => (answered = true));
        await eventually(() => (createRequests(kube) > creates ? true : undefined), 'the held create request');
        const signalledAt = Date.now();
        stopping.process.child.kill('SIGTERM');

        // A connection that races the listener's close may be reset instead; refused is what must follow.
        await eventually(
          async () => ((await status(stopping.url, '/healthz')) === 'ECONNREFUSED' ? true : undefined),
          'a new connection to be refused',
        );
        assert.equal(answered, false, 'new connections were refused while the decision was still in flight');

        const answer = await inFlight;
        assert.equal(answer.status, 200);
        assert.equal(decisionOf(answer).outcome, 'submitted');
        expected.set(fingerprint(alert), 1);
        assert.equal(await stopping.process.exited, 0);
        assert.ok(Date.now() - signalledAt < SHUTDOWN_BOUND_MS, `exited ${Date.now() - signalledAt} ms after SIGTERM`);

        // The claim was committed before exit: another pod of the workload, on another replica, is in cooldown.
        const sibling = crashLoopAlert({ namespace: 'shutdown', pod: 'api-1' });
        const later = decisionOf(await post(receiver.url, WEBHOOK, webhookBody([sibling]), TOKEN));
        assert.equal(later.outcome, 'cooldown');
        assert.match(later.reason ?? '', /was submitted/);
        assertOnceEach([alert]);
      },
    );
  });

  it(
    'leaves every alert that should have been remediated with exactly its Workflows, and none with two',
    BOUNDED,
    () => {
      assert.ok(expected.size > 20, `${expected.size} alerts tracked`);
      assert.deepEqual(workflowCountProblems(kube.workflows, expected), []);
    },
  );
});
