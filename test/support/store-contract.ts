import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import type { Pause, PauseSelector } from '../../src/pause.js';
import type {
  EscalationAlert,
  EscalationEntry,
  Remediation,
  RemediationEntry,
  RemediationState,
} from '../../src/remediation/model.js';
import {
  ACTIVITY_BUCKET_MS,
  type Activity,
  type CooldownClaim,
  type CooldownStore,
  type DecisionRecord,
  StoreClosedError,
  StoreUnavailableError,
} from '../../src/stores/cooldown-store.js';
import { auditRecord } from './records.js';

export const WINDOW_MS = 60_000;
/** Just past the start of a rate window, so a test's takes all fall into one window. */
export const START = Math.floor(1_700_000_000_000 / WINDOW_MS) * WINDOW_MS + 1_000;
/** Short enough that Redis, which keeps real time, lets it run out in a test. */
export const SHORT_MS = 60;
export const LONG_MS = 60_000;
export const TICK_MS = 10;
export const MAX_TICKS = 300;
/** Redis trims whole stream nodes (stream-node-max-entries, 100 by default) under MAXLEN ~. */
export const APPROXIMATE_TRIM_SLACK = 100;

/** Real time a listener may take to hear an end through Redis pub/sub before a test fails. */
export const HEAR_BOUND_MS = 8_000;

/**
 * How TTLs see time: the memory store reads the injected clock, so the suite moves it;
 * Redis keeps its own time, so the suite lets a little real time pass while polling.
 */
export type TtlClock = 'injected' | 'real';

export function pendingClaim(workflowName: string, fingerprint = `fp-${workflowName}`): CooldownClaim {
  return { workflowName, fingerprint, state: 'pending', claimedAt: START };
}

export function decision(index: number): DecisionRecord {
  return auditRecord(index, START);
}

/** Kept this long in Redis's real time too, so nothing of a test expires under it unless it asks. */
export const RETENTION = { retentionMs: LONG_MS, auditMaxLen: 100 };

/** A remediation of `argo/<name>`, submitted `submittedOffsetMs` after START. */
export function remediation(name: string, state: RemediationState, submittedOffsetMs = 0): Remediation {
  return {
    workflow: `argo/${name}`,
    rule: 'pod-crash',
    cooldownKey: 'pod-crash:shop/checkout',
    target: 'shop/checkout-7d9f',
    state,
    submittedAt: new Date(START + submittedOffsetMs).toISOString(),
    attempt: 1,
  };
}

export function transitionOf(changed: Remediation): RemediationEntry {
  return {
    kind: 'remediation',
    workflow: changed.workflow,
    rule: changed.rule,
    cooldownKey: changed.cooldownKey,
    target: changed.target,
    state: changed.state,
    at: new Date(START).toISOString(),
    replica: 'replica-a',
  };
}

export function escalation(workflow: string): EscalationAlert {
  return {
    labels: { alertname: 'KubeSentinelRemediationFailed', rule: 'pod-crash', workflow },
    annotations: { summary: `remediation ${workflow} failed` },
  };
}

export function byWorkflow(alerts: EscalationAlert[]): EscalationAlert[] {
  return [...alerts].sort((a, b) => (a.labels.workflow ?? '').localeCompare(b.labels.workflow ?? ''));
}

/** What one listener of ended cooldowns heard, in order. */
export class Heard {
  readonly keys: (string | null)[] = [];
  private readonly waiting: (() => void)[] = [];

  /** `throws`: the listener throws on every key, after taking note of it. */
  constructor(private readonly throws = false) {}

  readonly listener = (key: string | null): void => {
    this.keys.push(key);
    for (const wake of this.waiting.splice(0)) wake();
    if (this.throws && key !== null) throw new Error(`a listener that fails on ${key}`);
  };

  /** Resolves once `count` things were heard in all; fails after HEAR_BOUND_MS of real time. */
  heardAtLeast(count: number, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`heard ${JSON.stringify(this.keys)} within ${HEAR_BOUND_MS} ms, waiting for ${what}`)),
        HEAR_BOUND_MS,
      );
      const check = (): void => {
        if (this.keys.length >= count) {
          clearTimeout(timer);
          resolve();
        } else this.waiting.push(check);
      };
      check();
    });
  }
}

/**
 * Listens with each of `heard`, all at once, until they do: Redis tells each null when its
 * subscription is up (an end before that may have been missed), and the null is taken off.
 * Answers the functions that stop each.
 */
export async function listen(store: CooldownStore, ...heard: Heard[]): Promise<(() => void)[]> {
  const stops = heard.map((one) => store.onCooldownEnded(one.listener));
  if (store.kind === 'redis') {
    for (const one of heard) {
      await one.heardAtLeast(1, 'null: the subscription is up');
      assert.deepEqual(one.keys.splice(0), [null]);
    }
  }
  return stops;
}

/** As `listen`, for the listeners of changed pauses. */
export async function listenToPauses(store: CooldownStore, ...heard: Heard[]): Promise<(() => void)[]> {
  const stops = heard.map((one) => store.onPausesChanged(one.listener));
  if (store.kind === 'redis') {
    for (const one of heard) {
      await one.heardAtLeast(1, 'null: the subscription is up');
      assert.deepEqual(one.keys.splice(0), [null]);
    }
  }
  return stops;
}

/** A pause made at START that ends expiresInMs after it; on namespace shop unless told. */
export function pauseOf(
  id: string,
  expiresInMs: number,
  selectors: Partial<Record<PauseSelector, string>> = { namespace: 'shop' },
): Pause {
  return {
    id,
    ...selectors,
    reason: 'deploy',
    createdBy: 'alice',
    createdAt: new Date(START).toISOString(),
    expiresAt: new Date(START + expiresInMs).toISOString(),
  };
}

export function byId(pauses: Pause[]): Pause[] {
  return [...pauses].sort((a, b) => a.id.localeCompare(b.id));
}

export function byKey<T extends { key: string }>(held: T[]): T[] {
  return [...held].sort((a, b) => a.key.localeCompare(b.key));
}

/** The contract of src/stores/cooldown-store.ts, the same for every store. */
export function contract(
  name: string,
  makeStore: (now: () => number) => Promise<CooldownStore>,
  ttlClock: TtlClock,
): void {
  describe(name, () => {
    let now = START;
    let opened: CooldownStore[] = [];

    beforeEach(() => {
      now = START;
    });

    afterEach(async () => {
      await Promise.all(opened.map((store) => store.close()));
      opened = [];
    });

    async function open(): Promise<CooldownStore> {
      const store = await makeStore(() => now);
      opened.push(store);
      return store;
    }

    async function letTimePass(): Promise<void> {
      if (ttlClock === 'injected') now += TICK_MS;
      else await delay(TICK_MS);
    }

    /** Waits on a condition, a tick at a time, never longer than MAX_TICKS. */
    async function until(condition: () => Promise<boolean>, what: string): Promise<void> {
      for (let tick = 0; tick < MAX_TICKS; tick++) {
        if (await condition()) return;
        await letTimePass();
      }
      assert.fail(`still waiting after ${MAX_TICKS} ticks: ${what}`);
    }

    describe('cooldown claim', () => {
      it('gives the key to exactly one of twenty concurrent claimers', async () => {
        const store = await open();
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) => store.claim('team/pod-crash', pendingClaim(`wf-${i}`), LONG_MS)),
        );
        const winners = results.filter((result) => result.acquired);
        assert.equal(winners.length, 1);
        const winner = winners[0];
        assert.ok(winner?.acquired);
        for (const result of results) {
          if (!result.acquired) assert.deepEqual(result.existing, winner.claim);
        }
      });

      it('returns the claim that holds the key to a claimer that did not get it', async () => {
        const store = await open();
        const first = pendingClaim('wf-first', 'fp-alert-1');
        assert.deepEqual(await store.claim('k', first, LONG_MS), { acquired: true, claim: first });
        const second = await store.claim('k', pendingClaim('wf-second', 'fp-alert-2'), LONG_MS);
        assert.deepEqual(second, { acquired: false, existing: first });
      });

      it('keeps different cooldown keys apart', async () => {
        const store = await open();
        assert.equal((await store.claim('ns-a/alert', pendingClaim('wf-a'), LONG_MS)).acquired, true);
        assert.equal((await store.claim('ns-b/alert', pendingClaim('wf-b'), LONG_MS)).acquired, true);
      });

      it('frees the key when a pending lease runs out', async () => {
        const store = await open();
        await store.claim('k', pendingClaim('wf-dead-replica'), SHORT_MS);
        await until(async () => (await store.peek('k')) === null, 'the pending lease to run out');
        const retry = await store.claim('k', pendingClaim('wf-next'), LONG_MS);
        assert.deepEqual(retry, { acquired: true, claim: pendingClaim('wf-next') });
      });
    });

    describe('cooldown commit', () => {
      it('turns the pending claim into a committed one that outlives the lease', async () => {
        const store = await open();
        const claim = pendingClaim('wf-1');
        await store.claim('k', claim, SHORT_MS);
        await store.claim('probe', pendingClaim('wf-probe'), SHORT_MS);
        assert.equal(await store.commit('k', 'wf-1', LONG_MS), true);
        await until(async () => (await store.peek('probe')) === null, 'a lease taken at the same time to run out');
        assert.deepEqual(await store.peek('k'), { ...claim, state: 'committed' });
      });

      it('lets the committed claim expire after cooldownMs', async () => {
        const store = await open();
        await store.claim('k', pendingClaim('wf-1'), LONG_MS);
        assert.equal(await store.commit('k', 'wf-1', SHORT_MS), true);
        await until(async () => (await store.peek('k')) === null, 'the cooldown to run out');
      });

      it('refuses a workflow name that does not hold the key and leaves the claim alone', async () => {
        const store = await open();
        const claim = pendingClaim('wf-holder');
        await store.claim('k', claim, LONG_MS);
        assert.equal(await store.commit('k', 'wf-intruder', LONG_MS), false);
        assert.deepEqual(await store.peek('k'), claim);
      });

      it('sets the committed claim when the lease ran out before the commit', async () => {
        const store = await open();
        await store.claim('k', pendingClaim('wf-slow'), SHORT_MS);
        await until(async () => (await store.peek('k')) === null, 'the pending lease to run out');
        const committedAt = now;
        assert.equal(await store.commit('k', 'wf-slow', LONG_MS), true);
        const held = await store.peek('k');
        assert.equal(held?.workflowName, 'wf-slow');
        assert.equal(held?.state, 'committed');
        assert.equal(held?.claimedAt, committedAt);
        assert.equal((await store.claim('k', pendingClaim('wf-other'), LONG_MS)).acquired, false);
      });
    });

    describe('cooldown hold (a create whose outcome is unknown)', () => {
      it('keeps the pending claim, name and fingerprint, past the lease for the TTL given', async () => {
        const store = await open();
        const claim = pendingClaim('wf-1', 'fp-alert');
        await store.claim('k', claim, SHORT_MS);
        await store.claim('probe', pendingClaim('wf-probe'), SHORT_MS);
        assert.equal(await store.hold('k', claim, LONG_MS), true);
        await until(async () => (await store.peek('probe')) === null, 'a lease taken at the same time to run out');
        assert.deepEqual(await store.peek('k'), claim);
        const redelivery = await store.claim('k', pendingClaim('wf-new', 'fp-alert'), LONG_MS);
        assert.deepEqual(redelivery, { acquired: false, existing: claim });
      });

      it('writes the pending claim back when the lease ran out before the hold', async () => {
        const store = await open();
        const claim = pendingClaim('wf-slow', 'fp-alert');
        await store.claim('k', claim, SHORT_MS);
        await until(async () => (await store.peek('k')) === null, 'the pending lease to run out');
        assert.equal(await store.hold('k', claim, LONG_MS), true);
        assert.deepEqual(await store.peek('k'), claim);
      });

      it('never turns a committed claim back into a pending one, nor shortens it', async () => {
        const store = await open();
        const claim = pendingClaim('wf-1');
        await store.claim('k', claim, LONG_MS);
        assert.equal(await store.commit('k', 'wf-1', LONG_MS), true);
        assert.equal(await store.hold('k', claim, SHORT_MS), true);
        assert.equal((await store.peek('k'))?.state, 'committed');
        await store.claim('k2', claim, LONG_MS);
        assert.equal(await store.hold('k2', claim, SHORT_MS), true);
        await store.claim('probe', pendingClaim('wf-probe'), SHORT_MS);
        await until(async () => (await store.peek('probe')) === null, 'a lease taken at the same time to run out');
        assert.deepEqual(await store.peek('k2'), claim, 'a shorter hold left the longer lease alone');
      });

      it('refuses a workflow name that does not hold the key', async () => {
        const store = await open();
        const claim = pendingClaim('wf-holder');
        await store.claim('k', claim, SHORT_MS);
        assert.equal(await store.hold('k', pendingClaim('wf-intruder'), LONG_MS), false);
        assert.deepEqual(await store.peek('k'), claim);
      });
    });

    describe('cooldown release', () => {
      it("deletes the key when it holds the caller's workflow name", async () => {
        const store = await open();
        await store.claim('k', pendingClaim('wf-1'), LONG_MS);
        assert.equal(await store.release('k', 'wf-1'), true);
        assert.equal(await store.peek('k'), null);
        assert.equal((await store.claim('k', pendingClaim('wf-2'), LONG_MS)).acquired, true);
      });

      it('leaves a claim held by another workflow name alone', async () => {
        const store = await open();
        const claim = pendingClaim('wf-holder');
        await store.claim('k', claim, LONG_MS);
        assert.equal(await store.release('k', 'wf-other'), false);
        assert.deepEqual(await store.peek('k'), claim);
      });

      it('keeps the dry-run mark of a claim through claim, commit and peek', async () => {
        const store = await open();
        const claim: CooldownClaim = { ...pendingClaim('wf-dry'), dryRun: true };
        await store.claim('k', claim, LONG_MS);
        assert.deepEqual(await store.peek('k'), claim);
        assert.deepEqual(await store.claim('k', pendingClaim('wf-other'), LONG_MS), {
          acquired: false,
          existing: claim,
        });
        assert.equal(await store.commit('k', 'wf-dry', LONG_MS), true);
        assert.deepEqual(await store.peek('k'), { ...claim, state: 'committed' });
      });

      it('answers false for a key that holds nothing', async () => {
        const store = await open();
        assert.equal(await store.release('nobody-claimed-this', 'wf-1'), false);
      });
    });

    describe('cooldown peek', () => {
      it('returns null for a key nobody claimed and does not create it', async () => {
        const store = await open();
        assert.equal(await store.peek('k'), null);
        assert.equal((await store.claim('k', pendingClaim('wf-1'), LONG_MS)).acquired, true);
      });

      it('neither extends nor changes the claim it looks at', async () => {
        const store = await open();
        const claim = pendingClaim('wf-1');
        await store.claim('k', claim, SHORT_MS);
        let peeks = 0;
        await until(async () => {
          const held = await store.peek('k');
          if (held) assert.deepEqual(held, claim);
          peeks += 1;
          return held === null;
        }, 'a lease that is only peeked at to run out');
        assert.ok(peeks > 1, 'the claim was looked at while it was held');
      });
    });

    describe('rate slots', () => {
      it('grants exactly limit of many concurrent takes within one window', async () => {
        const store = await open();
        const taken = await Promise.all(Array.from({ length: 25 }, () => store.takeRateSlot(7, WINDOW_MS)));
        assert.equal(taken.filter((window) => window !== null).length, 7);
      });

      it('gives the next window a fresh budget', async () => {
        const store = await open();
        const takeFour = async (): Promise<boolean[]> => {
          const results: boolean[] = [];
          for (let i = 0; i < 4; i++) results.push((await store.takeRateSlot(3, WINDOW_MS)) !== null);
          return results;
        };
        assert.deepEqual(await takeFour(), [true, true, true, false]);
        now += WINDOW_MS;
        assert.deepEqual(await takeFour(), [true, true, true, false]);
      });

      it('does not count refused takes against the budget of the same window', async () => {
        const store = await open();
        for (let i = 0; i < 10; i++) await store.takeRateSlot(2, WINDOW_MS);
        now += WINDOW_MS;
        assert.equal(await store.takeRateSlot(1, WINDOW_MS), Math.floor(now / WINDOW_MS));
        assert.equal(await store.takeRateSlot(1, WINDOW_MS), null);
      });

      it('takes back a slot given back in its window, never below zero, never in another window', async () => {
        const store = await open();
        const window = await store.takeRateSlot(2, WINDOW_MS);
        assert.notEqual(window, null);
        assert.notEqual(await store.takeRateSlot(2, WINDOW_MS), null);
        assert.equal(await store.takeRateSlot(2, WINDOW_MS), null);
        await store.returnRateSlot(window as number, WINDOW_MS);
        assert.equal(await store.takeRateSlot(2, WINDOW_MS), window, 'the slot given back is free again');
        assert.equal(await store.takeRateSlot(2, WINDOW_MS), null);
        // Giving back more than was taken does not raise the budget.
        for (let i = 0; i < 5; i++) await store.returnRateSlot(window as number, WINDOW_MS);
        assert.notEqual(await store.takeRateSlot(2, WINDOW_MS), null);
        assert.notEqual(await store.takeRateSlot(2, WINDOW_MS), null);
        assert.equal(await store.takeRateSlot(2, WINDOW_MS), null);
        // A slot of the last window given back does not free one in this window.
        now += WINDOW_MS;
        assert.notEqual(await store.takeRateSlot(1, WINDOW_MS), null);
        await store.returnRateSlot(window as number, WINDOW_MS);
        assert.equal(await store.takeRateSlot(1, WINDOW_MS), null);
      });
    });

    describe('audit trail', () => {
      it('lists decisions newest first', async () => {
        const store = await open();
        for (let i = 0; i < 5; i++) await store.appendDecision(decision(i), 100);
        assert.deepEqual(await store.listDecisions(10), [4, 3, 2, 1, 0].map(decision));
      });

      it('returns no more than the limit asked for', async () => {
        const store = await open();
        for (let i = 0; i < 5; i++) await store.appendDecision(decision(i), 100);
        assert.deepEqual(await store.listDecisions(2), [decision(4), decision(3)]);
        assert.deepEqual(await store.listDecisions(0), []);
      });

      it('returns an empty list when nothing was recorded', async () => {
        const store = await open();
        assert.deepEqual(await store.listDecisions(100), []);
      });

      it('caps the trail near maxLen and keeps the newest records', async () => {
        const store = await open();
        const maxLen = 20;
        const appended = 350;
        for (let i = 0; i < appended; i++) await store.appendDecision(decision(i), maxLen);
        const listed = await store.listDecisions(1000);
        assert.ok(listed.length >= maxLen, `kept ${listed.length}, at least maxLen`);
        assert.ok(listed.length <= maxLen + APPROXIMATE_TRIM_SLACK, `kept ${listed.length}, about maxLen`);
        const newest = Array.from({ length: maxLen }, (_, i) => decision(appended - 1 - i));
        assert.deepEqual(listed.slice(0, maxLen), newest);
      });

      describe('folding repeats (SPEC §11)', () => {
        /** A `cooldown` decision of one alert, `index` ms after START. */
        const repeat = (index: number, fingerprint = 'aaaaaaaaaaaaaaaa', extra: Partial<DecisionRecord> = {}) => ({
          ...decision(index),
          fingerprint,
          outcome: 'cooldown' as const,
          cooldownKey: 'crashloop:shop/checkout',
          reason: 'kube-sentinel-crashloop-x was submitted',
          ...extra,
        });
        const at = (index: number) => new Date(START + index).toISOString();

        it('folds the repeats of a non-acting decision into one entry, counted, listed at its latest occurrence', async () => {
          const store = await open();
          await store.appendDecision(repeat(0), 100);
          await store.appendDecision(repeat(1, 'bbbbbbbbbbbbbbbb'), 100);
          await store.appendDecision(repeat(2), 100);
          await store.appendDecision(repeat(3, 'aaaaaaaaaaaaaaaa', { replica: 'replica-b' }), 100);
          assert.deepEqual(await store.listDecisions(10), [
            { ...repeat(3, 'aaaaaaaaaaaaaaaa', { replica: 'replica-b' }), at: at(0), lastAt: at(3), count: 3 },
            repeat(1, 'bbbbbbbbbbbbbbbb'),
          ]);
        });

        it('keeps every action its own entry: a repeat after it starts a new one', async () => {
          const store = await open();
          const submitted = { ...decision(1), fingerprint: 'aaaaaaaaaaaaaaaa' };
          await store.appendDecision(repeat(0), 100);
          await store.appendDecision(submitted, 100);
          await store.appendDecision(repeat(2), 100);
          await store.appendDecision(repeat(3), 100);
          await store.appendDecision(submitted, 100);
          assert.deepEqual(await store.listDecisions(10), [
            submitted,
            { ...repeat(3), at: at(2), lastAt: at(3), count: 2 },
            submitted,
            repeat(0),
          ]);
        });

        it('starts a new entry when the decision changes: another outcome, reason or rule', async () => {
          const store = await open();
          const others = [
            repeat(1, undefined, { reason: 'kube-sentinel-crashloop-y was submitted' }),
            repeat(2, undefined, { outcome: 'rate_limited', reason: 'more than 30 workflows in the last minute' }),
            repeat(3, undefined, { rule: 'other' }),
          ];
          await store.appendDecision(repeat(0), 100);
          for (const other of others) await store.appendDecision(other, 100);
          assert.deepEqual(await store.listDecisions(10), [...others].reverse().concat(repeat(0)));
        });

        it('folds repeats appended at once, in one batch, listing each at its latest occurrence', async () => {
          const store = await open();
          await store.appendDecision(repeat(0), 100);
          await Promise.all(Array.from({ length: 50 }, (_, i) => store.appendDecision(repeat(i + 1), 100)));
          await store.appendDecision(repeat(51), 100);
          assert.deepEqual(await store.listDecisions(10), [{ ...repeat(51), at: at(0), lastAt: at(51), count: 52 }]);
          const other = 'bbbbbbbbbbbbbbbb';
          await Promise.all([
            store.appendDecision(repeat(52, other), 100),
            store.appendDecision(repeat(53), 100),
            store.appendDecision(repeat(54, other), 100),
          ]);
          assert.deepEqual(await store.listDecisions(10), [
            { ...repeat(54, other), at: at(52), lastAt: at(54), count: 2 },
            { ...repeat(53), at: at(0), lastAt: at(53), count: 53 },
          ]);
        });

        it('starts a new entry when the one repeated was trimmed away by the cap', async () => {
          const store = await open();
          const maxLen = 5;
          await store.appendDecision(repeat(0), maxLen);
          for (let i = 1; i <= 350; i++) await store.appendDecision(decision(i), maxLen);
          await store.appendDecision(repeat(351), maxLen);
          const listed = await store.listDecisions(1000);
          assert.deepEqual(listed[0], repeat(351), 'a fresh entry, not one counting the trimmed repeat');
          assert.equal(listed.filter((entry) => 'count' in entry).length, 0);
        });
      });

      it('lists decisions, remediation state changes and escalations together, in the order they came', async () => {
        const store = await open();
        const failed = remediation('wf-1', 'failed');
        const fired: EscalationEntry = {
          kind: 'escalation',
          alertname: 'KubeSentinelRemediationFailed',
          status: 'firing',
          cooldownKey: failed.cooldownKey,
          workflow: failed.workflow,
          labels: { alertname: 'KubeSentinelRemediationFailed', rule: 'pod-crash' },
          at: new Date(START + 2).toISOString(),
          replica: 'replica-a',
        };
        await store.appendDecision(decision(0), 100);
        await store.recordTransition(failed, transitionOf(failed), RETENTION);
        await store.appendDecision(fired, 100);
        await store.appendDecision(decision(3), 100);
        assert.deepEqual(await store.listDecisions(10), [decision(3), fired, transitionOf(failed), decision(0)]);
      });

      it('keeps every field of a record, nested ones included', async () => {
        const store = await open();
        const record: DecisionRecord = {
          at: '2024-05-01T10:00:00.000Z',
          replica: 'replica-b',
          fingerprint: 'a1b2c3d4e5f60718',
          alertname: 'KubePodCrashLooping',
          status: 'resolved',
          rule: 'pod-crash',
          priority: null,
          outcome: 'failed',
          reason: 'kubernetes: 403 Forbidden "x"\n…',
          cooldownKey: 'pod-crash:shop/checkout',
          workflow: { namespace: 'argo', name: 'remediate-pod-crash-x7k2p' },
        };
        await store.appendDecision(record, 100);
        assert.deepEqual(await store.listDecisions(1), [record]);
      });
    });

    describe('cooldown replace (the repair of a cooldown the store forgot)', () => {
      it('writes the claim given when the key holds nothing', async () => {
        const store = await open();
        const claim: CooldownClaim = { ...pendingClaim('wf-1'), state: 'committed' };
        assert.equal(await store.replace('k', 'wf-1', claim, LONG_MS), true);
        assert.deepEqual(await store.peek('k'), claim);
      });

      it("replaces the caller's own claim, and for the new TTL", async () => {
        const store = await open();
        await store.claim('k', pendingClaim('wf-1', 'fp-first'), SHORT_MS);
        const repaired: CooldownClaim = { ...pendingClaim('wf-1', 'fp-repair'), state: 'committed' };
        assert.equal(await store.replace('k', 'wf-1', repaired, LONG_MS), true);
        await store.claim('probe', pendingClaim('wf-probe'), SHORT_MS);
        await until(async () => (await store.peek('probe')) === null, 'a lease taken at the same time to run out');
        assert.deepEqual(await store.peek('k'), repaired);
      });

      it("refuses a key that holds another workflow name's claim and leaves it alone", async () => {
        const store = await open();
        const claim = pendingClaim('wf-holder');
        await store.claim('k', claim, LONG_MS);
        const intruder: CooldownClaim = { ...pendingClaim('wf-intruder'), state: 'committed' };
        assert.equal(await store.replace('k', 'wf-intruder', intruder, LONG_MS), false);
        assert.deepEqual(await store.peek('k'), claim);
      });
    });

    describe('remediation transitions', () => {
      it('records a state change once: the second call for it is refused', async () => {
        const store = await open();
        const running = remediation('wf-1', 'running');
        assert.equal(await store.recordTransition(running, transitionOf(running), RETENTION), true);
        assert.equal(await store.recordTransition(running, transitionOf(running), RETENTION), false);
        assert.deepEqual(await store.getRemediation('argo/wf-1'), running);
        assert.deepEqual(await store.listDecisions(10), [transitionOf(running)], 'one audit entry');
      });

      it('never moves a remediation back: a lagging running after failed is refused and failed stays', async () => {
        const store = await open();
        const failed = { ...remediation('wf-1', 'failed'), message: 'step crashed' };
        assert.equal(await store.recordTransition(failed, transitionOf(failed), RETENTION), true);
        const running = remediation('wf-1', 'running');
        assert.equal(await store.recordTransition(running, transitionOf(running), RETENTION), false);
        assert.deepEqual(await store.getRemediation('argo/wf-1'), failed);
        assert.deepEqual(await store.listDecisions(10), [transitionOf(failed)]);
      });

      it('never replaces a final state: unknown after succeeded is refused, and succeeded stays', async () => {
        const store = await open();
        const succeeded = remediation('wf-1', 'succeeded');
        assert.equal(await store.recordTransition(succeeded, transitionOf(succeeded), RETENTION), true);
        // Another replica's relist found the Workflow deleted, with its stale running copy.
        const unknown = { ...remediation('wf-1', 'unknown'), message: 'deleted before it completed' };
        assert.equal(await store.recordTransition(unknown, transitionOf(unknown), RETENTION), false);
        assert.equal(await store.recordTransition(unknown, transitionOf(unknown), RETENTION), false, 'and again');
        assert.deepEqual(await store.getRemediation('argo/wf-1'), succeeded);
        assert.deepEqual(await store.listDecisions(10), [transitionOf(succeeded)], 'one audit entry, the final state');
      });

      it('moves forward through the states, each recorded with its own audit entry', async () => {
        const store = await open();
        const states: RemediationState[] = ['pending', 'awaiting_approval', 'running', 'succeeded'];
        for (const state of states) {
          const changed = remediation('wf-1', state);
          assert.equal(await store.recordTransition(changed, transitionOf(changed), RETENTION), true, state);
        }
        assert.equal((await store.getRemediation('argo/wf-1'))?.state, 'succeeded');
        const entries = await store.listDecisions(10);
        assert.deepEqual(
          entries.map((entry) => ('state' in entry ? entry.state : undefined)),
          [...states].reverse(),
        );
      });

      it('answers true again to a retry with the same token, writing nothing a second time', async () => {
        const store = await open();
        const running = remediation('wf-1', 'running');
        const retried = { ...running, message: 'seen again' };
        assert.equal(
          await store.recordTransition(running, transitionOf(running), { ...RETENTION, token: 't-1' }),
          true,
        );
        assert.equal(
          await store.recordTransition(retried, transitionOf(retried), { ...RETENTION, token: 't-1' }),
          true,
        );
        assert.deepEqual(await store.getRemediation('argo/wf-1'), running, "the record is the first call's");
        assert.deepEqual(await store.listDecisions(10), [transitionOf(running)], 'one audit entry');
        assert.equal(
          await store.recordTransition(running, transitionOf(running), { ...RETENTION, token: 't-2' }),
          false,
        );
        assert.equal(await store.recordTransition(running, transitionOf(running), RETENTION), false, 'nor without one');
        // Still the recording call's after the remediation moved on: true, and failed stays.
        const failed = remediation('wf-1', 'failed');
        assert.equal(await store.recordTransition(failed, transitionOf(failed), RETENTION), true);
        assert.equal(
          await store.recordTransition(running, transitionOf(running), { ...RETENTION, token: 't-1' }),
          true,
        );
        assert.deepEqual(await store.getRemediation('argo/wf-1'), failed);
        assert.equal((await store.listDecisions(10)).length, 2);
      });

      it('refuses the retry of a refused call again, token or not', async () => {
        const store = await open();
        const failed = remediation('wf-1', 'failed');
        await store.recordTransition(failed, transitionOf(failed), RETENTION);
        const running = remediation('wf-1', 'running');
        assert.equal(
          await store.recordTransition(running, transitionOf(running), { ...RETENTION, token: 't-1' }),
          false,
        );
        assert.equal(
          await store.recordTransition(running, transitionOf(running), { ...RETENTION, token: 't-1' }),
          false,
        );
        assert.deepEqual(await store.getRemediation('argo/wf-1'), failed);
        assert.deepEqual(await store.listDecisions(10), [transitionOf(failed)]);
      });

      it('refuses an empty token, naming the Workflow, and stores nothing', async () => {
        const store = await open();
        const running = remediation('wf-1', 'running');
        await assert.rejects(
          store.recordTransition(running, transitionOf(running), { ...RETENTION, token: '' }),
          (error: Error) => {
            assert.ok(error instanceof RangeError, 'not a store outage');
            assert.match(error.message, /argo\/wf-1.*token.*empty/);
            return true;
          },
        );
        assert.equal(await store.getRemediation('argo/wf-1'), null);
        assert.equal(await store.recordTransition(running, transitionOf(running), RETENTION), true, 'no marker set');
      });

      it('answers null for a Workflow it never recorded', async () => {
        const store = await open();
        assert.equal(await store.getRemediation('argo/never'), null);
      });

      it('refuses a remediation whose submittedAt is not a date-time, naming it, and stores nothing', async () => {
        const store = await open();
        const broken = { ...remediation('wf-1', 'running'), submittedAt: 'yesterday' };
        await assert.rejects(store.recordTransition(broken, transitionOf(broken), RETENTION), (error: Error) => {
          assert.ok(!(error instanceof StoreUnavailableError), 'not a store outage');
          assert.match(error.message, /argo\/wf-1.*submittedAt "yesterday"/);
          return true;
        });
        assert.equal(await store.getRemediation('argo/wf-1'), null);
        assert.deepEqual(await store.listDecisions(10), []);
      });
    });

    describe('remediation listing', () => {
      it('lists newest submitted first, whatever the order they were recorded in, up to the limit', async () => {
        const store = await open();
        for (const [name, offset] of [
          ['wf-b', 2_000],
          ['wf-a', 1_000],
          ['wf-c', 3_000],
        ] as const) {
          const changed = remediation(name, 'running', offset);
          await store.recordTransition(changed, transitionOf(changed), RETENTION);
        }
        const newest = ['argo/wf-c', 'argo/wf-b', 'argo/wf-a'];
        assert.deepEqual(
          (await store.listRemediations(10)).map((listed) => listed.workflow),
          newest,
        );
        assert.deepEqual(
          (await store.listRemediations(2)).map((listed) => listed.workflow),
          newest.slice(0, 2),
        );
        assert.deepEqual(await store.listRemediations(0), []);
      });

      it('lists a remediation once, in its latest state', async () => {
        const store = await open();
        for (const state of ['pending', 'running', 'failed'] as const) {
          const changed = remediation('wf-1', state);
          await store.recordTransition(changed, transitionOf(changed), RETENTION);
        }
        assert.deepEqual(await store.listRemediations(10), [remediation('wf-1', 'failed')]);
      });

      it('lists only those in the state asked for, found past many newer ones', async () => {
        const store = await open();
        for (let i = 0; i < 3; i++) {
          const failed = remediation(`wf-failed-${i}`, 'failed', i);
          await store.recordTransition(failed, transitionOf(failed), { ...RETENTION, auditMaxLen: 1 });
        }
        // More newer ones than a page of the listing holds.
        for (let i = 0; i < 250; i++) {
          const running = remediation(`wf-running-${i}`, 'running', 1_000 + i);
          await store.recordTransition(running, transitionOf(running), { ...RETENTION, auditMaxLen: 1 });
        }
        const failed = await store.listRemediations(2, 'failed');
        assert.deepEqual(
          failed.map((listed) => listed.workflow),
          ['argo/wf-failed-2', 'argo/wf-failed-1'],
        );
        assert.equal((await store.listRemediations(10, 'failed')).length, 3);
        assert.deepEqual(await store.listRemediations(10, 'cancelled'), []);
      });

      it('stops listing what was submitted longer ago than the retention', async () => {
        const store = await open();
        const old = remediation('wf-old', 'running');
        await store.recordTransition(old, transitionOf(old), RETENTION);
        now += RETENTION.retentionMs + 1;
        const recent = remediation('wf-recent', 'running', RETENTION.retentionMs + 1);
        await store.recordTransition(recent, transitionOf(recent), RETENTION);
        assert.deepEqual(await store.listRemediations(10), [recent]);
      });

      it('skips a remediation whose record has expired', async () => {
        const store = await open();
        const kept = remediation('wf-kept', 'running');
        await store.recordTransition(kept, transitionOf(kept), RETENTION);
        const brief = remediation('wf-brief', 'running', 1_000);
        await store.recordTransition(brief, transitionOf(brief), { ...RETENTION, retentionMs: SHORT_MS });
        assert.equal((await store.listRemediations(10)).length, 2);
        await until(async () => (await store.getRemediation('argo/wf-brief')) === null, 'the record to expire');
        assert.deepEqual(await store.listRemediations(10), [kept]);
      });
    });

    describe('attempts', () => {
      it('lists the attempts of a key oldest first, apart from other keys', async () => {
        const store = await open();
        await store.addAttempt('k', { workflow: 'argo/wf-2', at: START - 1_000 }, LONG_MS);
        await store.addAttempt('k', { workflow: 'argo/wf-1', at: START - 2_000 }, LONG_MS);
        await store.addAttempt('other', { workflow: 'argo/wf-3', at: START }, LONG_MS);
        assert.deepEqual(await store.listAttempts('k', LONG_MS), [
          { workflow: 'argo/wf-1', at: START - 2_000 },
          { workflow: 'argo/wf-2', at: START - 1_000 },
        ]);
        assert.deepEqual(await store.listAttempts('nobody', LONG_MS), []);
      });

      it('counts a Workflow once however often it is added, at its first time', async () => {
        const store = await open();
        await store.addAttempt('k', { workflow: 'argo/wf-1', at: START - 1_000 }, LONG_MS);
        await store.addAttempt('k', { workflow: 'argo/wf-1', at: START }, LONG_MS);
        assert.deepEqual(await store.listAttempts('k', LONG_MS), [{ workflow: 'argo/wf-1', at: START - 1_000 }]);
      });

      it('forgets attempts as they age out of the window', async () => {
        const store = await open();
        await store.addAttempt('k', { workflow: 'argo/wf-1', at: START }, LONG_MS);
        now += 1_000;
        await store.addAttempt('k', { workflow: 'argo/wf-2', at: now }, LONG_MS);
        now = START + LONG_MS;
        assert.deepEqual(await store.listAttempts('k', LONG_MS), [{ workflow: 'argo/wf-2', at: START + 1_000 }]);
        now = START + 1_000 + LONG_MS;
        assert.deepEqual(await store.listAttempts('k', LONG_MS), []);
        await store.addAttempt('k', { workflow: 'argo/wf-1', at: now }, LONG_MS);
        assert.deepEqual(await store.listAttempts('k', LONG_MS), [{ workflow: 'argo/wf-1', at: now }], 'counted anew');
      });
    });

    describe('escalations', () => {
      it('opens an escalation once: only the first caller sends it', async () => {
        const store = await open();
        assert.equal(await store.openEscalation('k', 'failed:argo/wf-1', escalation('wf-1'), LONG_MS), true);
        assert.equal(await store.openEscalation('k', 'failed:argo/wf-1', escalation('wf-1'), LONG_MS), false);
        assert.equal(await store.openEscalation('other', 'failed:argo/wf-1', escalation('wf-1'), LONG_MS), true);
      });

      it('hands each escalation closed to one caller only', async () => {
        const store = await open();
        await store.openEscalation('k', 'failed:argo/wf-1', escalation('wf-1'), LONG_MS);
        await store.openEscalation('k', 'failed:argo/wf-2', escalation('wf-2'), LONG_MS);
        assert.deepEqual(await store.closeEscalations('k', ['failed:argo/wf-1', 'never-opened']), [escalation('wf-1')]);
        assert.deepEqual(await store.closeEscalations('k', ['failed:argo/wf-1']), []);
        assert.deepEqual(await store.closeEscalations('k', []), []);
        assert.equal(
          await store.openEscalation('k', 'failed:argo/wf-1', escalation('wf-1'), LONG_MS),
          true,
          'may fire again',
        );
      });

      it("closes every escalation of the key for 'all', and only that key's", async () => {
        const store = await open();
        await store.openEscalation('k', 'failed:argo/wf-1', escalation('wf-1'), LONG_MS);
        await store.openEscalation('k', 'approval:argo/wf-2', escalation('wf-2'), LONG_MS);
        await store.openEscalation('other', 'failed:argo/wf-3', escalation('wf-3'), LONG_MS);
        assert.deepEqual(byWorkflow(await store.closeEscalations('k', 'all')), [
          escalation('wf-1'),
          escalation('wf-2'),
        ]);
        assert.deepEqual(await store.closeEscalations('k', 'all'), []);
        assert.deepEqual(await store.closeEscalations('other', 'all'), [escalation('wf-3')]);
      });

      it('closes the escalations whose id starts with a prefix given, and leaves the others firing', async () => {
        const store = await open();
        for (const id of ['failed:a', 'failed:b', 'approval:c', 'exhausted']) {
          assert.equal(await store.openEscalation('k', id, escalation(id), LONG_MS), true, id);
        }
        await store.openEscalation('other', 'failed:d', escalation('failed:d'), LONG_MS);
        assert.deepEqual(byWorkflow(await store.closeEscalations('k', { prefixes: ['failed:', 'exhausted'] })), [
          escalation('exhausted'),
          escalation('failed:a'),
          escalation('failed:b'),
        ]);
        assert.equal(
          await store.openEscalation('k', 'approval:c', escalation('approval:c'), LONG_MS),
          false,
          'still open',
        );
        assert.deepEqual(await store.closeEscalations('k', { prefixes: [] }), []);
        assert.deepEqual(await store.closeEscalations('k', 'all'), [escalation('approval:c')]);
        assert.deepEqual(await store.closeEscalations('other', 'all'), [escalation('failed:d')], "another key's stays");
      });

      it('drops expired escalations closed by prefix, without returning them', async () => {
        const store = await open();
        await store.openEscalation('k', 'failed:a', escalation('failed:a'), LONG_MS);
        await store.openEscalation('k', 'failed:b', escalation('failed:b'), 3 * LONG_MS);
        now += LONG_MS;
        assert.deepEqual(await store.closeEscalations('k', { prefixes: ['failed:'] }), [escalation('failed:b')]);
        assert.deepEqual(await store.closeEscalations('k', 'all'), []);
      });

      it('counts an escalation past its ttl as not open: it opens again, and closing it returns nothing', async () => {
        const store = await open();
        await store.openEscalation('k', 'failed:argo/wf-1', escalation('wf-1'), LONG_MS);
        await store.openEscalation('k', 'failed:argo/wf-2', escalation('wf-2'), 3 * LONG_MS);
        now += LONG_MS;
        assert.equal(await store.openEscalation('k', 'failed:argo/wf-1', escalation('wf-1'), LONG_MS), true);
        now += LONG_MS;
        assert.deepEqual(await store.closeEscalations('k', ['failed:argo/wf-1']), []);
        assert.deepEqual(await store.closeEscalations('k', 'all'), [escalation('wf-2')]);
      });
    });

    describe('open escalations listing', () => {
      it("lists every key's firing escalations, newest opened first, with when each was opened and ends", async () => {
        const store = await open();
        await store.openEscalation('team/a', 'failed:argo/wf-1', escalation('wf-1'), LONG_MS);
        now = START + 1_000;
        await store.openEscalation('team/b', 'exhausted', escalation('wf-2'), 2 * LONG_MS);
        now = START + 2_000;
        await store.openEscalation('team/a', 'approval:argo/wf-3', escalation('wf-3'), LONG_MS);
        assert.deepEqual(await store.listEscalations(10), [
          {
            cooldownKey: 'team/a',
            id: 'approval:argo/wf-3',
            alert: escalation('wf-3'),
            openedAt: START + 2_000,
            expiresAt: START + 2_000 + LONG_MS,
          },
          {
            cooldownKey: 'team/b',
            id: 'exhausted',
            alert: escalation('wf-2'),
            openedAt: START + 1_000,
            expiresAt: START + 1_000 + 2 * LONG_MS,
          },
          {
            cooldownKey: 'team/a',
            id: 'failed:argo/wf-1',
            alert: escalation('wf-1'),
            openedAt: START,
            expiresAt: START + LONG_MS,
          },
        ]);
      });

      it('leaves out the escalations closed, and those past their ttl by the store clock', async () => {
        const store = await open();
        await store.openEscalation('team/a', 'failed:argo/wf-brief', escalation('wf-brief'), LONG_MS);
        await store.openEscalation('team/a', 'failed:argo/wf-kept', escalation('wf-kept'), 3 * LONG_MS);
        await store.openEscalation('team/b', 'failed:argo/wf-closed', escalation('wf-closed'), 3 * LONG_MS);
        await store.openEscalation('team/c', 'exhausted', escalation('wf-all-closed'), 3 * LONG_MS);
        await store.closeEscalations('team/b', ['failed:argo/wf-closed']);
        await store.closeEscalations('team/c', 'all');
        now = START + LONG_MS;
        assert.deepEqual(
          (await store.listEscalations(10)).map(({ cooldownKey, id }) => `${cooldownKey} ${id}`),
          ['team/a failed:argo/wf-kept'],
        );
      });

      it('lists no more than the limit asked for, the newest', async () => {
        const store = await open();
        for (let i = 0; i < 5; i++) {
          now = START + i;
          await store.openEscalation(`team/k${i}`, 'exhausted', escalation(`wf-${i}`), LONG_MS);
        }
        assert.deepEqual(
          (await store.listEscalations(2)).map((listed) => listed.cooldownKey),
          ['team/k4', 'team/k3'],
        );
        assert.equal((await store.listEscalations(100)).length, 5);
        assert.deepEqual(await store.listEscalations(0), []);
      });

      it('answers an empty list when none is firing', async () => {
        const store = await open();
        assert.deepEqual(await store.listEscalations(10), []);
      });
    });

    describe("activity (the page's chart)", () => {
      const HOUR = ACTIVITY_BUCKET_MS;
      /** The start of the hour START falls in. */
      const HOUR_START = Math.floor(START / HOUR) * HOUR;
      const matched = (index: number, extra: Partial<DecisionRecord> = {}): DecisionRecord => ({
        ...decision(index),
        ...extra,
      });
      const unmatched = (index: number): DecisionRecord => ({
        ...decision(index),
        rule: null,
        priority: null,
        outcome: 'no_match',
      });
      /** The buckets that counted anything, by hours since HOUR_START. */
      const counted = (activity: Activity) =>
        Object.fromEntries(
          activity.buckets
            .filter((bucket) => Object.keys(bucket.outcomes).length + Object.keys(bucket.rules).length > 0)
            .map(({ start, outcomes, rules }) => [(start - HOUR_START) / HOUR, { outcomes, rules }]),
        );

      it('counts each decision under its outcome, and under its rule when it has one, in the hour of the store clock', async () => {
        const store = await open();
        await store.appendDecision(matched(0), 100);
        await store.appendDecision(unmatched(1), 100);
        await store.appendDecision(matched(2, { outcome: 'cooldown', fingerprint: 'b'.repeat(16) }), 100);
        now = HOUR_START + HOUR + 5;
        await store.appendDecision(matched(3, { rule: 'db-recover' }), 100);
        const activity = await store.activity(24);
        assert.equal(activity.buckets.length, 24);
        assert.deepEqual(
          activity.buckets.map((bucket) => bucket.start),
          Array.from({ length: 24 }, (_, i) => HOUR_START + (i - 22) * HOUR),
          'oldest first, the last one the current hour',
        );
        assert.deepEqual(counted(activity), {
          0: {
            outcomes: { submitted: 1, no_match: 1, cooldown: 1 },
            rules: { crashloop: { matches: 2, states: {} } },
          },
          1: { outcomes: { submitted: 1 }, rules: { 'db-recover': { matches: 1, states: {} } } },
        });
        assert.deepEqual(activity.lastMatch, { crashloop: START, 'db-recover': HOUR_START + HOUR + 5 });
        assert.deepEqual((await store.activity(1)).buckets, [
          { start: HOUR_START + HOUR, outcomes: { submitted: 1 }, rules: { 'db-recover': { matches: 1, states: {} } } },
        ]);
      });

      it('counts every repeat a folded entry stands for, appended one by one or in one batch', async () => {
        const store = await open();
        const repeat = (index: number) =>
          matched(index, { fingerprint: 'a'.repeat(16), outcome: 'cooldown', reason: 'held' });
        for (let i = 0; i < 3; i++) await store.appendDecision(repeat(i), 100);
        await Promise.all(Array.from({ length: 5 }, (_, i) => store.appendDecision(repeat(3 + i), 100)));
        const [entry] = await store.listDecisions(10);
        assert.equal(entry && 'count' in entry ? entry.count : undefined, 8, 'one entry, folded');
        assert.deepEqual(counted(await store.activity(24)), {
          0: { outcomes: { cooldown: 8 }, rules: { crashloop: { matches: 8, states: {} } } },
        });
      });

      it('does not count the entries of remediations and escalations as decisions', async () => {
        const store = await open();
        const running = remediation('wf-1', 'running');
        await store.recordTransition(running, transitionOf(running), RETENTION);
        const fired: EscalationEntry = {
          kind: 'escalation',
          alertname: 'KubeSentinelRemediationFailed',
          status: 'firing',
          cooldownKey: running.cooldownKey,
          labels: { alertname: 'KubeSentinelRemediationFailed', rule: 'pod-crash' },
          at: new Date(START).toISOString(),
          replica: 'replica-a',
        };
        await store.appendDecision(fired, 100);
        await store.appendDecision(transitionOf(remediation('wf-2', 'failed')), 100);
        assert.deepEqual(counted(await store.activity(24)), {});
        assert.deepEqual((await store.activity(24)).lastMatch, {});
      });

      it('rolls the hours by: a decision 23 h old is in the first bucket, one 25 h old in none, its last match kept', async () => {
        const store = await open();
        await store.appendDecision(matched(0), 100);
        now = START + 23 * HOUR;
        assert.deepEqual((await store.activity(24)).buckets[0]?.outcomes, { submitted: 1 });
        now = START + 25 * HOUR;
        const activity = await store.activity(24);
        assert.deepEqual(counted(activity), {});
        assert.equal(activity.buckets.length, 24);
        assert.deepEqual(activity.lastMatch, { crashloop: START });
      });

      it("keeps each rule's latest match, never moved back by a decision stamped earlier", async () => {
        const store = await open();
        now = START + 2 * HOUR;
        await store.appendDecision(matched(0), 100);
        // A replica whose clock lags.
        now = START + HOUR;
        await store.appendDecision(matched(1), 100);
        await store.appendDecision(matched(2, { rule: 'db-recover' }), 100);
        now = START + 3 * HOUR;
        await store.appendDecision(unmatched(3), 100);
        assert.deepEqual((await store.activity(24)).lastMatch, {
          crashloop: START + 2 * HOUR,
          'db-recover': START + HOUR,
        });
      });

      it('counts each final state its rule recorded once: not a retry, a duplicate, a refused or a passing state', async () => {
        const store = await open();
        const record = (changed: Remediation, token?: string) =>
          store.recordTransition(changed, transitionOf(changed), token ? { ...RETENTION, token } : RETENTION);
        assert.equal(await record(remediation('wf-1', 'running')), true);
        const failed = remediation('wf-1', 'failed');
        assert.equal(await record(failed, 't-1'), true);
        assert.equal(await record(failed, 't-1'), true, 'the retry of the call that recorded it');
        assert.equal(await record(failed), false, 'another replica');
        assert.equal(await record(remediation('wf-1', 'succeeded')), false, 'refused: failed is final');
        now = START + HOUR;
        assert.equal(await record(remediation('wf-2', 'succeeded')), true);
        assert.equal(await record({ ...remediation('wf-3', 'cancelled'), rule: 'db-recover' }), true);
        assert.equal(await record(remediation('wf-4', 'unknown')), true);
        assert.deepEqual(counted(await store.activity(24)), {
          0: { outcomes: {}, rules: { 'pod-crash': { matches: 0, states: { failed: 1 } } } },
          1: {
            outcomes: {},
            rules: {
              'pod-crash': { matches: 0, states: { succeeded: 1, unknown: 1 } },
              'db-recover': { matches: 0, states: { cancelled: 1 } },
            },
          },
        });
      });

      it('counts a final state in the hour its remediation finished, and in the current one when it does not say', async () => {
        const store = await open();
        now = HOUR_START + 5 * HOUR + 10;
        const ended = (name: string, state: RemediationState, finishedAt?: string) => {
          const changed = { ...remediation(name, state), ...(finishedAt === undefined ? {} : { finishedAt }) };
          return store.recordTransition(changed, transitionOf(changed), RETENTION);
        };
        assert.equal(await ended('wf-3h', 'succeeded', new Date(now - 3 * HOUR).toISOString()), true);
        assert.equal(await ended('wf-23h', 'succeeded', new Date(now - 23 * HOUR).toISOString()), true);
        assert.equal(await ended('wf-unsaid', 'failed'), true);
        assert.equal(await ended('wf-unreadable', 'failed', 'yesterday'), true);
        // A replica's clock that lags the cluster's: counted now, not in an hour to come.
        assert.equal(await ended('wf-ahead', 'unknown', new Date(now + 2 * HOUR).toISOString()), true);
        const states = (counts: Partial<Record<RemediationState, number>>) => ({
          outcomes: {},
          rules: { 'pod-crash': { matches: 0, states: counts } },
        });
        assert.deepEqual(counted(await store.activity(24)), {
          [-18]: states({ succeeded: 1 }),
          2: states({ succeeded: 1 }),
          5: states({ failed: 2, unknown: 1 }),
        });
      });

      it('does not count a final state recorded long after it finished: a watcher listing old Workflows again', async () => {
        const store = await open();
        now = START + 10 * 24 * HOUR;
        const finished = { ...remediation('wf-1', 'succeeded'), finishedAt: new Date(START).toISOString() };
        assert.equal(await store.recordTransition(finished, transitionOf(finished), RETENTION), true, 'recorded');
        const past = { ...remediation('wf-2', 'failed'), finishedAt: new Date(now - 25 * HOUR).toISOString() };
        assert.equal(await store.recordTransition(past, transitionOf(past), RETENTION), true, 'recorded');
        assert.deepEqual(counted(await store.activity(24)), {});
        now = START + 10 * 24 * HOUR - HOUR;
        assert.deepEqual(counted(await store.activity(24)), {}, 'nor by a replica whose clock lags an hour');
      });

      it("counts the decisions and final states of rules named as Object's properties, and their latest match", async () => {
        const store = await open();
        // `constructor` is a valid rule name (a DNS label); the store takes any name, so the others
        // too. A count kept in a plain object would find Object.prototype's.
        const names = ['constructor', '__proto__', 'toString', 'hasOwnProperty'];
        for (const [i, rule] of names.entries()) {
          await store.appendDecision(matched(2 * i, { rule }), 100);
          await store.appendDecision(matched(2 * i + 1, { rule, outcome: 'cooldown' }), 100);
          const failed = { ...remediation(`wf-${i}`, 'failed'), rule };
          assert.equal(await store.recordTransition(failed, transitionOf(failed), RETENTION), true, rule);
        }
        const succeeded = { ...remediation('wf-next', 'succeeded'), rule: 'constructor' };
        assert.equal(await store.recordTransition(succeeded, transitionOf(succeeded), RETENTION), true);
        const activity = await store.activity(24);
        // JSON.parse makes `__proto__` a key of the object's own, as an object literal would not.
        const rules = JSON.parse(`{
          "constructor": { "matches": 2, "states": { "failed": 1, "succeeded": 1 } },
          "__proto__": { "matches": 2, "states": { "failed": 1 } },
          "toString": { "matches": 2, "states": { "failed": 1 } },
          "hasOwnProperty": { "matches": 2, "states": { "failed": 1 } }
        }`);
        assert.deepEqual(counted(activity), { 0: { outcomes: { submitted: 4, cooldown: 4 }, rules } });
        assert.deepEqual(
          activity.lastMatch,
          JSON.parse(
            `{ "constructor": ${START}, "__proto__": ${START}, "toString": ${START}, "hasOwnProperty": ${START} }`,
          ),
        );
      });
    });

    describe('cooldowns held, and ended by hand', () => {
      it('lists pending and committed keys with their claims and expiry, and nothing else the store holds', async () => {
        const store = await open();
        await store.claim('team/pending', pendingClaim('wf-1'), LONG_MS);
        await store.claim('team/committed', pendingClaim('wf-2'), LONG_MS);
        assert.equal(await store.commit('team/committed', 'wf-2', 2 * LONG_MS), true);
        await store.endCooldown('team/ended', LONG_MS);
        await store.appendDecision(decision(1), 100);
        await store.addAttempt('team/pending', { workflow: 'argo/wf-1', at: START }, LONG_MS);
        await store.openEscalation('team/pending', 'failed:argo/wf-1', escalation('wf-1'), LONG_MS);
        await store.takeRateSlot(10, WINDOW_MS);
        const running = remediation('wf-1', 'running');
        await store.recordTransition(running, transitionOf(running), RETENTION);

        const listed = byKey(await store.listCooldowns(100));
        assert.deepEqual(
          listed.map(({ key, claim }) => ({ key, claim })),
          [
            { key: 'team/committed', claim: { ...pendingClaim('wf-2'), state: 'committed' } },
            { key: 'team/pending', claim: pendingClaim('wf-1') },
          ],
        );
        // Redis counts the TTL down in real time from the write; the store adds it to its clock.
        const slack = ttlClock === 'real' ? 5_000 : 0;
        for (const [held, ttl] of [
          [listed[0], 2 * LONG_MS],
          [listed[1], LONG_MS],
        ] as const) {
          assert.ok(held, 'listed');
          assert.ok(
            held.expiresAt <= START + ttl && held.expiresAt >= START + ttl - slack,
            `${held.key} expires at START + ${held.expiresAt - START} ms, its TTL was ${ttl} ms`,
          );
        }
      });

      it('lists no more than the limit asked for', async () => {
        const store = await open();
        const keys = Array.from({ length: 7 }, (_, i) => `team/k${i}`);
        for (const key of keys) await store.claim(key, pendingClaim(`wf-${key}`), LONG_MS);
        const listed = await store.listCooldowns(3);
        assert.equal(listed.length, 3);
        assert.equal(new Set(listed.map((held) => held.key)).size, 3, 'three different keys');
        for (const held of listed) assert.ok(keys.includes(held.key), held.key);
        assert.equal((await store.listCooldowns(100)).length, 7);
        assert.deepEqual(await store.listCooldowns(0), []);
      });

      it('leaves out a key once it has expired', async () => {
        const store = await open();
        await store.claim('team/brief', pendingClaim('wf-1'), SHORT_MS);
        await store.claim('team/kept', pendingClaim('wf-2'), LONG_MS);
        await until(
          async () => !(await store.listCooldowns(10)).some((held) => held.key === 'team/brief'),
          'the brief key is no longer listed',
        );
        assert.deepEqual(
          (await store.listCooldowns(10)).map((held) => held.key),
          ['team/kept'],
        );
      });

      it("ends a committed cooldown: answers its claim, frees the key and notes when, by the store's clock", async () => {
        const store = await open();
        await store.claim('team/k', pendingClaim('wf-1'), LONG_MS);
        await store.commit('team/k', 'wf-1', LONG_MS);
        now = START + 5_000;
        assert.deepEqual(await store.endCooldown('team/k', LONG_MS), { ...pendingClaim('wf-1'), state: 'committed' });
        assert.equal(await store.peek('team/k'), null);
        assert.deepEqual(await store.listCooldowns(10), []);
        assert.equal(await store.cooldownEndedAt('team/k'), START + 5_000);
        assert.equal((await store.claim('team/k', pendingClaim('wf-2'), LONG_MS)).acquired, true, 'the key is free');
      });

      it('ends a pending claim too, whatever Workflow holds it', async () => {
        const store = await open();
        await store.claim('team/k', pendingClaim('wf-1'), LONG_MS);
        assert.deepEqual(await store.endCooldown('team/k', LONG_MS), pendingClaim('wf-1'));
        assert.equal(await store.peek('team/k'), null);
      });

      it('answers null for a key that holds nothing, and notes the end all the same', async () => {
        const store = await open();
        await store.claim('team/k', pendingClaim('wf-1'), LONG_MS);
        assert.ok(await store.endCooldown('team/k', LONG_MS));
        now = START + 7_000;
        assert.equal(await store.endCooldown('team/k', LONG_MS), null, 'a second end finds nothing');
        assert.equal(await store.cooldownEndedAt('team/k'), START + 7_000, 'the note has the latest end');
        assert.equal(await store.endCooldown('team/never', LONG_MS), null);
        assert.equal(await store.cooldownEndedAt('team/never'), START + 7_000);
        assert.equal(await store.cooldownEndedAt('team/other'), null, 'a key never ended has no note');
      });

      it('forgets the note after endedMarkerMs', async () => {
        const store = await open();
        await store.endCooldown('team/brief', SHORT_MS);
        await store.endCooldown('team/kept', LONG_MS);
        await until(async () => (await store.cooldownEndedAt('team/brief')) === null, 'the note is forgotten');
        assert.equal(await store.cooldownEndedAt('team/kept'), START);
      });

      it('tells every listener the key it ended, once the end has answered', async () => {
        const store = await open();
        const [first, second] = [new Heard(), new Heard()];
        await listen(store, first, second);
        const ending = store.endCooldown('team/k', LONG_MS);
        assert.deepEqual(first.keys, [], 'not from within the call');
        await ending;
        await first.heardAtLeast(1, 'team/k');
        await second.heardAtLeast(1, 'team/k');
        assert.deepEqual([first.keys, second.keys], [['team/k'], ['team/k']]);
      });

      it('stops telling a listener once it stops listening', async () => {
        const store = await open();
        const [stopped, kept] = [new Heard(), new Heard()];
        const [stop] = await listen(store, stopped, kept);
        assert.ok(stop);
        await store.endCooldown('team/a', LONG_MS);
        await stopped.heardAtLeast(1, 'team/a');
        stop();
        stop();
        await store.endCooldown('team/b', LONG_MS);
        // Both hear each message at once: once the kept one has heard team/b, the stopped one would have too.
        await kept.heardAtLeast(2, 'team/b');
        assert.deepEqual([stopped.keys, kept.keys], [['team/a'], ['team/a', 'team/b']]);
      });

      it('keeps telling the other listeners when one throws', async () => {
        const store = await open();
        const [failing, kept] = [new Heard(true), new Heard()];
        await listen(store, failing, kept);
        await store.endCooldown('team/a', LONG_MS);
        await store.endCooldown('team/b', LONG_MS);
        await kept.heardAtLeast(2, 'team/a and team/b');
        // On a cluster each end is published by its own key's master: they may arrive in any order.
        assert.deepEqual(
          [failing.keys, kept.keys].map((keys) => [...keys].sort()),
          [
            ['team/a', 'team/b'],
            ['team/a', 'team/b'],
          ],
        );
      });
    });

    describe('pauses', () => {
      it('keeps each pause until it expires by the store clock, and lists only those in force', async () => {
        const store = await open();
        const brief = pauseOf('p-brief', SHORT_MS);
        const kept = pauseOf('p-kept', LONG_MS, { rule: 'pod-crash', workload: 'checkout', cluster: 'eu-1' });
        await store.addPause(brief);
        await store.addPause(kept);
        assert.deepEqual(byId(await store.listPauses()), [brief, kept]);
        now = START + SHORT_MS;
        assert.deepEqual(await store.listPauses(), [kept], 'a pause is over at its expiresAt');
        await store.addPause(pauseOf('p-over', SHORT_MS));
        assert.deepEqual(await store.listPauses(), [kept], 'one added already over is not listed');
      });

      it('replaces a pause added again under its id', async () => {
        const store = await open();
        await store.addPause(pauseOf('p-1', LONG_MS));
        const longer = { ...pauseOf('p-1', 2 * LONG_MS), reason: 'a longer deploy' };
        await store.addPause(longer);
        assert.deepEqual(await store.listPauses(), [longer]);
      });

      it('removes a pause and answers it; null for an id it does not hold, removed already, or over', async () => {
        const store = await open();
        const [gone, brief, kept] = [pauseOf('p-1', LONG_MS), pauseOf('p-2', SHORT_MS), pauseOf('p-3', LONG_MS)];
        for (const pause of [gone, brief, kept]) await store.addPause(pause);
        assert.deepEqual(await store.removePause('p-1'), gone);
        assert.equal(await store.removePause('p-1'), null);
        assert.equal(await store.removePause('p-unknown'), null);
        now = START + SHORT_MS;
        assert.equal(await store.removePause('p-2'), null);
        assert.deepEqual(await store.listPauses(), [kept]);
      });

      it('refuses a pause whose expiresAt is not a date-time, naming it, and stores nothing', async () => {
        const store = await open();
        await assert.rejects(store.addPause({ ...pauseOf('p-1', LONG_MS), expiresAt: 'soon' }), /pause p-1: expiresAt/);
        assert.deepEqual(await store.listPauses(), []);
      });

      it('writes back only the pauses it knows nothing of: neither in force, nor removed, nor over', async () => {
        const store = await open();
        const [held, removed, lost] = [
          pauseOf('p-held', LONG_MS),
          pauseOf('p-removed', LONG_MS),
          pauseOf('p-lost', LONG_MS),
        ];
        await store.addPause(held);
        await store.addPause(removed);
        await store.removePause('p-removed');
        const changed = { ...held, reason: 'from a stale copy' };
        const over = pauseOf('p-over', SHORT_MS);
        now = START + SHORT_MS;
        assert.deepEqual(await store.restorePauses([changed, removed, lost, over]), {
          written: ['p-lost'],
          held: ['p-held'],
        });
        assert.deepEqual(byId(await store.listPauses()), [held, lost], 'the one held is left as it was');
        assert.deepEqual(await store.restorePauses([]), { written: [], held: [] });
        now = START + LONG_MS;
        assert.deepEqual(
          await store.restorePauses([removed]),
          { written: [], held: [] },
          'over by now, removal forgotten or not',
        );
      });

      it('tells every listener the id of each pause added or removed, once the call has answered', async () => {
        const store = await open();
        const [first, second] = [new Heard(), new Heard()];
        await listenToPauses(store, first, second);
        const adding = store.addPause(pauseOf('p-1', LONG_MS));
        assert.deepEqual(first.keys, [], 'not from within the call');
        await adding;
        await store.removePause('p-1');
        await store.removePause('p-1');
        await first.heardAtLeast(2, 'p-1 added and removed');
        await second.heardAtLeast(2, 'p-1 added and removed');
        // A remove that found nothing tells nothing: one more change shows that nothing came between.
        await store.addPause(pauseOf('p-2', LONG_MS));
        await first.heardAtLeast(3, 'p-2 added');
        assert.deepEqual(first.keys, ['p-1', 'p-1', 'p-2']);
        assert.deepEqual(second.keys.slice(0, 2), ['p-1', 'p-1']);
      });
    });

    describe('backend health', () => {
      it('answers ping while the backend is up', async () => {
        const store = await open();
        await store.ping();
        assert.equal(await store.peek('k'), null);
      });

      it('rejects with StoreUnavailableError once closed, however often close is called', async () => {
        const store = await open();
        await Promise.all([store.close(), store.close()]);
        await store.close();
        await assert.rejects(store.ping(), StoreUnavailableError);
        await assert.rejects(store.claim('k', pendingClaim('wf-1'), LONG_MS), StoreUnavailableError);
        await assert.rejects(store.commit('k', 'wf-1', LONG_MS), StoreClosedError, 'retrying cannot help');
        const running = remediation('wf-1', 'running');
        const refused: [string, Promise<unknown>][] = [
          ['replace', store.replace('k', 'wf-1', pendingClaim('wf-1'), LONG_MS)],
          ['recordTransition', store.recordTransition(running, transitionOf(running), RETENTION)],
          ['listRemediations', store.listRemediations(10)],
          ['getRemediation', store.getRemediation('argo/wf-1')],
          ['addAttempt', store.addAttempt('k', { workflow: 'argo/wf-1', at: START }, LONG_MS)],
          ['listAttempts', store.listAttempts('k', LONG_MS)],
          ['openEscalation', store.openEscalation('k', 'id', escalation('wf-1'), LONG_MS)],
          ['closeEscalations', store.closeEscalations('k', 'all')],
          ['listEscalations', store.listEscalations(10)],
          ['activity', store.activity(24)],
          ['listCooldowns', store.listCooldowns(10)],
          ['endCooldown', store.endCooldown('k', LONG_MS)],
          ['cooldownEndedAt', store.cooldownEndedAt('k')],
          ['addPause', store.addPause(pauseOf('p-1', LONG_MS))],
          ['listPauses', store.listPauses()],
          ['removePause', store.removePause('p-1')],
        ];
        for (const [call, answer] of refused) await assert.rejects(answer, StoreClosedError, call);
      });
    });
  });
}
