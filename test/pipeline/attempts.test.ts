import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import pino from 'pino';
import type { Alert } from '../../src/alert.js';
import { loadConfig } from '../../src/config.js';
import { keyHash } from '../../src/kube/workflow.js';
import type { ClusterRecord, KeyedWorkflow } from '../../src/pipeline/cluster-record.js';
import { createMetrics } from '../../src/pipeline/metrics.js';
import { createPipeline, type Pipeline, type PipelineDeps } from '../../src/pipeline/pipeline.js';
import { MemoryCooldownStore } from '../../src/stores/memory.js';
import { rulesFrom, scriptedSubmitter } from '../support/app.js';

/** The cluster's Workflows by namespace, as the watcher's cache would hold them. */
class FakeCluster implements ClusterRecord {
  readonly workflows: (KeyedWorkflow & { hash: string })[] = [];
  lookups = 0;
  down = false;
  async workflowsOf(namespace: string, hash: string): Promise<KeyedWorkflow[]> {
    this.lookups++;
    if (this.down) throw new Error('connect ECONNREFUSED 127.0.0.1:6443');
    return this.workflows.filter((w) => w.namespace === namespace && w.hash === hash);
  }
}

const RULES = `
rules:
  - name: crashloop
    match: { pattern: CrashLoop }
    priority: P2
    remediation:
      action: trigger-argo-workflow
      params: { workflow_template: diagnose-pod }
      cooldown: 10m
      max_attempts: 2
      attempt_window: 1h
  - name: approve-me
    match: { pattern: NeedsApproval }
    priority: P2
    remediation:
      action: trigger-argo-workflow
      params: { workflow_template: diagnose-pod }
      cooldown: 1m
      approval: required
      approval_timeout: 30m
`;

const KEY = 'crashloop:shop/checkout';
const T0 = Date.parse('2026-11-29T10:00:00Z');

function alert(pattern = 'CrashLoop', status: 'firing' | 'resolved' = 'firing'): Alert {
  return {
    source: 'api_v2',
    status,
    labels: { alertname: pattern, namespace: 'shop', pod: 'checkout-0' },
    annotations: {},
    fingerprint: `fp-${pattern}`,
  };
}

describe('before a create', () => {
  let clock: number;
  let store: MemoryCooldownStore;
  let cluster: FakeCluster;
  let exhausted: string[][];
  let pipeline: Pipeline;
  let deps: () => PipelineDeps;

  beforeEach(async () => {
    clock = T0;
    store = new MemoryCooldownStore({ now: () => clock });
    cluster = new FakeCluster();
    exhausted = [];
    const ruleSet = await rulesFrom(RULES);
    deps = () => ({
      rules: () => ruleSet,
      store,
      submitter: scriptedSubmitter(),
      settings: { ...loadConfig([], {}), maxWorkflowsPerMinute: 0, replica: 'test' },
      metrics: createMetrics({ defaults: false }),
      logger: pino({ level: 'silent' }),
      now: () => clock,
      cluster,
      exhausted: async (_draft: unknown, attempts: readonly { workflow: string; state: string }[]) => {
        exhausted.push(attempts.map((a) => `${a.workflow} ${a.state}`));
      },
    });
    pipeline = createPipeline(deps());
  });

  const decide = async (a = alert()) => (await pipeline.ingest([a]))[0]!;

  describe('the cluster, the record of what was done', () => {
    it('answers cooldown for a Workflow of the key the store forgot, and repairs the claim', async () => {
      cluster.workflows.push({
        namespace: 'argo',
        name: 'wf-old',
        createdAt: T0 - 60_000,
        state: 'running',
        hash: keyHash(KEY),
      });
      const decision = await decide();
      assert.equal(decision.outcome, 'cooldown');
      assert.match(decision.reason ?? '', /wf-old was submitted 1m ago \(found in the cluster\)/);
      const repaired = await store.peek(KEY);
      assert.equal(repaired?.workflowName, 'wf-old');
      assert.equal(repaired?.state, 'committed');
      // The repaired claim answers by itself: the cluster is not asked again.
      clock += 1000;
      assert.equal((await decide()).outcome, 'cooldown');
      assert.equal(cluster.lookups, 1);
    });

    it('lets a Workflow older than the cooldown count only as an attempt', async () => {
      cluster.workflows.push({
        namespace: 'argo',
        name: 'wf-old',
        createdAt: T0 - 11 * 60_000,
        state: 'failed',
        hash: keyHash(KEY),
      });
      const decision = await decide();
      assert.equal(decision.outcome, 'submitted');
    });

    it('holds the key while a Workflow of it still awaits approval, however old', async () => {
      const key = 'approve-me:shop/checkout';
      cluster.workflows.push({
        namespace: 'argo',
        name: 'wf-waiting',
        createdAt: T0 - 20 * 60_000,
        state: 'awaiting_approval',
        hash: keyHash(key),
      });
      assert.equal((await decide(alert('NeedsApproval'))).outcome, 'cooldown');
    });

    it('is retry, the claim given back, when the cluster cannot be asked', async () => {
      cluster.down = true;
      const decision = await decide();
      assert.equal(decision.outcome, 'retry');
      assert.match(decision.reason ?? '', /ECONNREFUSED/);
      assert.equal(await store.peek(KEY), null);
    });
  });

  describe('the attempt budget', () => {
    it('escalates the third alert within the window, creates nothing and gives the claim back', async () => {
      assert.equal((await decide()).outcome, 'submitted');
      clock += 11 * 60_000;
      assert.equal((await decide()).outcome, 'submitted');
      clock += 11 * 60_000;
      const third = await decide();
      assert.equal(third.outcome, 'escalated');
      assert.match(
        third.reason ?? '',
        /^attempt budget spent: 2 of 2 within 1h \(argo\/kube-sentinel-crashloop-\w+ submitted 22m ago, /,
      );
      assert.equal(exhausted.length, 1);
      assert.equal(exhausted[0]?.length, 2);
      assert.equal(await store.peek(KEY), null);
      // Attempts age out of the window: the first is over an hour old 40 minutes later.
      clock += 40 * 60_000;
      assert.equal((await decide()).outcome, 'submitted');
    });

    it('does not count a redelivery against its own Workflow', async () => {
      assert.equal((await decide()).outcome, 'submitted');
      clock += 11 * 60_000;
      // The second attempt's create timed out after it was sent: its pending claim is held, and the
      // attempt was counted anyway (as when a commit is lost after the count landed).
      const submitter = scriptedSubmitter();
      submitter.next = { kind: 'failed', cause: 'timeout', retryable: true, reason: 'timeout', mayHaveLanded: true };
      const held = createPipeline({
        ...deps(),
        submitter,
      });
      const second = (await held.ingest([alert()]))[0]!;
      assert.equal(second.outcome, 'retry');
      await store.addAttempt(KEY, { workflow: `argo/${second.workflow?.name}`, at: clock }, 3600_000);
      submitter.next = { kind: 'exists', status: 409, retryable: false };
      const redelivered = (await held.ingest([alert()]))[0]!;
      assert.equal(redelivered.outcome, 'submitted', redelivered.reason);
      assert.equal(redelivered.workflow?.name, second.workflow?.name);
    });

    it('counts the attempts the cluster still has when the store forgot them', async () => {
      for (const [i, minutesAgo] of [30, 15].entries()) {
        cluster.workflows.push({
          namespace: 'argo',
          name: `wf-${i}`,
          createdAt: T0 - minutesAgo * 60_000 - 600_000,
          state: 'failed',
          hash: keyHash(KEY),
        });
      }
      const decision = await decide();
      assert.equal(decision.outcome, 'escalated');
      assert.deepEqual(exhausted[0], ['argo/wf-0 failed', 'argo/wf-1 failed']);
    });

    it('numbers each attempt on the Workflow', async () => {
      const first = await pipeline.explain([alert()]);
      assert.equal(first[0]?.manifest?.metadata.annotations['kube-sentinel.io/attempt'], '1');
      await decide();
      clock += 11 * 60_000;
      const second = await pipeline.explain([alert()]);
      assert.equal(second[0]?.manifest?.metadata.annotations['kube-sentinel.io/attempt'], '2');
    });
  });

  describe('an approval rule', () => {
    it('is awaiting_approval, and its cooldown lasts until the approval times out', async () => {
      const first = await decide(alert('NeedsApproval'));
      assert.equal(first.outcome, 'awaiting_approval');
      assert.match(first.reason ?? '', /argo resume -n argo kube-sentinel-approve-me-/);
      clock += 29 * 60_000;
      assert.equal((await decide(alert('NeedsApproval'))).outcome, 'cooldown');
    });
  });
});

describe('before a create, with --clusters', () => {
  it('asks the alert’s own cluster, and counts its attempts under the cluster’s names', async () => {
    let clock = T0;
    const store = new MemoryCooldownStore({ now: () => clock });
    const asked: { cluster: string | undefined; hash: string }[] = [];
    const inWest: KeyedWorkflow[] = [];
    const cluster: ClusterRecord = {
      async workflowsOf(_namespace, hash, name) {
        asked.push({ cluster: name, hash });
        return name === 'west' ? inWest : [];
      },
    };
    const ruleSet = await rulesFrom(RULES);
    const exhausted: string[][] = [];
    const pipeline = createPipeline({
      rules: () => ruleSet,
      store,
      submitter: scriptedSubmitter(),
      settings: { ...loadConfig([], {}), maxWorkflowsPerMinute: 0, replica: 'test' },
      metrics: createMetrics({ defaults: false }),
      logger: pino({ level: 'silent' }),
      now: () => clock,
      cluster,
      exhausted: async (_draft, attempts) => {
        exhausted.push(attempts.map((a) => a.workflow));
      },
      clusters: { label: 'cluster', defaultCluster: 'east', names: ['east', 'west'] },
    });
    const west = { ...alert(), labels: { ...alert().labels, cluster: 'west' } };

    const first = (await pipeline.ingest([west]))[0]!;
    assert.deepEqual(
      [first.outcome, first.cluster, first.cooldownKey],
      ['submitted', 'west', 'west/crashloop:shop/checkout'],
    );
    assert.deepEqual(asked, [{ cluster: 'west', hash: keyHash('west/crashloop:shop/checkout') }]);
    // The store counted it as west's: the cluster's copy of it is the same attempt, not a second.
    inWest.push({ namespace: 'argo', name: first.workflow!.name, createdAt: clock, state: 'failed' });
    clock += 11 * 60_000;
    assert.equal((await pipeline.ingest([west]))[0]!.outcome, 'submitted');
    clock += 11 * 60_000;
    const third = (await pipeline.ingest([west]))[0]!;
    assert.equal(third.outcome, 'escalated');
    assert.equal(exhausted.length, 1);
    assert.equal(exhausted[0]!.length, 2);
    assert.ok(
      exhausted[0]!.every((workflow) => workflow.startsWith('west/argo/')),
      exhausted[0]!.join(', '),
    );
    assert.deepEqual(
      (await store.listAttempts('west/crashloop:shop/checkout', 3600_000)).map(
        (attempt) => attempt.workflow.split('/')[0],
      ),
      ['west', 'west'],
    );
  });
});
