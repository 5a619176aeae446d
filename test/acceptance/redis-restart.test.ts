/**
 * SPEC §9 and §12 when Redis restarts empty while the receivers keep running: the cluster is the
 * record of what was done, so the page's remediations and approvals come back from the Workflows
 * the replicas' watchers hold, without waiting for a relist (the watch did not break, and a
 * relist comes only on 410 Gone or repeated failures). Two `kube-sentinel serve` replicas (the
 * built CLI), one real redis-server killed and started again empty on the same port, the fake
 * Kubernetes API.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { crashLoopAlert, logLines, post, writeRules } from '../support/cluster.js';
import { type FakeKube, type StoredWorkflow, startFakeKube } from '../support/fake-kube.js';
import { writeKubeconfig } from '../support/kubeconfig.js';
import { eventually } from '../support/processes.js';
import { type Receiver, startReceiver } from '../support/receiver.js';
import { type RedisServer, startRedis } from '../support/redis-server.js';

const TOKEN = 'redis-restart-token';
const KUBE_TOKEN = 'kube-token';
const BOUNDED = { timeout: 90_000 };
/** The replay follows the subscription, which ioredis reconnects within a few seconds. */
const BACK_WITHIN_MS = 30_000;

const RULES = `
rules:
  - name: crashloop
    match: {pattern: CrashLoop}
    priority: P2
    remediation:
      action: trigger-argo-workflow
      params: {workflow_template: diagnose-pod}
  - name: approve
    match: {pattern: NeedsApproval}
    priority: P1
    remediation:
      action: trigger-argo-workflow
      params: {workflow_template: diagnose-pod}
      approval: required
      approval_timeout: 1h
`;

interface RemediationView {
  workflow: string;
  state: string;
  submittedAt: string;
  finishedAt?: string;
  message?: string;
}

interface EscalationView {
  id: string;
  alertname: string;
  labels: Record<string, string>;
}

/** One GET on the API; undefined while it does not answer 200 (Redis away: 503). */
async function read<T>(receiver: Receiver, path: string): Promise<T | undefined> {
  const res = await fetch(`${receiver.url}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
  return res.status === 200 ? ((await res.json()) as T) : undefined;
}

const remediations = async (receiver: Receiver) =>
  (await read<{ remediations: RemediationView[] }>(receiver, '/v1/remediations?limit=100'))?.remediations;

const escalations = async (receiver: Receiver) =>
  (await read<{ escalations: EscalationView[] }>(receiver, '/v1/escalations'))?.escalations;

describe('Redis restarted empty while the receivers run', () => {
  let redis: RedisServer;
  let kube: FakeKube;
  let receivers: Receiver[] = [];

  before(async () => {
    redis = await startRedis();
    kube = await startFakeKube({ token: KUBE_TOKEN });
    kube.addWorkflowTemplate('argo', 'diagnose-pod');
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
    ];
    receivers = await Promise.all(
      ['replica-a', 'replica-b'].map((name) =>
        startReceiver(args, { KUBE_SENTINEL_AUTH_TOKEN: TOKEN, HOSTNAME: name }),
      ),
    );
    await kube.waitForWatches(2);
  });

  after(async () => {
    await Promise.all(receivers.map((receiver) => receiver.stop()));
    await kube?.close();
    await redis?.stop();
  });

  it(
    'lists the failed remediation and the one awaiting approval again, with its approval escalation, each recorded once',
    BOUNDED,
    async () => {
      const [a, b] = receivers as [Receiver, Receiver];
      const submit = async (receiver: Receiver, alertname: string, pod: string): Promise<StoredWorkflow> => {
        const alert = crashLoopAlert({ alertname, namespace: 'shop', pod, container: 'app' });
        const answer = await post(
          receiver.url,
          '/api/v2/alerts',
          [{ ...alert, startsAt: new Date().toISOString() }],
          TOKEN,
        );
        const ref = answer.decisions[0]?.workflow;
        const workflow = kube.getWorkflow(ref?.namespace ?? '', ref?.name ?? '');
        assert.ok(workflow, `a Workflow for ${alertname}: ${JSON.stringify(answer.decisions)}`);
        return workflow;
      };
      const failed = await submit(a, 'CrashLoopBackOff', 'checkout-7d9f8b6c5-x2x9k');
      kube.setPhase('argo', failed.metadata.name, 'Running');
      kube.setPhase('argo', failed.metadata.name, 'Failed', { message: 'child "restart" failed: exit code 1' });
      const awaiting = await submit(b, 'NeedsApproval', 'ledger-0');
      const ids = { failed: `argo/${failed.metadata.name}`, awaiting: `argo/${awaiting.metadata.name}` };
      const expected = { [ids.failed]: 'failed', [ids.awaiting]: 'awaiting_approval' };

      const bothListed = (receiver: Receiver) =>
        eventually(
          async () => {
            const listed = await remediations(receiver);
            const states = Object.fromEntries((listed ?? []).map((r) => [r.workflow, r.state]));
            return Object.entries(expected).every(([id, state]) => states[id] === state) ? listed : undefined;
          },
          `${JSON.stringify(expected)} listed by ${receiver.url}`,
          BACK_WITHIN_MS,
        );
      const approvalListed = (receiver: Receiver) =>
        eventually(
          async () => (await escalations(receiver))?.find((e) => e.id === `approval:${ids.awaiting}`),
          `the approval escalation listed by ${receiver.url}`,
          BACK_WITHIN_MS,
        );
      const before = await bothListed(a);
      await approvalListed(a);
      const workflowLists = () =>
        kube.requests.filter((r) => r.method === 'GET' && r.path.endsWith('/workflows') && r.query.watch !== 'true')
          .length;
      const listsBefore = workflowLists();
      const replays = (receiver: Receiver) =>
        logLines(receiver.process.output()).filter((line) => String(line.msg).startsWith('the store is back'));
      const replaysBefore = receivers.map((receiver) => replays(receiver).length);

      // A real restart, not FLUSHALL: the connections and the subscription drop, and it comes back empty.
      await redis.stop();
      await redis.start();

      for (const receiver of receivers) {
        const again = await bothListed(receiver);
        // As the Workflows say, not as when they were recorded again.
        for (const remediation of before) {
          const now = again.find((r) => r.workflow === remediation.workflow);
          assert.deepEqual(
            { submittedAt: now?.submittedAt, finishedAt: now?.finishedAt, message: now?.message },
            {
              submittedAt: remediation.submittedAt,
              finishedAt: remediation.finishedAt,
              message: remediation.message,
            },
          );
        }
        const approval = await approvalListed(receiver);
        assert.equal(approval.alertname, 'KubeSentinelApprovalRequired');
        assert.equal(approval.labels.workflow, awaiting.metadata.name);
        // The failure is recent and nothing healed it since: still due.
        const open = (await escalations(receiver)) ?? [];
        assert.ok(
          open.some((e) => e.id === `failed:${ids.failed}` && e.alertname === 'KubeSentinelRemediationFailed'),
          JSON.stringify(open),
        );
      }

      // Both replicas replayed (a line each, with the count), and the markers let one of them record each state.
      for (const [i, receiver] of receivers.entries()) {
        const line = await eventually(
          () => replays(receiver).slice(replaysBefore[i])[0],
          `the replay logged by ${receiver.url}`,
          BACK_WITHIN_MS,
        );
        assert.equal(line.workflows, 2, JSON.stringify(line));
      }
      const trail = (await read<{ decisions: { kind?: string; workflow?: string; state?: string }[] }>(
        a,
        '/v1/decisions?limit=1000',
      )) ?? { decisions: [] };
      const recordedAgain = trail.decisions
        .filter((entry) => entry.kind === 'remediation')
        .map((entry) => `${entry.workflow} ${entry.state}`)
        .sort();
      assert.deepEqual(recordedAgain, [`${ids.awaiting} awaiting_approval`, `${ids.failed} failed`].sort());
      // Not from a relist: the watches never broke.
      assert.equal(workflowLists(), listsBefore);
    },
  );
});
