import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Remediation, RemediationEntry } from '../../src/remediation/model.js';
import { MemoryCooldownStore } from '../../src/stores/memory.js';

const START = 1_700_000_000_000;
const OPTIONS = { retentionMs: 60_000, auditMaxLen: 100 };

function remediation(name: string, submittedOffsetMs: number): Remediation {
  return {
    workflow: `argo/${name}`,
    rule: 'pod-crash',
    cooldownKey: 'pod-crash:shop/checkout',
    target: 'shop/checkout-7d9f',
    state: 'running',
    submittedAt: new Date(START + submittedOffsetMs).toISOString(),
  };
}

function entryOf(changed: Remediation): RemediationEntry {
  const { workflow, rule, cooldownKey, target, state } = changed;
  return { kind: 'remediation', workflow, rule, cooldownKey, target, state, at: changed.submittedAt, replica: 'r' };
}

describe('MemoryCooldownStore on its own', () => {
  it('keeps at most maxRemediations, dropping the oldest submitted, whatever order they came in', async () => {
    const store = new MemoryCooldownStore({ now: () => START, maxRemediations: 3 });
    for (const [name, offset] of [
      ['wf-2', 2],
      ['wf-1', 1],
      ['wf-3', 3],
      ['wf-4', 4],
    ] as const) {
      const changed = remediation(name, offset);
      assert.equal(await store.recordTransition(changed, entryOf(changed), OPTIONS), true);
    }
    assert.deepEqual(
      (await store.listRemediations(10)).map((listed) => listed.workflow),
      ['argo/wf-4', 'argo/wf-3', 'argo/wf-2'],
    );
    assert.equal(await store.getRemediation('argo/wf-1'), null);
  });

  it('hands out copies: changing what it returned or was given changes nothing stored', async () => {
    const store = new MemoryCooldownStore({ now: () => START });
    const changed = remediation('wf-1', 0);
    await store.recordTransition(changed, entryOf(changed), OPTIONS);
    changed.state = 'failed';
    const listed = await store.listRemediations(1);
    (listed[0] as Remediation).message = 'edited';
    assert.deepEqual(await store.getRemediation('argo/wf-1'), remediation('wf-1', 0));
  });

  it('refuses a state change whose audit entry it cannot store before recording anything, so a retry records it', async () => {
    const store = new MemoryCooldownStore({ now: () => START });
    const changed: Remediation = { ...remediation('wf-1', 0), state: 'failed' };
    // Redis cannot take it either: the entry is sent as JSON, which a BigInt has none of.
    const unstorable = { ...entryOf(changed), message: 1n } as unknown as RemediationEntry;
    await assert.rejects(store.recordTransition(changed, unstorable, OPTIONS), TypeError);
    assert.equal(await store.getRemediation('argo/wf-1'), null);
    assert.equal(await store.recordTransition(changed, entryOf(changed), OPTIONS), true, 'the retry records it');
    assert.equal((await store.listDecisions(10)).length, 1);
  });

  it('logs a listener of ended cooldowns that throws, with the key it was told', async () => {
    const logged: Record<string, unknown>[] = [];
    const logger = { warn: () => {}, error: (obj: object) => logged.push(obj as Record<string, unknown>) };
    const store = new MemoryCooldownStore({ now: () => START, logger });
    store.onCooldownEnded(() => {
      throw new Error('a listener that fails');
    });
    await store.endCooldown('team/k', 60_000);
    await new Promise<void>((resolve) => queueMicrotask(resolve));
    assert.equal(logged.length, 1);
    assert.equal(logged[0]?.key, 'team/k');
    assert.ok(logged[0]?.err instanceof Error);
  });
});
