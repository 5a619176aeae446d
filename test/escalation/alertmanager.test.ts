/**
 * Escalations posted to real prometheus-alertmanager processes, read back through Alertmanager's
 * own API: what the team's routes, silences and inhibitions will see.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Counter, Registry } from 'prom-client';
import type { AuditEntry } from '../../src/decision.js';
import { createEscalator, type Escalator, type EscalatorOptions } from '../../src/escalation/escalator.js';
import type { EscalationAlert, EscalationEntry } from '../../src/remediation/model.js';
import { MemoryCooldownStore } from '../../src/stores/memory.js';
import { type Alertmanager, startAlertmanager } from '../support/alertmanager.js';
import { eventually, freePort } from '../support/processes.js';

interface GettableAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  generatorURL?: string;
  status: { state: string };
}

/** The alerts Alertmanager holds for this rule label (resolved ones are not listed). */
async function alertsOf(am: Alertmanager, rule: string): Promise<GettableAlert[]> {
  const filter = encodeURIComponent(`rule="${rule}"`);
  const response = await fetch(`${am.url}/api/v2/alerts?active=true&filter=${filter}`);
  assert.equal(response.status, 200);
  return (await response.json()) as GettableAlert[];
}

function alertFor(rule: string): EscalationAlert {
  return {
    labels: {
      alertname: 'KubeSentinelRemediationFailed',
      rule,
      priority: 'P2',
      severity: 'critical',
      namespace: 'shop',
      pod: 'checkout-7d9f8b6c5-x2x9k',
      workflow: 'kube-sentinel-crashloop-abc12',
      workflow_namespace: 'argo',
      source_alertname: 'KubePodCrashLooping',
    },
    annotations: {
      summary: 'Remediation argo/kube-sentinel-crashloop-abc12 of shop/checkout failed',
      description: 'It failed: child "restart" failed.',
      workflow_url: 'https://argo.example.com/workflows/argo/kube-sentinel-crashloop-abc12',
    },
  };
}

const TTL = 600_000;

describe('escalations in a real Alertmanager', () => {
  const started: Alertmanager[] = [];
  const escalators: Escalator[] = [];
  let webhookUrl: string;
  let first: Alertmanager;
  let second: Alertmanager;

  const start = async (port?: number) => {
    const am = await startAlertmanager({ webhookUrl, ...(port ? { port } : {}) });
    started.push(am);
    return am;
  };

  function escalatorFor(urls: string[], overrides: Partial<EscalatorOptions> = {}) {
    const registry = new Registry();
    const metric = new Counter({
      name: 'kube_sentinel_escalations_total',
      help: 'test',
      labelNames: ['alertname', 'result'] as const,
      registers: [registry],
    });
    const errors: Record<string, unknown>[] = [];
    const store = new MemoryCooldownStore();
    const escalator = createEscalator({
      urls,
      ttlMs: TTL,
      logger: { info: () => {}, warn: () => {}, error: (obj) => errors.push(obj as Record<string, unknown>) },
      metric,
      store,
      replica: 'replica-a',
      auditMaxLen: 100,
      backoff: { firstMs: 20, maxMs: 200 },
      ...overrides,
    });
    escalators.push(escalator);
    return {
      escalator,
      errors,
      counts: async () =>
        Object.fromEntries((await metric.get()).values.map((v) => [String(v.labels.result), v.value])),
      audit: async () =>
        ((await store.listDecisions(100)) as AuditEntry[]).filter(
          (entry): entry is EscalationEntry => 'kind' in entry && entry.kind === 'escalation',
        ),
    };
  }

  before(async () => {
    // Nothing listens there: Alertmanager's notifications go nowhere, as these tests read its API.
    webhookUrl = `http://127.0.0.1:${await freePort()}/`;
    [first, second] = await Promise.all([start(), start()]);
  });

  after(async () => {
    await Promise.all(escalators.map((e) => e.close()));
    await Promise.all(started.map((am) => am.stop()));
  });

  it('lists a fired escalation as active, with its labels and annotations', async () => {
    const h = escalatorFor([first.url]);
    const alert = alertFor('fire-listed');
    const before = Date.now();
    assert.equal(await h.escalator.fire(alert, { cooldownKey: 'fire-listed/shop/checkout' }).result, 'sent');
    const [listed, ...more] = await alertsOf(first, 'fire-listed');
    assert.equal(more.length, 0);
    assert.equal(listed?.status.state, 'active');
    assert.deepEqual(listed.labels, alert.labels);
    assert.deepEqual(listed.annotations, alert.annotations);
    assert.equal(listed.generatorURL, alert.annotations.workflow_url);
    const endsIn = Date.parse(listed.endsAt) - before;
    assert.ok(endsIn >= TTL && endsIn < TTL + 60_000, `endsAt ${listed.endsAt}`);
  });

  it('no longer lists an escalation once it is resolved', async () => {
    const h = escalatorFor([first.url]);
    const alert = alertFor('resolve-ends');
    const context = { cooldownKey: 'resolve-ends/shop/checkout', workflow: 'argo/kube-sentinel-crashloop-abc12' };
    assert.equal(await h.escalator.fire(alert, context).result, 'sent');
    assert.equal((await alertsOf(first, 'resolve-ends')).length, 1);
    assert.equal(await h.escalator.resolve(alert, context).result, 'sent');
    assert.deepEqual(await alertsOf(first, 'resolve-ends'), []);
    assert.deepEqual(await h.counts(), { sent: 2 });
    assert.deepEqual(
      (await h.audit()).map((entry) => [entry.status, entry.cooldownKey, entry.workflow]),
      [
        ['resolved', context.cooldownKey, context.workflow],
        ['firing', context.cooldownKey, context.workflow],
      ],
    );
  });

  it('sends to every Alertmanager of the set', async () => {
    const h = escalatorFor([first.url, second.url]);
    const alert = alertFor('both-receive');
    assert.equal(await h.escalator.fire(alert, { cooldownKey: 'both-receive/shop/checkout' }).result, 'sent');
    assert.equal((await alertsOf(first, 'both-receive')).length, 1);
    assert.equal((await alertsOf(second, 'both-receive')).length, 1);
    assert.deepEqual(await h.counts(), { sent: 1 });
  });

  it('reaches an Alertmanager that is down at first once it is up, within the ttl', async () => {
    const port = await freePort();
    let tries = 0;
    const h = escalatorFor([`http://127.0.0.1:${port}`], {
      fetch: (input, init) => {
        tries += 1;
        return fetch(input, init);
      },
    });
    const alert = alertFor('down-at-first');
    const send = h.escalator.fire(alert, { cooldownKey: 'down-at-first/shop/checkout' });
    await eventually(() => (tries >= 2 ? true : undefined), 'two refused tries');
    const late = await start(port);
    assert.equal(await send.result, 'sent');
    assert.equal((await alertsOf(late, 'down-at-first')).length, 1);
    assert.deepEqual(await h.counts(), { sent: 1 });
  });

  it('does not retry what Alertmanager refuses as invalid, and logs its answer', async () => {
    let tries = 0;
    const h = escalatorFor([first.url], {
      fetch: (input, init) => {
        tries += 1;
        return fetch(input, init);
      },
    });
    const alert = alertFor('refused');
    const invalid: EscalationAlert = { ...alert, labels: { ...alert.labels, 'not-a-label-name': 'x' } };
    assert.equal(await h.escalator.fire(invalid, { cooldownKey: 'refused/shop/checkout' }).result, 'failed');
    assert.equal(tries, 1);
    assert.equal(h.errors[0]?.status, 400);
    assert.match(String(h.errors[0]?.answer), /^invalid label set: invalid name "not-a-label-name"/);
    assert.deepEqual(await h.counts(), { failed: 1 });
    assert.equal((await h.audit()).length, 1);
  });
});
