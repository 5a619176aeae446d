/**
 * Several `kube-sentinel serve` replicas behind one real redis-server, fed by a real
 * Alertmanager HA pair and by direct v2 posts, submitting to one fake Kubernetes API: however
 * many paths an alert takes, it becomes exactly one Workflow, and the rate limit is one budget
 * for all replicas.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Alertmanager } from '../support/alertmanager.js';
import { TEST_RULES } from '../support/app.js';
import {
  auditTrail,
  crashLoopAlert,
  type DecisionView,
  fingerprint,
  type PostableAlert,
  post,
  startAlertmanagerPair,
  workflowCountProblems,
  writeRules,
} from '../support/cluster.js';
import { type FakeKube, startFakeKube } from '../support/fake-kube.js';
import { writeKubeconfig } from '../support/kubeconfig.js';
import { eventually } from '../support/processes.js';
import { type Receiver, startReceiver } from '../support/receiver.js';
import { type RedisServer, startRedis } from '../support/redis-server.js';

const TOKEN = 'replicas-token';
const KUBE_TOKEN = 'kube-token';
const ALERT_COUNT = 30;
/** Every wait below is bounded; this bounds each test as a whole, so a hang is a failure rather than a stuck run. */
const BOUNDED = { timeout: 60_000 };

interface Replicas {
  redis: RedisServer;
  kube: FakeKube;
  receivers: Receiver[];
}

/** One Redis, one fake Kubernetes API with the rules' templates, and `names.length` replicas (named in the audit trail by HOSTNAME). */
async function startReplicas(names: string[], extraArgs: string[]): Promise<Replicas> {
  const redis = await startRedis();
  const kube = await startFakeKube({ token: KUBE_TOKEN });
  kube.addWorkflowTemplate('argo', 'diagnose-pod');
  kube.addWorkflowTemplate('argo', 'diagnose-and-recover');
  const { dir, file } = writeRules(TEST_RULES);
  const args = [
    '--port',
    '0',
    '--rules',
    file,
    '--redis-url',
    redis.url,
    '--kubeconfig',
    writeKubeconfig(dir, kube.url, KUBE_TOKEN),
    ...extraArgs,
  ];
  const receivers = await Promise.all(
    names.map((name) => startReceiver(args, { KUBE_SENTINEL_AUTH_TOKEN: TOKEN, HOSTNAME: name })),
  );
  return { redis, kube, receivers };
}

async function stopReplicas(replicas: Partial<Replicas>): Promise<void> {
  await Promise.all((replicas.receivers ?? []).map((receiver) => receiver.stop()));
  await replicas.kube?.close();
  await replicas.redis?.stop();
}

function expectOnceEach(alerts: PostableAlert[]): Map<string, number> {
  return new Map(alerts.map((alert) => [fingerprint(alert), 1]));
}

describe('three replicas behind one Redis and an Alertmanager HA pair', () => {
  const replicas: Partial<Replicas> = {};
  let kube: FakeKube;
  let a: Receiver;
  let b: Receiver;
  let c: Receiver;
  let alertmanagers: Alertmanager[] = [];
  let peers: { clusterAddresses: string[]; seen: [string[], string[]] };

  // Distinct namespaces: every alert has a cooldown key of its own, so each must get its own Workflow.
  const alerts = Array.from({ length: ALERT_COUNT }, (_, i) =>
    crashLoopAlert({ namespace: `team-${i}`, pod: `api-0`, container: 'api' }),
  );
  const fingerprints = new Set(alerts.map(fingerprint));

  before(async () => {
    Object.assign(
      replicas,
      await startReplicas(['replica-a', 'replica-b', 'replica-c'], ['--max-workflows-per-minute', '0']),
    );
    kube = replicas.kube!;
    [a, b, c] = replicas.receivers as [Receiver, Receiver, Receiver];
    const started = await startAlertmanagerPair(
      [`${a.url}/webhook/alertmanager`, `${b.url}/webhook/alertmanager`],
      TOKEN,
    );
    alertmanagers = started.pair;
    peers = { clusterAddresses: started.clusterAddresses, seen: started.peers };
  });

  after(async () => {
    // One at a time: the second still acknowledges the first's leave message, where two
    // leaving at once each wait out memberlist's 10 s leave timeout.
    for (const am of alertmanagers) await am.stop();
    await stopReplicas(replicas);
  });

  /**
   * Audit entries for our alerts that came in through an Alertmanager (replicas a and b only get
   * webhooks), at or after `since`. Repeats of a cooldown fold into one entry naming the latest
   * replica (SPEC §11); c gets each alert once per test, so a folded entry holds one from a or b.
   */
  const viaAlertmanager = async (since: number, of: ReadonlySet<string> = fingerprints): Promise<DecisionView[]> =>
    (await auditTrail(c.url, TOKEN)).filter(
      (d) =>
        of.has(d.fingerprint) &&
        (d.replica === 'replica-a' || d.replica === 'replica-b' || (d.count ?? 1) >= 2) &&
        Date.parse(d.lastAt ?? d.at ?? '') >= since,
    );

  it('runs the two Alertmanagers as one gossiping cluster', BOUNDED, () => {
    // Both /api/v2/status answers list both cluster members (by their loopback gossip
    // addresses) with status "ready": memberlist joined them, so they share the notification
    // log and deduplicate like a production HA pair rather than acting as two strangers.
    assert.deepEqual(peers.seen[0], peers.clusterAddresses);
    assert.deepEqual(peers.seen[1], peers.clusterAddresses);
  });

  it(
    'turns N alerts sent through both Alertmanagers and straight to a third replica into exactly N Workflows',
    BOUNDED,
    async () => {
      const since = Date.now() - 1000;
      // As Prometheus does with an HA pair: every alert to both Alertmanagers; and as a Prometheus
      // pointed straight at Kube Sentinel, the same alerts to replica c, all at once.
      const [, , direct] = await Promise.all([
        alertmanagers[0]!.postAlerts(alerts),
        alertmanagers[1]!.postAlerts(alerts),
        post(c.url, '/api/v2/alerts', alerts, TOKEN),
      ]);
      assert.equal(direct.status, 200, JSON.stringify(direct.decisions));
      assert.equal(direct.decisions.length, ALERT_COUNT);
      for (const decision of direct.decisions)
        assert.ok(['submitted', 'cooldown'].includes(decision.outcome), JSON.stringify(decision));

      const delivered = await eventually(
        async () => {
          const decisions = await viaAlertmanager(since);
          const seen = new Set(decisions.map((d) => d.fingerprint));
          const submitted = new Set(
            (await auditTrail(a.url, TOKEN)).filter((d) => d.outcome === 'submitted').map((d) => d.fingerprint),
          );
          return seen.size === ALERT_COUNT && [...fingerprints].every((f) => submitted.has(f)) ? decisions : undefined;
        },
        `decisions from the Alertmanager deliveries for all ${ALERT_COUNT} alerts`,
        30_000,
      );
      for (const decision of delivered)
        assert.ok(['submitted', 'cooldown'].includes(decision.outcome), JSON.stringify(decision));

      assert.deepEqual(workflowCountProblems(kube.workflows, expectOnceEach(alerts)), []);
      assert.equal(kube.workflows.length, ALERT_COUNT);
    },
  );

  it('submits nothing more when every alert is sent again through every path', BOUNDED, async () => {
    const since = Date.now();
    const firstNames = new Set(kube.workflows.map((w) => w.metadata.name));
    // Alertmanager deduplicates on label sets only: a changed annotation alone is not notified
    // again within repeat_interval (checked against 0.25). A second pod of the same workload
    // joining each group makes both Alertmanagers notify the whole group again, which resends
    // every original alert (with its new annotation) alongside its sibling.
    const changed = alerts.map((alert) =>
      crashLoopAlert(alert.labels, { description: 'Pod is still crash looping', summary: 'resent' }),
    );
    const siblings = alerts.map((alert) => crashLoopAlert({ ...alert.labels, pod: 'api-1' }));
    const [, , ...direct] = await Promise.all([
      alertmanagers[0]!.postAlerts([...changed, ...siblings]),
      alertmanagers[1]!.postAlerts([...changed, ...siblings]),
      ...[a, b, c].map((replica) => post(replica.url, '/api/v2/alerts', alerts, TOKEN)),
    ]);
    for (const answer of direct) {
      assert.equal(answer.status, 200);
      assert.deepEqual(
        new Set(answer.decisions.map((d) => d.outcome)),
        new Set(['cooldown']),
        JSON.stringify(answer.decisions),
      );
    }

    // Only this renotification carries the siblings, so their decisions prove it reached a
    // replica for every group; the original alert rode in the same webhook.
    const siblingFingerprints = new Set(siblings.map(fingerprint));
    const renotified = await eventually(
      async () => {
        const decisions = await viaAlertmanager(since, siblingFingerprints);
        return new Set(decisions.map((d) => d.fingerprint)).size === ALERT_COUNT ? decisions : undefined;
      },
      `the Alertmanagers' renotification of all ${ALERT_COUNT} groups`,
      30_000,
    );
    for (const decision of renotified) assert.equal(decision.outcome, 'cooldown', JSON.stringify(decision));
    // The audit time is when a decision ended: the HA twin of the first notification (sent by
    // the second Alertmanager after its peer timeout) may still end in this window. It re-used
    // the first claim's name and was answered 409 AlreadyExists: it names an existing Workflow.
    const lateTwin = (d: DecisionView) =>
      d.outcome === 'submitted' && /already exists/.test(d.reason ?? '') && firstNames.has(d.workflow?.name ?? '');
    // The resent originals rode in the siblings' webhooks, so they were decided too. Their
    // repeats fold into one entry per alert (SPEC §11) whose replica is the latest to decide: every
    // entry of theirs since then, by any path, says cooldown.
    const resent = (await auditTrail(c.url, TOKEN)).filter(
      (d) => fingerprints.has(d.fingerprint) && Date.parse(d.lastAt ?? d.at ?? '') >= since && !lateTwin(d),
    );
    assert.equal(new Set(resent.map((d) => d.fingerprint)).size, ALERT_COUNT, JSON.stringify(resent));
    for (const decision of resent) assert.equal(decision.outcome, 'cooldown', JSON.stringify(decision));

    assert.deepEqual(workflowCountProblems(kube.workflows, expectOnceEach(alerts)), []);
    assert.equal(kube.workflows.length, ALERT_COUNT);
  });
});

describe('the global rate limit across replicas', () => {
  const LIMIT = 5;
  const SENT = 15;
  const replicas: Partial<Replicas> = {};

  before(async () => {
    Object.assign(
      replicas,
      await startReplicas(['replica-a', 'replica-b', 'replica-c'], ['--max-workflows-per-minute', String(LIMIT)]),
    );
  });
  after(() => stopReplicas(replicas));

  it(
    `lets ${LIMIT} of ${SENT} distinct alerts sent round-robin to three replicas through, and answers the other ${SENT - LIMIT} rate_limited with 200`,
    BOUNDED,
    async () => {
      const receivers = replicas.receivers!;
      const kube = replicas.kube!;
      const alerts = Array.from({ length: SENT }, (_, i) => crashLoopAlert({ namespace: `storm-${i}`, pod: 'web-0' }));
      // The budget is per fixed minute: a burst that straddled a window boundary would rightly get
      // two budgets. Wait (on the clock, bounded) until the burst fits in one window.
      await eventually(() => (Date.now() % 60_000 < 50_000 ? true : undefined), 'a minute window with 10 s to spare');
      const answers = await Promise.all(
        alerts.map((alert, i) => post(receivers[i % receivers.length]!.url, '/api/v2/alerts', [alert], TOKEN)),
      );

      for (const answer of answers) assert.equal(answer.status, 200, JSON.stringify(answer.decisions));
      const outcomes = answers.map((answer) => answer.decisions[0]?.outcome);
      assert.equal(outcomes.filter((o) => o === 'submitted').length, LIMIT, JSON.stringify(outcomes));
      assert.equal(outcomes.filter((o) => o === 'rate_limited').length, SENT - LIMIT, JSON.stringify(outcomes));
      assert.equal(kube.workflows.length, LIMIT);
      const submittedNames = answers.flatMap((answer) =>
        answer.decisions.filter((d) => d.outcome === 'submitted').map((d) => d.workflow?.name),
      );
      assert.deepEqual(kube.workflows.map((w) => w.metadata.name).sort(), submittedNames.sort());

      // Counted: the replicas' decision counters add up to the refusals.
      let counted = 0;
      for (const receiver of receivers) {
        const metrics = await (await fetch(`${receiver.url}/metrics`)).text();
        for (const match of metrics.matchAll(
          /^kube_sentinel_decisions_total\{[^}]*outcome="rate_limited"[^}]*\} (\d+)$/gm,
        ))
          counted += Number(match[1]);
      }
      assert.equal(counted, SENT - LIMIT);
    },
  );
});
