import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { Redis } from 'ioredis';
import type { Remediation, RemediationEntry } from '../../src/remediation/model.js';
import type { StoreLogger } from '../../src/stores/cooldown-store.js';
import { type CooldownClaim, StoreUnavailableError } from '../../src/stores/cooldown-store.js';
import { RedisCooldownStore } from '../../src/stores/redis.js';
import { auditRecord } from '../support/records.js';
import { type RedisServer, startRedis, uniquePrefix } from '../support/redis-server.js';

const COMMAND_TIMEOUT_MS = 400;
/** Scheduling noise allowed on top of a deadline. */
const SLACK_MS = 400;
const POLL_MS = 25;
/** Longer than the reconnect backoff cap (2 s), so a recovery always gets a few attempts. */
const RECOVERY_BOUND_MS = 8_000;

const claim: CooldownClaim = { workflowName: 'wf-1', fingerprint: 'fp-1', state: 'pending', claimedAt: 1 };

function failed(name: string): Remediation {
  return {
    workflow: `argo/${name}`,
    rule: 'pod-crash',
    cooldownKey: 'pod-crash:shop/checkout',
    target: 'shop/checkout-7d9f',
    state: 'failed',
    submittedAt: new Date(1_700_000_000_000).toISOString(),
  };
}

function entryOf(changed: Remediation): RemediationEntry {
  const { workflow, rule, cooldownKey, target, state } = changed;
  return { kind: 'remediation', workflow, rule, cooldownKey, target, state, at: changed.submittedAt, replica: 'r' };
}

interface LogLine {
  level: 'warn' | 'error';
  obj: Record<string, unknown>;
  msg: string | undefined;
}

function recordingLogger(): StoreLogger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  return {
    lines,
    warn: (obj, msg) => lines.push({ level: 'warn', obj: obj as Record<string, unknown>, msg }),
    error: (obj, msg) => lines.push({ level: 'error', obj: obj as Record<string, unknown>, msg }),
  };
}

/** Polls until the store answers again, bounded by real time because reconnecting is real. */
async function untilPingAnswers(store: RedisCooldownStore): Promise<void> {
  const deadline = Date.now() + RECOVERY_BOUND_MS;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      await store.ping();
      return;
    } catch (error) {
      lastError = error;
      await delay(POLL_MS);
    }
  }
  assert.fail(`the store did not answer within ${RECOVERY_BOUND_MS} ms: ${String(lastError)}`);
}

/** Resolves once `heard` holds `count` keys (or nulls); fails after RECOVERY_BOUND_MS of real time. */
async function untilHeard(heard: (string | null)[], count: number, what: string): Promise<void> {
  const deadline = Date.now() + RECOVERY_BOUND_MS;
  while (heard.length < count && Date.now() < deadline) await delay(POLL_MS);
  assert.ok(
    heard.length >= count,
    `heard ${JSON.stringify(heard)} within ${RECOVERY_BOUND_MS} ms, waiting for ${what}`,
  );
}

async function elapsedMs(operation: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await operation();
  return performance.now() - started;
}

describe('RedisCooldownStore against a real redis-server', () => {
  const unhandled: unknown[] = [];
  const recordUnhandled = (reason: unknown): void => {
    unhandled.push(reason);
  };
  let server: RedisServer;
  let stores: RedisCooldownStore[] = [];

  before(() => {
    process.on('unhandledRejection', recordUnhandled);
  });

  after(() => {
    process.off('unhandledRejection', recordUnhandled);
  });

  beforeEach(async () => {
    unhandled.length = 0;
    server = await startRedis();
  });

  afterEach(async () => {
    await Promise.all(stores.map((store) => store.close()));
    stores = [];
    await server.stop();
    assert.deepEqual(unhandled, [], 'no promise was left rejected without a handler');
  });

  function open(options: { now?: () => number; logger?: StoreLogger } = {}): RedisCooldownStore {
    const store = new RedisCooldownStore({
      url: server.url,
      keyPrefix: uniquePrefix(),
      commandTimeoutMs: COMMAND_TIMEOUT_MS,
      ...options,
    });
    stores.push(store);
    return store;
  }

  describe('right after construction', () => {
    it('serves the first claim without waiting for the connection first', async () => {
      const store = open();
      assert.deepEqual(await store.claim('k', claim, 60_000), { acquired: true, claim });
    });

    it('answers ping', async () => {
      const store = open();
      await store.ping();
      assert.equal(await store.peek('k'), null);
    });
  });

  describe('while Redis is down', () => {
    it('rejects every method with StoreUnavailableError well within the command timeout', async () => {
      await server.stop();
      const store = open();
      const calls: Array<[string, () => Promise<unknown>]> = [
        ['claim', () => store.claim('k', claim, 60_000)],
        ['commit', () => store.commit('k', 'wf-1', 60_000)],
        ['release', () => store.release('k', 'wf-1')],
        ['peek', () => store.peek('k')],
        ['takeRateSlot', () => store.takeRateSlot(10, 60_000)],
        ['appendDecision', () => store.appendDecision(auditRecord(0), 100)],
        ['listDecisions', () => store.listDecisions(10)],
        ['listCooldowns', () => store.listCooldowns(10)],
        ['endCooldown', () => store.endCooldown('k', 60_000)],
        ['cooldownEndedAt', () => store.cooldownEndedAt('k')],
        ['ping', () => store.ping()],
      ];
      for (const [method, call] of calls) {
        const took = await elapsedMs(() => assert.rejects(call(), StoreUnavailableError, method));
        assert.ok(took < COMMAND_TIMEOUT_MS + SLACK_MS, `${method} took ${Math.round(took)} ms`);
      }
    });

    it('logs connection errors, at most one line per interval', async () => {
      await server.stop();
      let now = 0;
      const logger = recordingLogger();
      open({ now: () => now, logger });
      // Several reconnect attempts fail while the injected clock stands still, then it moves on.
      const deadline = Date.now() + RECOVERY_BOUND_MS;
      while (logger.lines.length < 2 && Date.now() < deadline) {
        await delay(POLL_MS);
        if (Date.now() + RECOVERY_BOUND_MS - deadline > 300) now += 1_000;
      }
      assert.equal(logger.lines.length, 2, 'one line for the first error, one once the interval had passed');
      assert.ok(logger.lines.every((line) => line.level === 'error' && line.obj.err instanceof Error));
      const suppressed = logger.lines[1]?.obj.suppressedSinceLastLog;
      assert.equal(typeof suppressed, 'number');
      assert.ok(
        (suppressed as number) >= 1,
        `errors between the two lines were counted, not logged (${String(suppressed)})`,
      );
    });

    it('logs the errors of the subscriber of ended cooldowns apart, at most one line per interval', async () => {
      await server.stop();
      let now = 0;
      const logger = recordingLogger();
      const store = open({ now: () => now, logger });
      store.onCooldownEnded(() => assert.fail('nothing can be heard while Redis is down'));
      const subscriberLines = (): LogLine[] => logger.lines.filter((line) => line.msg?.includes('subscriber'));
      const deadline = Date.now() + RECOVERY_BOUND_MS;
      while (subscriberLines().length < 2 && Date.now() < deadline) {
        await delay(POLL_MS);
        if (Date.now() + RECOVERY_BOUND_MS - deadline > 300) now += 1_000;
      }
      const lines = subscriberLines();
      assert.equal(lines.length, 2, 'one line for the first error, one once the interval had passed');
      assert.ok(lines.every((line) => line.level === 'error' && line.obj.err instanceof Error));
      assert.ok((lines[1]?.obj.suppressedSinceLastLog as number) >= 1, 'errors between the two lines were counted');
    });

    it('closes promptly', async () => {
      await server.stop();
      const store = open();
      await assert.rejects(store.ping(), StoreUnavailableError);
      const took = await elapsedMs(() => store.close());
      assert.ok(took < 1_000 + SLACK_MS, `close took ${Math.round(took)} ms`);
    });
  });

  describe('when Redis goes away and comes back empty', () => {
    it('recovers by itself and serves claims and scripts again', async () => {
      const store = open();
      await store.claim('k', claim, 60_000);
      await server.stop();
      await assert.rejects(store.peek('k'), StoreUnavailableError);
      await server.start();
      await untilPingAnswers(store);
      assert.equal(await store.peek('k'), null, 'the restarted Redis is empty');
      assert.deepEqual(await store.claim('k', claim, 60_000), { acquired: true, claim });
      // Scripts are cached per server: the restarted one has to be sent them again.
      assert.equal(await store.commit('k', 'wf-1', 60_000), true);
      assert.notEqual(await store.takeRateSlot(1, 60_000), null);
    });

    it('tells a listener of ended cooldowns null once its subscription is back, and the ends after it', async () => {
      const store = open();
      const heard: (string | null)[] = [];
      store.onCooldownEnded((key) => heard.push(key));
      await untilHeard(heard, 1, 'null: the subscription is up');
      await server.stop();
      await server.start();
      await untilHeard(heard, 2, 'null: the subscription is back');
      assert.deepEqual(heard, [null, null]);
      // The commands' connection reconnects on its own schedule.
      await untilPingAnswers(store);
      await store.endCooldown('k', 60_000);
      await untilHeard(heard, 3, 'k');
      assert.deepEqual(heard, [null, null, 'k']);
    });
  });

  describe('when Redis stops answering', () => {
    it('rejects a command with StoreUnavailableError within the command timeout', async () => {
      const store = open();
      await store.ping();
      server.pause();
      try {
        const took = await elapsedMs(() => assert.rejects(store.claim('k', claim, 60_000), StoreUnavailableError));
        assert.ok(took < COMMAND_TIMEOUT_MS + SLACK_MS, `claim took ${Math.round(took)} ms`);
      } finally {
        server.resume();
      }
      await untilPingAnswers(store);
    });

    it('closes within about a second', async () => {
      const store = open();
      await store.ping();
      server.pause();
      try {
        const took = await elapsedMs(() => store.close());
        assert.ok(took < 1_000 + SLACK_MS, `close took ${Math.round(took)} ms`);
      } finally {
        server.resume();
      }
    });
  });

  describe('when Redis stops answering with a listener of ended cooldowns subscribed', () => {
    it('closes within about a second', async () => {
      const store = open();
      const heard: (string | null)[] = [];
      store.onCooldownEnded((key) => heard.push(key));
      await untilHeard(heard, 1, 'null: the subscription is up');
      server.pause();
      try {
        const took = await elapsedMs(() => store.close());
        assert.ok(took < 1_000 + SLACK_MS, `close took ${Math.round(took)} ms`);
      } finally {
        server.resume();
      }
    });
  });

  describe('when the reply to a recorded state change is lost', () => {
    it('answers true to the retry with the same token, and the change has one audit entry', async () => {
      const store = open();
      const options = { retentionMs: 60_000, auditMaxLen: 100 };
      // Redis caches the script now: the paused call is sent as EVALSHA that runs once resumed.
      const earlier = failed('wf-earlier');
      assert.equal(await store.recordTransition(earlier, entryOf(earlier), options), true);
      const lost = failed('wf-1');
      server.pause();
      try {
        await assert.rejects(
          store.recordTransition(lost, entryOf(lost), { ...options, token: 'replica-a:1' }),
          StoreUnavailableError,
        );
      } finally {
        server.resume();
      }
      const deadline = Date.now() + RECOVERY_BOUND_MS;
      while ((await store.getRemediation(lost.workflow).catch(() => null)) === null && Date.now() < deadline) {
        await delay(POLL_MS);
      }
      assert.deepEqual(await store.getRemediation(lost.workflow), lost, 'the script ran after the client gave up');
      assert.equal(await store.recordTransition(lost, entryOf(lost), { ...options, token: 'replica-a:1' }), true);
      assert.equal(await store.recordTransition(lost, entryOf(lost), { ...options, token: 'replica-b:1' }), false);
      const entries = (await store.listDecisions(10)).filter(
        (entry) => 'workflow' in entry && entry.workflow === lost.workflow,
      );
      assert.deepEqual(entries, [entryOf(lost)], 'one audit entry');
    });
  });

  describe('batching', () => {
    /** Script calls Redis has served so far (ioredis sends EVALSHA, EVAL when the script is not cached). */
    async function scriptCalls(): Promise<number> {
      const admin = new Redis(server.url);
      try {
        const stats = await admin.info('commandstats');
        return [...stats.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+)/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
      } finally {
        admin.disconnect();
      }
    }

    it('claims the keys asked for in one turn with one script call, each key atomically', async () => {
      const store = open();
      await store.ping();
      const before = await scriptCalls();
      // Every key twice: the first claim takes it, the second finds the first's claim.
      const keys = Array.from({ length: 60 }, (_, i) => `k${i % 30}`);
      const results = await Promise.all(
        keys.map((key, i) => store.claim(key, { ...claim, workflowName: `wf-${i}` }, 60_000)),
      );
      assert.equal((await scriptCalls()) - before, 1, 'one script call for 60 claims');
      for (let i = 0; i < 30; i++) {
        assert.deepEqual(results[i], { acquired: true, claim: { ...claim, workflowName: `wf-${i}` } });
        assert.deepEqual(results[i + 30], { acquired: false, existing: { ...claim, workflowName: `wf-${i}` } });
      }
    });

    it('commits the claims of one turn with one script call, each on its own terms', async () => {
      const prefix = uniquePrefix();
      const store = new RedisCooldownStore({
        url: server.url,
        keyPrefix: prefix,
        commandTimeoutMs: COMMAND_TIMEOUT_MS,
      });
      stores.push(store);
      await store.claim('ours', claim, 60_000);
      await store.claim('theirs', { ...claim, workflowName: 'wf-other' }, 60_000);
      const admin = new Redis(server.url);
      try {
        await admin.rpush(`${prefix}cooldown:poisoned`, 'not a claim');
        const before = await scriptCalls();
        const results = await Promise.allSettled([
          store.commit('ours', 'wf-1', 600_000),
          store.commit('theirs', 'wf-1', 600_000),
          store.commit('expired', 'wf-1', 600_000),
          store.commit('poisoned', 'wf-1', 600_000),
        ]);
        assert.equal((await scriptCalls()) - before, 1, 'one script call for 4 commits');
        assert.deepEqual(results.slice(0, 3), [
          { status: 'fulfilled', value: true },
          { status: 'fulfilled', value: false },
          { status: 'fulfilled', value: true },
        ]);
        assert.equal(results[3]!.status, 'rejected');
        assert.ok((results[3] as PromiseRejectedResult).reason instanceof StoreUnavailableError);
        assert.equal((await store.peek('ours'))?.state, 'committed');
        assert.equal((await store.peek('theirs'))?.workflowName, 'wf-other', 'another claim is left alone');
        assert.equal(
          (await store.peek('expired'))?.state,
          'committed',
          'a key gone meanwhile is written: the Workflow exists',
        );
        assert.ok((await admin.pttl(`${prefix}cooldown:ours`)) > 60_000, 'the full cooldown replaces the lease');
      } finally {
        admin.disconnect();
      }
    });

    it('fails only the claim whose key holds something else', async () => {
      const prefix = uniquePrefix();
      const admin = new Redis(server.url);
      try {
        await admin.rpush(`${prefix}cooldown:poisoned`, 'not a claim');
      } finally {
        admin.disconnect();
      }
      const store = new RedisCooldownStore({
        url: server.url,
        keyPrefix: prefix,
        commandTimeoutMs: COMMAND_TIMEOUT_MS,
      });
      stores.push(store);
      const [poisoned, fine] = await Promise.allSettled([
        store.claim('poisoned', claim, 60_000),
        store.claim('fine', claim, 60_000),
      ]);
      assert.equal(poisoned.status, 'rejected');
      assert.ok((poisoned as PromiseRejectedResult).reason instanceof StoreUnavailableError);
      assert.match(String((poisoned as PromiseRejectedResult).reason.message), /WRONGTYPE/);
      assert.deepEqual(fine, { status: 'fulfilled', value: { acquired: true, claim } });
    });

    it('appends the audit records of one turn with one script call, and writes pending ones before closing', async () => {
      const prefix = uniquePrefix();
      const store = new RedisCooldownStore({
        url: server.url,
        keyPrefix: prefix,
        commandTimeoutMs: COMMAND_TIMEOUT_MS,
      });
      await store.ping();
      const before = await scriptCalls();
      const records = Array.from({ length: 5 }, (_, i) => auditRecord(i));
      await Promise.all(records.map((record) => store.appendDecision(record, 100)));
      assert.equal((await scriptCalls()) - before, 1, 'one script call for 5 records');
      // Not awaited, as the pipeline does: close must still send them before QUIT.
      const late = store.appendDecision(auditRecord(5), 100);
      await store.close();
      await late;
      const reader = new RedisCooldownStore({
        url: server.url,
        keyPrefix: prefix,
        commandTimeoutMs: COMMAND_TIMEOUT_MS,
      });
      stores.push(reader);
      const listed = await reader.listDecisions(10);
      assert.deepEqual(
        listed.map((r) => r.at),
        [5, 4, 3, 2, 1, 0].map((i) => new Date(i).toISOString()),
      );
    });
  });

  describe('a listener of ended cooldowns that throws', () => {
    it('is logged with the key it was told, and the others still hear', async () => {
      const logger = recordingLogger();
      const store = open({ logger });
      const heard: (string | null)[] = [];
      store.onCooldownEnded((key) => {
        if (key !== null) throw new Error('a listener that fails');
      });
      store.onCooldownEnded((key) => heard.push(key));
      await untilHeard(heard, 1, 'null: the subscription is up');
      await store.endCooldown('k', 60_000);
      await untilHeard(heard, 2, 'k');
      const failures = logger.lines.filter((line) => line.msg?.includes('listener'));
      assert.equal(failures.length, 1);
      assert.equal(failures[0]?.obj.key, 'k');
      assert.ok(failures[0]?.obj.err instanceof Error);
    });
  });

  describe('close', () => {
    it('can be called twice and refuses commands afterwards', async () => {
      const store = open();
      await store.ping();
      await Promise.all([store.close(), store.close()]);
      await store.close();
      await assert.rejects(store.peek('k'), StoreUnavailableError);
    });
  });
});
