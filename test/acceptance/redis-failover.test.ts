/**
 * Three `kube-sentinel serve` replicas on a Redis that survives a node (SPEC §10): a primary with
 * two replicas behind three redis-sentinel processes, or a six-node Redis Cluster. While alerts
 * keep arriving on every replica (new workloads, and the same alerts again, as Alertmanager
 * repeats them), the master is killed: during the failover the answers are 200 or 503 with
 * Retry-After (fail closed, never a guess), afterwards every alert is decided, and no workload
 * has a second Workflow within its cooldown (`--redis-wait-replicas 1`).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import calculateSlot from 'cluster-key-slot';
import { RedisKeys } from '../../src/stores/redis-keys.js';
import { TEST_RULES } from '../support/app.js';
import {
  type Answer,
  crashLoopAlert,
  fingerprint,
  type PostableAlert,
  post,
  workflowCountProblems,
  writeRules,
} from '../support/cluster.js';
import { type FakeKube, startFakeKube } from '../support/fake-kube.js';
import { writeKubeconfig } from '../support/kubeconfig.js';
import { type Receiver, startReceiver } from '../support/receiver.js';
import { type ClusterSet, type SentinelSet, startRedisCluster, startSentinelSet } from '../support/redis-topology.js';

const TOKEN = 'failover-token';
const KUBE_TOKEN = 'kube-token';
/** Real time between rounds of alerts. */
const ROUND_MS = 100;
const ROUNDS_BEFORE = 5;
/** How long after the failover every replica may take to find the new master and decide every alert. */
const RECOVERY_MS = 30_000;
/** Rounds once they all have, each of which must be decided whole. */
const ROUNDS_AFTER = 3;
const BOUNDED = { timeout: 120_000 };

interface Topology {
  args: string[];
  /** Kills the master (on a cluster, the one holding `cooldownKey`); answers a promise of the failover's end. */
  killMaster(cooldownKey: string): Promise<{ failedOver: Promise<unknown> }>;
  stop(): Promise<void>;
}

async function withSentinel(): Promise<Topology> {
  const set: SentinelSet = await startSentinelSet();
  return {
    args: [
      '--redis-sentinels',
      set.sentinels.map((s) => `${s.host}:${s.port}`).join(','),
      '--redis-master-name',
      set.masterName,
    ],
    async killMaster() {
      const port = await set.killMaster();
      return { failedOver: set.failedOver(port) };
    },
    stop: () => set.stop(),
  };
}

async function withCluster(): Promise<Topology> {
  const set: ClusterSet = await startRedisCluster();
  const keys = new RedisKeys('kube-sentinel:', true);
  return {
    args: ['--redis-cluster-nodes', set.nodes.map((n) => `${n.host}:${n.port}`).join(',')],
    async killMaster(cooldownKey) {
      const slot = calculateSlot(keys.cooldown(cooldownKey));
      const port = await set.killMasterOf(slot);
      // With --redis-wait-replicas 1 its shard takes claims again once it has a replica: the
      // killed node comes back (as Kubernetes restarts a pod) as the new master's replica.
      return { failedOver: set.failedOver(port, slot).then(() => set.restart(port)) };
    },
    stop: () => set.stop(),
  };
}

for (const [name, start] of [
  ['Redis Sentinel', withSentinel],
  ['a Redis Cluster', withCluster],
] as const) {
  describe(`three replicas on ${name} whose master is killed under alerts`, () => {
    let topology: Topology | undefined;
    let kube: FakeKube | undefined;
    let receivers: Receiver[] = [];

    before(async () => {
      topology = await start();
      kube = await startFakeKube({ token: KUBE_TOKEN });
      kube.addWorkflowTemplate('argo', 'diagnose-pod');
      const { dir, file } = writeRules(TEST_RULES);
      const args = [
        '--port',
        '0',
        '--rules',
        file,
        '--kubeconfig',
        writeKubeconfig(dir, kube.url, KUBE_TOKEN),
        '--redis-wait-replicas',
        '1',
        '--max-workflows-per-minute',
        '0',
        ...topology.args,
      ];
      receivers = await Promise.all(
        ['replica-a', 'replica-b', 'replica-c'].map((host) =>
          startReceiver(args, { KUBE_SENTINEL_AUTH_TOKEN: TOKEN, HOSTNAME: host }),
        ),
      );
    });

    after(async () => {
      await Promise.all(receivers.map((receiver) => receiver.stop()));
      await kube?.close();
      await topology?.stop();
    });

    it(
      'answers 200 or 503 with Retry-After during the failover, decides everything after, and creates one Workflow per workload',
      BOUNDED,
      async () => {
        assert.ok(topology && kube);
        const workloads: PostableAlert[] = [];
        const answers: { phase: 'before' | 'during' | 'after'; answer: Answer }[] = [];
        let round = 0;
        /** Every replica gets every workload's alert each round; one new workload joins per round. */
        const sendRound = async (phase: 'before' | 'during' | 'after'): Promise<Answer[]> => {
          workloads.push(crashLoopAlert({ namespace: `team-${round}`, pod: 'api-0', container: 'api' }));
          round += 1;
          const sent = await Promise.all(
            receivers.map((receiver) => post(receiver.url, '/api/v2/alerts', workloads, TOKEN)),
          );
          for (const answer of sent) answers.push({ phase, answer });
          return sent;
        };

        for (let i = 0; i < ROUNDS_BEFORE; i++) {
          await sendRound('before');
          await delay(ROUND_MS);
        }
        const firstKey = answers[0]?.answer.decisions[0]?.cooldownKey;
        assert.ok(firstKey, 'the first alert was decided with a cooldown key');
        const { failedOver } = await topology.killMaster(firstKey);
        let done = false;
        const settled = failedOver.finally(() => {
          done = true;
        });
        while (!done) {
          await sendRound('during');
          await delay(ROUND_MS);
        }
        await settled;
        // Each replica finds the new master by itself, sooner or later on a loaded machine: rounds
        // go on until every replica decides every alert, within RECOVERY_MS; then a few more.
        const recoveredBy = Date.now() + RECOVERY_MS;
        let last: Answer[] = await sendRound('after');
        while (last.some((answer) => answer.status !== 200) && Date.now() < recoveredBy) {
          await delay(ROUND_MS);
          last = await sendRound('after');
        }
        for (let i = 0; i < ROUNDS_AFTER; i++) {
          await delay(ROUND_MS);
          last = await sendRound('after');
        }

        for (const { phase, answer } of answers) {
          assert.ok(
            answer.status === 200 || (answer.status === 503 && answer.retryAfter !== null),
            `${phase}: ${answer.status} ${answer.error ?? ''} ${JSON.stringify(answer.decisions.slice(0, 3))}`,
          );
        }
        assert.ok(
          answers.some(({ phase, answer }) => phase === 'during' && answer.status === 503),
          'some alert waited for the failover (fail closed)',
        );
        for (const answer of last) {
          assert.equal(answer.status, 200, JSON.stringify(answer.decisions.filter((d) => d.outcome === 'retry')));
          assert.equal(answer.decisions.length, workloads.length);
          for (const decision of answer.decisions) {
            assert.ok(['submitted', 'cooldown'].includes(decision.outcome), JSON.stringify(decision));
          }
        }
        const expected = new Map(workloads.map((alert) => [fingerprint(alert), 1]));
        assert.deepEqual(workflowCountProblems(kube.workflows, expected), []);
      },
    );
  });
}
