import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { KubeApiError } from '../../src/kube/http.js';
import {
  type WatchHealth,
  type WorkflowEvent,
  WorkflowInformer,
  type WorkflowInformerOptions,
} from '../../src/kube/informer.js';
import { type LoadedKubeConfig, loadKubeConfig } from '../../src/kube/kubeconfig.js';
import { MANAGED_SELECTOR, type Workflow } from '../../src/kube/workflow.js';
import { type FakeKube, startFakeKube } from '../support/fake-kube.js';
import { writeKubeconfig } from '../support/kubeconfig.js';

const TOKEN = 'informer-token';
const NAMESPACE = 'argo';
const WORKFLOWS = `/apis/argoproj.io/v1alpha1/namespaces/${NAMESPACE}/workflows`;

function workflow(name: string, options: { namespace?: string; labelled?: boolean } = {}): Workflow {
  return {
    apiVersion: 'argoproj.io/v1alpha1',
    kind: 'Workflow',
    metadata: {
      name,
      namespace: options.namespace ?? NAMESPACE,
      labels: options.labelled === false ? {} : { 'app.kubernetes.io/managed-by': 'kube-sentinel' },
      annotations: { 'kube-sentinel.io/cooldown-key': `oom/${name}` },
    },
    spec: {
      arguments: { parameters: [{ name: 'pod', value: 'api-0' }] },
      workflowTemplateRef: { name: 'diagnose-pod' },
      ttlStrategy: { secondsAfterCompletion: 3600, secondsAfterSuccess: 600, secondsAfterFailure: 86400 },
    },
  };
}

/** A gate the informer's backoff waits at while a test arranges what happens during a disconnection. */
class Gate {
  private opened = true;
  private waiting: (() => void)[] = [];
  close(): void {
    this.opened = false;
  }
  open(): void {
    this.opened = true;
    for (const resolve of this.waiting.splice(0)) resolve();
  }
  pass(): Promise<void> {
    return this.opened
      ? new Promise((resolve) => setImmediate(resolve))
      : new Promise((resolve) => this.waiting.push(resolve));
  }
}

/** Waits for a condition the informer reaches on its own (no event to latch on), a turn of the event loop at a time. */
async function eventually(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

describe('the Workflow informer', () => {
  let kube: FakeKube;
  let kubeconfig: LoadedKubeConfig;
  let dir: string;
  let informer: WorkflowInformer | undefined;
  /** Events as `TYPE name phase`, in the order reported. */
  let events: string[];
  let reported: WorkflowEvent[];
  let health: WatchHealth[];
  /** How many backoffs had been waited when each health change was reported. */
  let healthAfterDelays: number[];
  let delays: number[];
  let gate: Gate;
  let waiters: { count: number; resolve: () => void }[];

  /** Resolves once `count` events in all have been reported. */
  const reportedCount = (count: number): Promise<void> =>
    events.length >= count ? Promise.resolve() : new Promise((resolve) => waiters.push({ count, resolve }));

  function start(options: Partial<WorkflowInformerOptions> = {}): WorkflowInformer {
    informer = new WorkflowInformer({
      request: kubeconfig.request,
      watch: kubeconfig.watch,
      namespace: NAMESPACE,
      onEvent: ({ type, workflow: watched }) => {
        events.push(`${type} ${watched.metadata.name} ${watched.status?.phase ?? '-'}`);
        reported.push({ type, workflow: watched });
        const ready = waiters.filter((waiter) => events.length >= waiter.count);
        waiters = waiters.filter((waiter) => events.length < waiter.count);
        for (const waiter of ready) waiter.resolve();
      },
      onHealth: (state) => {
        health.push(state);
        healthAfterDelays.push(delays.length);
      },
      backoff: { initialMs: 10, maxMs: 40 },
      sleep: (ms) => {
        delays.push(ms);
        return gate.pass();
      },
      random: () => 1,
      ...options,
    });
    informer.start();
    return informer;
  }

  const create = (name: string, options: { namespace?: string; labelled?: boolean } = {}) =>
    kubeconfig.request(
      'POST',
      `/apis/argoproj.io/v1alpha1/namespaces/${options.namespace ?? NAMESPACE}/workflows`,
      workflow(name, options),
    );
  const watchRequests = () => kube.requests.filter((request) => request.query.watch === 'true');
  const listRequests = () => kube.requests.filter((request) => request.method === 'GET' && !request.query.watch);

  before(async () => {
    kube = await startFakeKube({ token: TOKEN });
    dir = mkdtempSync(join(tmpdir(), 'ks-informer-'));
    kubeconfig = await loadKubeConfig({ kind: 'file', path: writeKubeconfig(dir, kube.url, TOKEN) });
  });
  after(async () => {
    await kube.close();
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    kube.reset();
    events = [];
    reported = [];
    health = [];
    healthAfterDelays = [];
    delays = [];
    waiters = [];
    gate = new Gate();
  });
  afterEach(async () => {
    gate.open();
    await informer?.stop();
    informer = undefined;
  });

  describe('listing and watching', () => {
    it('lists, then watches from the list’s resourceVersion with bookmarks and a timeout, reporting each Workflow ADDED once', async () => {
      await create('wf-a');
      await create('wf-b');
      const listedAt = kube.resourceVersion;
      const running = start();
      assert.equal(running.synced, false);
      await running.whenSynced();
      assert.equal(running.synced, true);
      assert.deepEqual(events, ['ADDED wf-a -', 'ADDED wf-b -']);
      assert.deepEqual(
        running.workflows().map((cached) => cached.metadata.name),
        ['wf-a', 'wf-b'],
      );
      await kube.waitForWatches(1);
      assert.deepEqual(listRequests()[0]?.query, { labelSelector: MANAGED_SELECTOR, limit: '50' });
      assert.deepEqual(watchRequests()[0], {
        method: 'GET',
        path: WORKFLOWS,
        query: {
          watch: 'true',
          labelSelector: MANAGED_SELECTOR,
          resourceVersion: listedAt,
          allowWatchBookmarks: 'true',
          timeoutSeconds: '120',
        },
      });
      assert.deepEqual(health, [{ healthy: true, problem: null }]);
    });

    it('reports creates as ADDED and phase changes as MODIFIED, in order, trimmed to what the watcher keeps', async () => {
      await start().whenSynced();
      await kube.waitForWatches(1);
      await create('wf-a');
      kube.setPhase(NAMESPACE, 'wf-a', 'Running');
      await create('wf-b');
      kube.setPhase(NAMESPACE, 'wf-a', 'Succeeded');
      kube.setPhase(NAMESPACE, 'wf-b', 'Failed', { message: 'child failed' });
      await reportedCount(5);
      assert.deepEqual(events, [
        'ADDED wf-a -',
        'MODIFIED wf-a Running',
        'ADDED wf-b -',
        'MODIFIED wf-a Succeeded',
        'MODIFIED wf-b Failed',
      ]);
      const stored = kube.getWorkflow(NAMESPACE, 'wf-b');
      assert.ok(stored);
      const status = stored.status as Record<string, string>;
      assert.deepEqual(reported[4]?.workflow, {
        metadata: {
          name: 'wf-b',
          namespace: NAMESPACE,
          uid: stored.metadata.uid,
          resourceVersion: stored.metadata.resourceVersion,
          creationTimestamp: stored.metadata.creationTimestamp,
          labels: stored.metadata.labels,
          annotations: { 'kube-sentinel.io/cooldown-key': 'oom/wf-b' },
        },
        status: {
          phase: 'Failed',
          message: 'child failed',
          startedAt: status.startedAt,
          finishedAt: status.finishedAt,
        },
      });
      assert.equal(informer?.workflow('wf-a')?.status?.phase, 'Succeeded');
    });

    it('reports a resume (spec.suspend cleared, the actor named) and a deletion', async () => {
      const suspended = workflow('wf-a');
      suspended.spec.suspend = true;
      await kubeconfig.request('POST', WORKFLOWS, suspended);
      await start().whenSynced();
      await kube.waitForWatches(1);
      kube.resume(NAMESPACE, 'wf-a', 'jane.doe');
      kube.deleteWorkflow(NAMESPACE, 'wf-a');
      await reportedCount(3);
      assert.deepEqual(events, ['ADDED wf-a -', 'MODIFIED wf-a -', 'DELETED wf-a -']);
      const [added, resumed] = reported.map((event) => event.workflow);
      assert.deepEqual(added?.spec, { suspend: true });
      assert.equal(resumed?.spec, undefined);
      assert.equal(resumed?.metadata.labels?.['workflows.argoproj.io/actor'], 'jane.doe');
      assert.deepEqual(informer?.workflows(), []);
    });

    it('does not see Workflows of other namespaces, nor unlabelled ones', async () => {
      await create('wf-other', { namespace: 'shop' });
      await create('wf-unlabelled', { labelled: false });
      await start().whenSynced();
      await kube.waitForWatches(1);
      kube.setPhase('shop', 'wf-other', 'Running');
      kube.setPhase(NAMESPACE, 'wf-unlabelled', 'Running');
      await create('wf-mine');
      await reportedCount(1);
      assert.deepEqual(events, ['ADDED wf-mine -']);
    });
  });

  describe('after a dropped connection', () => {
    it('resumes from the last resourceVersion: every change seen once, those made while disconnected too', async () => {
      await create('wf-a');
      await start().whenSynced();
      await kube.waitForWatches(1);
      kube.setPhase(NAMESPACE, 'wf-a', 'Running');
      await reportedCount(2);
      const lastSeen = kube.resourceVersion;

      kube.dropWatches();
      kube.setPhase(NAMESPACE, 'wf-a', 'Succeeded');
      kube.setPhase(NAMESPACE, 'wf-a', 'Succeeded', { message: 'done' });
      await reportedCount(4);
      await create('wf-b');
      await reportedCount(5);
      assert.deepEqual(events, [
        'ADDED wf-a -',
        'MODIFIED wf-a Running',
        'MODIFIED wf-a Succeeded',
        'MODIFIED wf-a Succeeded',
        'ADDED wf-b -',
      ]);
      assert.equal(watchRequests()[1]?.query.resourceVersion, lastSeen);
      assert.equal(listRequests().length, 1, 'resumed without listing again');
      assert.equal(delays.length, 1, 'one backoff before reconnecting');
    });

    it('resumes from a bookmark’s resourceVersion, which stays valid after a compaction', async () => {
      await start().whenSynced();
      await kube.waitForWatches(1);
      await create('wf-elsewhere', { namespace: 'shop' });
      kube.bookmark();
      const bookmarked = kube.resourceVersion;
      await eventually(() => informer?.resourceVersion === bookmarked, 'the bookmark is seen');
      kube.dropWatches();
      kube.compactHistory();
      await kube.waitForWatches(1);
      await create('wf-a');
      await reportedCount(1);
      assert.deepEqual(events, ['ADDED wf-a -']);
      assert.equal(watchRequests()[1]?.query.resourceVersion, bookmarked);
      assert.equal(listRequests().length, 1, 'no 410, so no list');
    });

    it('renews a watch the API server ended, from where it was, at once and without listing', async () => {
      let clock = 0;
      await start({ now: () => clock }).whenSynced();
      await kube.waitForWatches(1);
      clock += 300_000;
      kube.endWatches();
      await kube.waitForWatches(1);
      await create('wf-a');
      kube.setPhase(NAMESPACE, 'wf-a', 'Running');
      await reportedCount(2);
      assert.deepEqual(events, ['ADDED wf-a -', 'MODIFIED wf-a Running']);
      assert.equal(watchRequests()[1]?.query.resourceVersion, watchRequests()[0]?.query.resourceVersion);
      assert.deepEqual(delays, []);
      assert.equal(listRequests().length, 1);
    });

    it('backs off when the API server ends watches at once, having sent nothing', async () => {
      await start({ now: () => 0 }).whenSynced();
      await kube.waitForWatches(1);
      kube.endWatches();
      await kube.waitForWatches(0);
      await kube.waitForWatches(1);
      assert.deepEqual(delays, [10]);
    });
  });

  for (const form of ['event', 'status'] as const) {
    describe(`on 410 Gone (${form === 'event' ? 'an ERROR event in a 200 stream' : 'a plain HTTP 410'})`, () => {
      it('lists again and reports the difference once: changes as MODIFIED, new ones as ADDED, deletions as DELETED', async () => {
        kube.expiredWatches = form;
        for (const name of ['wf-a', 'wf-b', 'wf-c', 'wf-d']) await create(name);
        kube.setPhase(NAMESPACE, 'wf-d', 'Running');
        await start().whenSynced();
        await kube.waitForWatches(1);
        assert.equal(events.length, 4);

        gate.close();
        kube.dropWatches();
        kube.setPhase(NAMESPACE, 'wf-a', 'Succeeded');
        kube.deleteWorkflow(NAMESPACE, 'wf-b');
        await create('wf-e');
        kube.compactHistory();
        gate.open();
        await reportedCount(7);
        await kube.waitForWatches(1);
        assert.deepEqual(events.slice(4), ['DELETED wf-b -', 'MODIFIED wf-a Succeeded', 'ADDED wf-e -']);
        assert.equal(listRequests().length, 2);
        assert.deepEqual(
          informer
            ?.workflows()
            .map((cached) => cached.metadata.name)
            .sort(),
          ['wf-a', 'wf-c', 'wf-d', 'wf-e'],
        );

        kube.setPhase(NAMESPACE, 'wf-c', 'Running');
        await reportedCount(8);
        assert.deepEqual(events.slice(7), ['MODIFIED wf-c Running']);
        assert.equal(health.at(-1)?.healthy, true);
      });
    });
  }

  it('reports a Workflow recreated under the same name while disconnected as DELETED, then ADDED', async () => {
    await create('wf-a');
    await start().whenSynced();
    await kube.waitForWatches(1);
    gate.close();
    kube.dropWatches();
    kube.deleteWorkflow(NAMESPACE, 'wf-a');
    await create('wf-a');
    kube.compactHistory();
    gate.open();
    await reportedCount(3);
    assert.deepEqual(events, ['ADDED wf-a -', 'DELETED wf-a -', 'ADDED wf-a -']);
    const [first, , second] = reported.map((event) => event.workflow);
    assert.notEqual(first?.metadata.uid, second?.metadata.uid);
  });

  describe('health', () => {
    it('is unhealthy while the API server cannot be reached, backing off with jitter, and healthy once listed', async () => {
      await kube.refuseConnections();
      const running = start({ random: () => 0 });
      await eventually(() => delays.length >= 4, 'four attempts failed');
      assert.equal(running.synced, false);
      assert.equal(health[0]?.healthy, false);
      // ECONNRESET when a kept-alive connection the fake closed is tried first.
      assert.match(health[0]?.problem ?? '', /^list of Workflows in argo: connection: ECONN(REFUSED|RESET)$/);
      // Doubling from 10 ms to at most 40 ms, each cut by half (random() = 0).
      assert.deepEqual(delays.slice(0, 4), [5, 10, 20, 20]);
      await kube.acceptConnections();
      await running.whenSynced();
      assert.deepEqual(health.at(-1), { healthy: true, problem: null });
      assert.deepEqual(running.health, { healthy: true, problem: null });
    });

    it('stays unhealthy, waiting longer each time, while lists work but every watch is refused (no watch permission)', async () => {
      await create('wf-a');
      const forbidden: WorkflowInformerOptions['watch'] = async function* () {
        yield* [];
        throw new KubeApiError(403, '{"kind":"Status","reason":"Forbidden","code":403}', {});
      };
      const running = start({ watch: forbidden, backoff: { initialMs: 10, maxMs: 60_000 } });
      await running.whenSynced();
      await eventually(() => delays.length >= 8, 'eight failed watches');
      await running.stop();
      // Healthy once listed, unhealthy from the third refusal on, and never healthy again in
      // between though every list worked.
      assert.deepEqual(
        health.map((h) => h.healthy),
        [true, false],
      );
      assert.match(health[1]?.problem ?? '', /^watch of Workflows in argo: 403/);
      assert.ok(
        delays.every((ms, i) => i === 0 || ms > (delays[i - 1] ?? 0)),
        `the waits grow: ${delays.join(', ')}`,
      );
      assert.ok(listRequests().length >= 2, 'it listed again in between');
    });

    it('stays healthy through a dropped connection, turns unhealthy when failures go on, and healthy again when a list succeeds', async () => {
      await create('wf-a');
      const running = start();
      await running.whenSynced();
      await kube.waitForWatches(1);
      await kube.refuseConnections();
      await eventually(() => health.length >= 2, 'unhealthy');
      assert.equal(healthAfterDelays[1], 2, 'unhealthy at the third failure in a row');
      assert.equal(health[1]?.healthy, false);
      assert.match(health[1]?.problem ?? '', /^watch of Workflows in argo: connection: ECONN/);
      await kube.acceptConnections();
      await eventually(() => running.health.healthy, 'healthy again');
      assert.equal(listRequests().length, 2, 'listed again to recover');
      assert.deepEqual(events, ['ADDED wf-a -'], 'and reported nothing twice');
    });
  });

  describe('stopping', () => {
    it('ends the watch, and no event comes after it', async () => {
      const running = start();
      await running.whenSynced();
      await kube.waitForWatches(1);
      await running.stop();
      await kube.waitForWatches(0);
      await create('wf-a');
      kube.setPhase(NAMESPACE, 'wf-a', 'Running');
      await create('wf-b');
      assert.deepEqual(events, []);
      assert.throws(() => running.start(), /a stopped informer cannot start again/);
    });

    it('rejects whenSynced when stopped before the first list', async () => {
      await kube.refuseConnections();
      const running = start();
      await eventually(() => delays.length >= 1, 'a failed attempt');
      await running.stop();
      await assert.rejects(running.whenSynced(), /stopped before it listed/);
      await kube.acceptConnections();
    });

    it('never starts by itself: nothing is asked before start()', async () => {
      const idle = new WorkflowInformer({
        request: kubeconfig.request,
        watch: kubeconfig.watch,
        namespace: NAMESPACE,
        onEvent: () => {},
      });
      await create('wf-a');
      assert.deepEqual(listRequests(), []);
      await idle.stop();
    });
  });

  it('goes on after a handler that throws, telling onEventError', async () => {
    const failures: string[] = [];
    await create('wf-a');
    await start({
      onEvent: ({ type, workflow: watched }) => {
        events.push(`${type} ${watched.metadata.name}`);
        if (events.length === 1) throw new Error('handler broke');
        for (const waiter of waiters.filter((candidate) => events.length >= candidate.count)) waiter.resolve();
      },
      onEventError: (error, event) => failures.push(`${(error as Error).message}: ${event.workflow.metadata.name}`),
    }).whenSynced();
    await kube.waitForWatches(1);
    await create('wf-b');
    await reportedCount(2);
    assert.deepEqual(events, ['ADDED wf-a', 'ADDED wf-b']);
    assert.deepEqual(failures, ['handler broke: wf-a']);
  });
});
