/**
 * The bound on the alerts in flight (--max-alerts-in-flight): the ticket arithmetic on its own,
 * then the ingest routes with a submitter that holds its creates until the test lets them go.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { CREATED, type SubmitResult } from '../../src/kube/result.js';
import type { Workflow } from '../../src/kube/workflow.js';
import {
  Admission,
  BYTES_PER_ALERT,
  OVERLOADED_RETRY_AFTER_SECONDS,
  weightBeforeParsing,
  weightOf,
} from '../../src/routes/admission.js';
import { firing, testApp, webhook } from '../support/app.js';

describe('Admission', () => {
  it('takes weight up to the bound, refuses past it, and gives it back on release', () => {
    const admission = new Admission(100);
    const first = admission.take(60);
    assert.ok(first);
    assert.equal(admission.take(41), undefined, '60 + 41 > 100');
    const second = admission.take(40);
    assert.ok(second);
    assert.equal(admission.inFlight, 100);
    first.release();
    first.release(); // a second release gives back nothing more
    assert.equal(admission.inFlight, 40);
    second.release();
    assert.equal(admission.inFlight, 0);
  });

  it('takes a request heavier than the whole bound when nothing else is in flight, and only then', () => {
    const admission = new Admission(100);
    const small = admission.take(1);
    assert.ok(small);
    assert.equal(admission.take(5000), undefined);
    small.release();
    const big = admission.take(5000);
    assert.ok(big);
    assert.equal(big.weight, 100, 'counted as the whole bound');
    assert.equal(admission.take(1), undefined);
  });

  it('reweighs a ticket once the alerts are counted: less gives back, more must fit', () => {
    const admission = new Admission(100);
    const ticket = admission.take(80);
    const other = admission.take(10);
    assert.ok(ticket && other);
    assert.equal(ticket.reweigh(20), true);
    assert.equal(admission.inFlight, 30);
    assert.equal(ticket.reweigh(91), false, '10 others + 91 > 100');
    assert.equal(admission.inFlight, 30, 'a refused reweigh changes nothing');
    assert.equal(ticket.reweigh(90), true);
    assert.equal(admission.inFlight, 100);
  });

  it('keeps the weight of a request whose sender hung up until its decision has finished', () => {
    const admission = new Admission(100);
    const ticket = admission.take(50);
    assert.ok(ticket);
    ticket.hold(); // the decision starts
    ticket.release(); // the connection closes
    assert.equal(admission.inFlight, 50);
    ticket.release(); // the decision ends
    assert.equal(admission.inFlight, 0);
  });

  it('weighs a request by its alerts or by its size, whichever is more', () => {
    assert.equal(weightBeforeParsing(String(10 * BYTES_PER_ALERT), 1 << 20), 10);
    assert.equal(weightBeforeParsing(undefined, 1 << 20), (1 << 20) / BYTES_PER_ALERT, 'no length: the body limit');
    assert.equal(weightBeforeParsing('nonsense', 4096), 4096 / BYTES_PER_ALERT);
    assert.equal(weightBeforeParsing(String(1e12), 4096), 4096 / BYTES_PER_ALERT, 'never past the body limit');
    assert.equal(weightOf(3, String(10 * BYTES_PER_ALERT), 1 << 20), 10);
    assert.equal(weightOf(500, String(10 * BYTES_PER_ALERT), 1 << 20), 500);
  });
});

/** A submitter whose creates wait until `open()`; `started` resolves at the first create. */
function gatedSubmitter() {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  let firstCreate!: () => void;
  const started = new Promise<void>((resolve) => (firstCreate = resolve));
  const created: string[] = [];
  return {
    submitter: {
      mode: 'cluster' as const,
      target: 'gated',
      async create(workflow: Workflow): Promise<SubmitResult> {
        created.push(workflow.metadata.annotations?.['kube-sentinel.io/cooldown-key'] ?? '');
        firstCreate();
        await gate;
        return CREATED;
      },
    },
    open,
    started,
    created,
  };
}

/** `count` crash-looping alerts, each in its own namespace (so its own cooldown key), `tag` naming them. */
function crashLoops(tag: string, count: number, padding = '') {
  return webhook(
    Array.from({ length: count }, (_, i) =>
      firing(
        { alertname: 'PodCrash', namespace: `${tag}-${i}`, pod: 'api-0' },
        { description: `crash looping${padding}` },
      ),
    ),
  );
}

const WEBHOOK = '/webhook/alertmanager';

describe('POST /webhook/alertmanager under --max-alerts-in-flight', () => {
  it('answers 503 with Retry-After before any work once the bound would be passed: no claim, no Workflow, no audit record', async () => {
    const gated = gatedSubmitter();
    const { app, store } = await testApp({
      config: { maxAlertsInFlight: 100, maxWorkflowsPerMinute: 0 },
      submitter: gated.submitter,
    });
    const holding = app.inject({ method: 'POST', url: WEBHOOK, payload: crashLoops('held', 60) });
    // Should an assertion fail, the held request must not keep the test from ending.
    after(gated.open);
    await gated.started;

    // 50 alerts: light enough to be read (its size fits), too many once counted (60 + 50 > 100).
    const counted = await app.inject({ method: 'POST', url: WEBHOOK, payload: crashLoops('counted', 50) });
    // 1 alert with a body of 64 KB: refused by its size before its body is even parsed.
    const large = crashLoops('large', 1, ' '.repeat(64 * 1024));
    const heavy = await app.inject({ method: 'POST', url: WEBHOOK, payload: large });
    for (const refused of [counted, heavy]) {
      assert.equal(refused.statusCode, 503);
      assert.equal(refused.headers['retry-after'], String(OVERLOADED_RETRY_AFTER_SECONDS));
      assert.equal(refused.json().error, 'overloaded');
      assert.match(refused.json().message, /--max-alerts-in-flight 100/);
    }
    assert.equal(await store.peek('crashloop:counted-0/api'), null, 'nothing was claimed');
    assert.equal(await store.peek('crashloop:large-0/api'), null);

    gated.open();
    const held = await holding;
    assert.equal(held.statusCode, 200);
    assert.equal(held.json().decisions.length, 60);
    assert.equal(gated.created.length, 60);
    assert.ok(
      gated.created.every((key) => key.startsWith('crashloop:held-')),
      'no Workflow was created for a refused request',
    );
    const audited = await store.listDecisions(1000);
    assert.equal(audited.length, 60, 'only the accepted request left audit records');
    assert.ok(audited.every((record) => record.cooldownKey?.startsWith('crashloop:held-')));

    // Its slot is free again: the same requests are now accepted, and decided.
    const again = await app.inject({ method: 'POST', url: WEBHOOK, payload: crashLoops('counted', 50) });
    assert.equal(again.statusCode, 200);
    assert.deepEqual(
      new Set(again.json().decisions.map((d: { outcome: string }) => d.outcome)),
      new Set(['submitted']),
    );
    assert.equal((await app.inject({ method: 'POST', url: WEBHOOK, payload: large })).statusCode, 200);
  });

  it('frees the slot of every request, however it ended: invalid, too large, retried, refused, decided', async () => {
    let fail = true;
    const gated = gatedSubmitter();
    const submitter = {
      ...gated.submitter,
      async create(workflow: Workflow): Promise<SubmitResult> {
        if (fail) return { kind: 'failed', status: 503, retryable: true, reason: 'busy', mayHaveLanded: false };
        return gated.submitter.create(workflow);
      },
    };
    const { app } = await testApp({
      config: { maxAlertsInFlight: 100, maxWorkflowsPerMinute: 0, bodyLimitBytes: 32 * 1024 },
      submitter,
    });
    const answers = [
      await app.inject({ method: 'POST', url: WEBHOOK, payload: { alerts: 'not a list' } }),
      await app.inject({ method: 'POST', url: WEBHOOK, payload: crashLoops('big', 1, ' '.repeat(40 * 1024)) }),
      await app.inject({ method: 'POST', url: WEBHOOK, payload: crashLoops('retried', 30) }),
      await app.inject({ method: 'POST', url: '/api/v2/alerts', payload: [{ labels: { alertname: 'X' } }] }),
      await app.inject({ method: 'POST', url: '/v1/explain', payload: crashLoops('explained', 10) }),
    ];
    assert.deepEqual(
      answers.map((a) => a.statusCode),
      [400, 413, 503, 200, 200],
    );
    assert.equal(answers[2]?.json().decisions.length, 30, 'a retry answer still lists every decision');

    // Had any of them kept its weight, 60 + 40 in flight would not fit in 100.
    fail = false;
    const holding = app.inject({ method: 'POST', url: WEBHOOK, payload: crashLoops('sixty', 60) });
    await gated.started;
    const beside = app.inject({ method: 'POST', url: WEBHOOK, payload: crashLoops('forty', 40) });
    gated.open();
    assert.deepEqual([(await holding).statusCode, (await beside).statusCode], [200, 200]);
  });
});
