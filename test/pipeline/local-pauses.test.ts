import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Pause } from '../../src/pause.js';
import { LocalPauses, PAUSES_REFRESH_MS } from '../../src/pipeline/local-pauses.js';
import { type RestoredPauses, StoreUnavailableError } from '../../src/stores/cooldown-store.js';

const START = Date.parse('2026-11-26T12:00:00Z');

function pause(id: string): Pause {
  return {
    id,
    namespace: 'shop',
    reason: 'deploy',
    createdBy: 'alice',
    createdAt: new Date(START).toISOString(),
    expiresAt: new Date(START + 3600_000).toISOString(),
  };
}

/**
 * The two store calls the copy makes, answered by hand: each listPauses waits until the test
 * answers it (with what the store holds then, or a failure), and the test says when a change is
 * published.
 */
class ScriptedStore {
  private pauses: Pause[] = [];
  /** Every id the store has held, removed ones too, until it loses everything (lose()). */
  private readonly known = new Set<string>();
  readonly restored: string[] = [];
  readonly asked: { answer(): void; fail(): void }[] = [];

  get held(): Pause[] {
    return this.pauses;
  }

  set held(pauses: Pause[]) {
    this.pauses = pauses;
    for (const pause of pauses) this.known.add(pause.id);
  }

  /** Restarted empty: no pause, nor any memory of one. */
  lose(): void {
    this.pauses = [];
    this.known.clear();
  }

  async restorePauses(pauses: readonly Pause[]): Promise<RestoredPauses> {
    const unknown = pauses.filter((pause) => !this.known.has(pause.id));
    const inForce = new Set(this.pauses.map((pause) => pause.id));
    this.held = [...this.pauses, ...unknown];
    this.restored.push(...unknown.map((pause) => pause.id));
    return {
      written: unknown.map((pause) => pause.id),
      held: pauses.filter((pause) => inForce.has(pause.id)).map((pause) => pause.id),
    };
  }
  private listener: ((id: string | null) => void) | undefined;

  listPauses(): Promise<Pause[]> {
    return new Promise((resolve, reject) => {
      this.asked.push({
        answer: () => resolve([...this.held]),
        fail: () => reject(new StoreUnavailableError('cooldown store (redis) listPauses failed: connection refused')),
      });
    });
  }

  onPausesChanged(listener: (id: string | null) => void): () => void {
    this.listener = listener;
    return () => {
      this.listener = undefined;
    };
  }

  publish(id: string | null): void {
    this.listener?.(id);
  }

  /** Answers the load asked for `index`-th (0: the first), after letting the copy take it in. */
  async answer(index: number): Promise<void> {
    this.asked[index]?.answer();
    await settled();
  }
}

const settled = () => new Promise<void>((resolve) => setImmediate(resolve));

function copyOf(store: ScriptedStore) {
  let tick: (() => void) | undefined;
  let every: number | undefined;
  const warnings: string[] = [];
  const copy = new LocalPauses({
    store,
    now: () => START,
    logger: { warn: (_obj, msg) => warnings.push(msg ?? '') },
    every: (ms, run) => {
      every = ms;
      tick = run;
      return () => {
        tick = undefined;
      };
    },
  });
  return { copy, tick: () => tick?.(), every: () => every, warnings };
}

const ids = (copy: LocalPauses) => copy.current?.map((p) => p.id);

describe('LocalPauses, the copy of the pauses each replica decides with', () => {
  it('loads at start, and again on every change published, on null, and on every tick of the backstop', async () => {
    const store = new ScriptedStore();
    const { copy, tick, every } = copyOf(store);
    copy.start();
    assert.equal(every(), PAUSES_REFRESH_MS);
    assert.equal(copy.current, undefined, 'nothing before the first load answers');
    store.held = [pause('p-1')];
    await store.answer(0);
    assert.deepEqual(ids(copy), ['p-1']);
    store.held = [pause('p-1'), pause('p-2')];
    store.publish('p-2');
    await store.answer(1);
    assert.deepEqual(ids(copy), ['p-1', 'p-2']);
    store.held = [pause('p-2')];
    store.publish(null);
    await store.answer(2);
    assert.deepEqual(ids(copy), ['p-2']);
    store.held = [];
    tick();
    await store.answer(3);
    assert.deepEqual(ids(copy), []);
    copy.stop();
    store.publish('p-3');
    tick();
    assert.equal(store.asked.length, 4, 'nothing is loaded once stopped');
  });

  it('writes back a pause in force that the store lost (a Redis restarted empty), never one removed', async () => {
    const store = new ScriptedStore();
    const { copy, warnings } = copyOf(store);
    copy.start();
    store.held = [pause('p-1'), pause('p-2'), pause('p-3')];
    await store.answer(0);
    store.held = [pause('p-1'), pause('p-2')];
    store.publish('p-3');
    await store.answer(1);
    assert.deepEqual(ids(copy), ['p-1', 'p-2'], 'p-3 was removed');
    assert.deepEqual(store.restored, [], 'a removal is not a loss');
    store.lose();
    store.publish(null);
    await store.answer(2);
    await settled();
    assert.deepEqual(store.restored, ['p-1', 'p-2']);
    assert.deepEqual(
      store.held.map((p) => p.id),
      ['p-1', 'p-2'],
      'in the store again',
    );
    assert.deepEqual(ids(copy), ['p-1', 'p-2'], 'still in force here');
    assert.match(warnings.join('\n'), /lost pauses still in force/);
  });

  it('keeps a lost pause that another replica wrote back between its listing and its own write', async () => {
    const store = new ScriptedStore();
    const { copy, warnings } = copyOf(store);
    copy.start();
    store.held = [pause('p-1')];
    await store.answer(0);
    store.lose();
    store.publish(null);
    store.asked[1]?.answer();
    // The listing (empty) has answered; before the copy writes back, another replica does.
    store.held = [pause('p-1')];
    await settled();
    await settled();
    assert.deepEqual(store.restored, [], 'nothing written by this one');
    assert.deepEqual(ids(copy), ['p-1'], 'and the pause still in force here');
    assert.deepEqual(warnings, []);
  });

  it('never goes back in time: a load that answers after a later one, or after a change made here, is dropped', async () => {
    const store = new ScriptedStore();
    const { copy } = copyOf(store);
    copy.start();
    await store.answer(0);
    store.publish('p-1');
    store.held = [pause('p-1')];
    store.publish('p-1');
    await store.answer(2);
    assert.deepEqual(ids(copy), ['p-1']);
    store.held = [];
    await store.answer(1);
    assert.deepEqual(ids(copy), ['p-1'], 'the earlier load, answered last, is dropped');
    store.publish('p-2');
    copy.added(pause('p-2'));
    await store.answer(3);
    assert.deepEqual(ids(copy), ['p-1', 'p-2'], 'a load begun before a pause was added here does not drop it');
    copy.removed('p-1');
    assert.deepEqual(ids(copy), ['p-2']);
  });

  it('tells its listeners of every change of the copy', async () => {
    const store = new ScriptedStore();
    const { copy } = copyOf(store);
    let changes = 0;
    const stop = copy.onChanged(() => changes++);
    copy.start();
    await store.answer(0);
    copy.added(pause('p-1'));
    assert.equal(changes, 2);
    stop();
    copy.removed('p-1');
    assert.equal(changes, 2);
  });

  it('makes one load for all the decisions waiting while the copy was never loaded, and rejects them all when it fails', async () => {
    const store = new ScriptedStore();
    const { copy } = copyOf(store);
    const waiting = [copy.load(), copy.load(), copy.load()];
    assert.equal(store.asked.length, 1);
    store.asked[0]?.fail();
    for (const one of waiting) await assert.rejects(one, StoreUnavailableError);
    const next = copy.load();
    store.held = [pause('p-1')];
    await store.answer(1);
    assert.deepEqual(
      (await next).map((p) => p.id),
      ['p-1'],
    );
    assert.equal(store.asked.length, 2);
  });

  it('keeps the copy it has when a reload fails, and logs it once per interval', async () => {
    const store = new ScriptedStore();
    const { copy, tick, warnings } = copyOf(store);
    store.held = [pause('p-1')];
    copy.start();
    await store.answer(0);
    tick();
    tick();
    store.asked[1]?.fail();
    store.asked[2]?.fail();
    await settled();
    assert.deepEqual(ids(copy), ['p-1']);
    assert.deepEqual(warnings, ['could not reload the pauses; deciding with the copy loaded before']);
  });
});
