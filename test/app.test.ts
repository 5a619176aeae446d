import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { fingerprintOf } from '../src/pipeline/fingerprint.js';
import { RedisCooldownStore } from '../src/stores/redis.js';
import { firing, scriptedSubmitter, testApp, webhook } from './support/app.js';
import { sharedPath } from './support/argo-schema.js';
import { freePort } from './support/processes.js';

function sample(name: string): unknown {
  return JSON.parse(
    readFileSync(
      sharedPath(`alertmanager/${name}`, `alertmanager/${name} (see shared/alertmanager/SOURCES.tsv)`),
      'utf8',
    ),
  );
}

describe('intake', () => {
  describe('POST /webhook/alertmanager', () => {
    it('decides the body captured from a real Alertmanager 0.25, keeping its fingerprint', async () => {
      const { app } = await testApp();
      const body = sample('captured/am-0.25-webhook-firing.json');
      const res = await app.inject({ method: 'POST', url: '/webhook/alertmanager', payload: body as object });
      assert.equal(res.statusCode, 200);
      const [decision] = res.json().decisions;
      assert.equal(decision.fingerprint, '9bf73f274022d8c2');
      assert.equal(decision.rule, 'crashloop');
      assert.equal(decision.outcome, 'dry_run');
      assert.equal(decision.cooldownKey, 'crashloop:shop/checkout');
      assert.match(decision.workflow.name, /^kube-sentinel-crashloop-[0-9a-f]{10}$/);
    });

    it('accepts the fields newer Alertmanagers add (notification_reason, routeLabels, truncatedAlerts)', async () => {
      const { app } = await testApp();
      for (const name of [
        'authored-from-spec__firing-2-alerts-loki.json',
        'authored-from-spec__firing-truncated-loki.json',
      ]) {
        const res = await app.inject({
          method: 'POST',
          url: '/webhook/alertmanager',
          payload: sample(`samples/${name}`) as object,
        });
        assert.equal(res.statusCode, 200, name);
        assert.equal(res.json().decisions.length, 2, name);
      }
    });

    it('does not remediate resolved alerts', async () => {
      const { app } = await testApp();
      const body = webhook([
        {
          ...firing({ alertname: 'X', namespace: 'shop', pod: 'api-0' }, { description: 'crash looping' }),
          status: 'resolved',
        },
      ]);
      const res = await app.inject({ method: 'POST', url: '/webhook/alertmanager', payload: body });
      assert.equal(res.statusCode, 200);
      assert.equal(res.json().decisions[0].outcome, 'resolved');
    });

    const badBodies: [string, unknown, string][] = [
      [
        'a label value that is a number',
        webhook([{ status: 'firing', labels: { pod: 5 } }]),
        'body.alerts.0.labels.pod',
      ],
      ['no alerts field', { version: '4' }, 'body.alerts'],
      ['an unknown status', webhook([{ status: 'burning', labels: { a: 'b' } }]), 'body.alerts.0.status'],
      ['a webhook version other than 4', webhook([], { version: '3' }), 'body.version'],
      ['alerts that are not a list', { version: '4', alerts: {} }, 'body.alerts'],
      ['a body that is not an object', [1], 'body'],
    ];
    for (const [what, payload, field] of badBodies) {
      it(`answers 400 naming the field for ${what}`, async () => {
        const { app } = await testApp();
        const res = await app.inject({ method: 'POST', url: '/webhook/alertmanager', payload: payload as object });
        assert.equal(res.statusCode, 400);
        assert.equal(res.json().field, field);
        assert.match(res.json().message, new RegExp(field.replaceAll('.', '\\.')));
      });
    }

    it('says which values a field allows, and that a missing field is required', async () => {
      const { app } = await testApp();
      const status = await app.inject({
        method: 'POST',
        url: '/webhook/alertmanager',
        payload: webhook([{ status: 'burning', labels: {} }]),
      });
      assert.equal(status.json().message, 'body.alerts.0.status must be one of "firing", "resolved"');
      const missing = await app.inject({ method: 'POST', url: '/webhook/alertmanager', payload: { version: '4' } });
      assert.equal(missing.json().message, 'body.alerts is required');
    });

    it('answers 400 for truncated JSON and 413 over the body limit', async () => {
      const { app } = await testApp();
      const truncated = await app.inject({
        method: 'POST',
        url: '/webhook/alertmanager',
        headers: { 'content-type': 'application/json' },
        payload: '{"alerts":[{"status":',
      });
      assert.equal(truncated.statusCode, 400);
      assert.equal(truncated.json().error, 'invalid_json');
      const huge = JSON.stringify(webhook([firing({ alertname: 'X', big: 'x'.repeat(1024 * 1024) })]));
      const tooLarge = await app.inject({
        method: 'POST',
        url: '/webhook/alertmanager',
        headers: { 'content-type': 'application/json' },
        payload: huge,
      });
      assert.equal(tooLarge.statusCode, 413);
    });

    it('answers 415 naming the fix for a body that is not application/json (curl -d sends a form)', async () => {
      const { app } = await testApp();
      const body = JSON.stringify(webhook([firing({ alertname: 'A' })]));
      for (const [type, named] of [
        ['application/x-www-form-urlencoded', 'Content-Type application/x-www-form-urlencoded'],
        ['text/plain', 'Content-Type text/plain'],
        [undefined, 'without Content-Type'],
      ] as const) {
        const res = await app.inject({
          method: 'POST',
          url: '/v1/explain',
          payload: body,
          headers: type ? { 'content-type': type } : {},
        });
        assert.equal(res.statusCode, 415, `${type}: ${res.body}`);
        assert.equal(res.json().error, 'unsupported_media_type');
        assert.ok(res.json().message.includes(named), res.json().message);
        assert.match(res.json().message, /send Content-Type: application\/json/);
        assert.match(res.json().message, /-H 'content-type: application\/json'/);
      }
    });

    it('drops __proto__ and constructor.prototype keys anywhere in a body and decides every alert', async () => {
      const { app } = await testApp();
      const first = JSON.stringify(
        firing({ alertname: 'A', namespace: 'shop', pod: 'api-0' }, { description: 'crashloop' }),
      );
      const second =
        '{"status":"firing","labels":{"__proto__":{"polluted":"yes"},"alertname":"B","namespace":"shop",' +
        '"pod":"web-0","constructor":{"prototype":{"polluted":"yes"}}},"annotations":{"description":"crashloop"}}';
      const third = JSON.stringify(firing({ alertname: 'Watchdog' }));
      const payload =
        '{"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}},"version":"4",' +
        `"alerts":[${first},${second},${third}]}`;
      const res = await app.inject({
        method: 'POST',
        url: '/webhook/alertmanager',
        payload,
        headers: { 'content-type': 'application/json' },
      });
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(
        res.json().decisions.map((d: { alertname: string; outcome: string }) => [d.alertname, d.outcome]),
        [
          ['A', 'dry_run'],
          ['B', 'dry_run'],
          ['Watchdog', 'no_match'],
        ],
      );
      assert.equal(res.json().decisions[1].cooldownKey, 'crashloop:shop/web');
      assert.equal(({} as { polluted?: unknown }).polluted, undefined);
    });

    it('refuses by its field an alert that is left invalid once its __proto__ key is dropped', async () => {
      const { app } = await testApp();
      const res = await app.inject({
        method: 'POST',
        url: '/api/v2/alerts',
        payload: '[{"labels":{"alertname":"A"}},{"labels":{"__proto__":{"alertname":"B"}}}]',
        headers: { 'content-type': 'application/json' },
      });
      assert.equal(res.statusCode, 400, res.body);
      assert.equal(res.json().field, 'body.1.labels');
    });
  });

  describe('POST /api/v2/alerts', () => {
    it('computes the fingerprint like Alertmanager and reads status from endsAt', async () => {
      const { app, clock } = await testApp();
      const alerts = sample('samples/authored-from-spec__loki-ruler-to-am-postable-alerts.json') as {
        labels: Record<string, string>;
        endsAt: string;
      }[];
      // The Loki ruler sends endsAt a few minutes ahead while the alert fires.
      clock.now = Date.parse(alerts[0]!.endsAt) - 60_000;
      const res = await app.inject({ method: 'POST', url: '/api/v2/alerts', payload: alerts });
      assert.equal(res.statusCode, 200);
      const decisions = res.json().decisions as { fingerprint: string; status: string }[];
      assert.deepEqual(
        decisions.map((d) => d.status),
        alerts.map(() => 'firing'),
      );
      assert.deepEqual(
        decisions.map((d) => d.fingerprint),
        alerts.map((a) => fingerprintOf(a.labels)),
      );

      clock.now = Date.parse(alerts[0]!.endsAt) + 1;
      const later = await app.inject({ method: 'POST', url: '/api/v2/alerts', payload: [alerts[0]] });
      assert.equal(later.json().decisions[0].status, 'resolved');
    });

    it('matches the fingerprints Alertmanager put in its webhooks', () => {
      for (const name of [
        'captured/am-0.25-webhook-firing.json',
        'samples/authored-from-spec__firing-2-alerts-loki.json',
      ]) {
        const body = sample(name) as { alerts: { labels: Record<string, string>; fingerprint: string }[] };
        for (const alert of body.alerts) assert.equal(fingerprintOf(alert.labels), alert.fingerprint, name);
      }
    });

    it('answers 400 for an alert without labels, or a body that is not a list', async () => {
      const { app } = await testApp();
      const noLabels = await app.inject({ method: 'POST', url: '/api/v2/alerts', payload: [{ annotations: {} }] });
      assert.equal(noLabels.statusCode, 400);
      assert.equal(noLabels.json().field, 'body.0.labels');
      const notList = await app.inject({ method: 'POST', url: '/api/v2/alerts', payload: { labels: { a: 'b' } } });
      assert.equal(notList.statusCode, 400);
      const emptyLabels = await app.inject({ method: 'POST', url: '/api/v2/alerts', payload: [{ labels: {} }] });
      assert.equal(emptyLabels.statusCode, 400);
      assert.equal(emptyLabels.json().field, 'body.0.labels');
    });

    // Alertmanager's API takes RFC 3339 (Go's time.RFC3339Nano): a zone is required.
    const times: [string, boolean][] = [
      ['2026-11-26T08:00:00Z', true],
      ['2026-11-26T08:00:00.123456789+02:00', true],
      ['2026-11-26t08:00:00z', true],
      ['2026-11-26 08:00:00Z', true],
      ['2026-11-26T08:00:00', false],
      ['2026-11-26', false],
      ['yesterday', false],
      ['2026-13-01T08:00:00Z', false],
    ];
    for (const [endsAt, ok] of times) {
      it(`${ok ? 'accepts' : 'refuses with 400'} endsAt ${JSON.stringify(endsAt)}`, async () => {
        const { app, clock } = await testApp();
        clock.now = Date.parse('2030-01-01T00:00:00Z');
        const res = await app.inject({
          method: 'POST',
          url: '/api/v2/alerts',
          payload: [{ labels: { alertname: 'A' }, endsAt }],
        });
        if (ok) {
          assert.equal(res.statusCode, 200, res.body);
          assert.equal(res.json().decisions[0].status, 'resolved', 'an endsAt in the past resolves the alert');
        } else {
          assert.equal(res.statusCode, 400);
          assert.equal(res.json().field, 'body.0.endsAt');
          assert.match(res.json().message, /date-time/);
        }
      });
    }
  });
});

describe('decisions', () => {
  it('gives a repeat and a second pod of the same Deployment a cooldown, another namespace a workflow', async () => {
    const { app } = await testApp();
    const send = async (labels: Record<string, string>) =>
      (
        await app.inject({
          method: 'POST',
          url: '/webhook/alertmanager',
          payload: webhook([firing(labels, { description: 'CrashLoop' })]),
        })
      ).json().decisions[0];
    assert.equal(
      (await send({ alertname: 'A', namespace: 'shop', pod: 'checkout-7d9f8b6c5-x2x9k' })).outcome,
      'dry_run',
    );
    assert.equal(
      (await send({ alertname: 'A', namespace: 'shop', pod: 'checkout-7d9f8b6c5-x2x9k' })).outcome,
      'cooldown',
    );
    assert.equal(
      (await send({ alertname: 'A', namespace: 'shop', pod: 'checkout-7d9f8b6c5-zz9pq' })).outcome,
      'cooldown',
    );
    assert.equal(
      (await send({ alertname: 'A', namespace: 'web', pod: 'checkout-7d9f8b6c5-zz9pq' })).outcome,
      'dry_run',
    );
  });

  it('says that a dry-run repeat is in cooldown behind a Workflow dry-run, not submitted', async () => {
    const payload = webhook([
      firing({ alertname: 'A', namespace: 'shop', pod: 'api-0' }, { description: 'crashloop' }),
    ]);
    const dry = await testApp();
    await dry.app.inject({ method: 'POST', url: '/webhook/alertmanager', payload });
    const repeat = (await dry.app.inject({ method: 'POST', url: '/webhook/alertmanager', payload })).json()
      .decisions[0];
    assert.equal(repeat.outcome, 'cooldown');
    assert.match(repeat.reason, /^kube-sentinel-crashloop-[0-9a-f]+ was dry-run \(not submitted\)$/);
    const peeked = (await dry.app.inject({ method: 'POST', url: '/v1/explain', payload })).json().decisions[0];
    assert.equal(peeked.reason, repeat.reason);
    // A replica that submits, sharing the store, tells the same truth about the dry-run's claim.
    const live = await testApp({ store: dry.store, submitter: scriptedSubmitter() });
    live.clock.now = dry.clock.now;
    const seen = (await live.app.inject({ method: 'POST', url: '/webhook/alertmanager', payload })).json().decisions[0];
    assert.equal(seen.reason, repeat.reason);
  });

  it('says that a repeat is in cooldown behind a submitted Workflow when one was submitted', async () => {
    const payload = webhook([
      firing({ alertname: 'A', namespace: 'shop', pod: 'api-0' }, { description: 'crashloop' }),
    ]);
    const { app } = await testApp({ submitter: scriptedSubmitter() });
    assert.equal(
      (await app.inject({ method: 'POST', url: '/webhook/alertmanager', payload })).json().decisions[0].outcome,
      'submitted',
    );
    const repeat = (await app.inject({ method: 'POST', url: '/webhook/alertmanager', payload })).json().decisions[0];
    assert.match(repeat.reason, /^kube-sentinel-crashloop-[0-9a-f]+ was submitted$/);
  });

  it('lets the cooldown expire with the clock', async () => {
    const { app, clock } = await testApp();
    const payload = webhook([firing({ alertname: 'A', namespace: 'shop', pod: 'db-0' }, { description: 'crashloop' })]);
    assert.equal(
      (await app.inject({ method: 'POST', url: '/webhook/alertmanager', payload })).json().decisions[0].outcome,
      'dry_run',
    );
    clock.now += 9 * 60_000;
    assert.equal(
      (await app.inject({ method: 'POST', url: '/webhook/alertmanager', payload })).json().decisions[0].outcome,
      'cooldown',
    );
    clock.now += 2 * 60_000;
    assert.equal(
      (await app.inject({ method: 'POST', url: '/webhook/alertmanager', payload })).json().decisions[0].outcome,
      'dry_run',
    );
  });

  const hostile = ['a;curl x|sh', '$(id)', '{{workflow.name}}', '`id`', 'pod\nname'];
  for (const pod of hostile) {
    it(`refuses a hostile pod label ${JSON.stringify(pod)} as invalid_target, holding no cooldown`, async () => {
      const { app } = await testApp();
      const res = await app.inject({
        method: 'POST',
        url: '/webhook/alertmanager',
        payload: webhook([firing({ alertname: 'A', namespace: 'shop', pod }, { description: 'crashloop' })]),
      });
      assert.equal(res.statusCode, 200);
      const decision = res.json().decisions[0];
      assert.equal(decision.outcome, 'invalid_target');
      assert.match(decision.reason, /pod/);
      const again = await app.inject({
        method: 'POST',
        url: '/webhook/alertmanager',
        payload: webhook([firing({ alertname: 'A', namespace: 'shop', pod: 'ok-0' }, { description: 'crashloop' })]),
      });
      assert.equal(again.json().decisions[0].outcome, 'dry_run');
    });
  }

  it('refuses an argument substituted from an annotation that smuggles a template', async () => {
    const { app } = await testApp();
    const res = await app.inject({
      method: 'POST',
      url: '/webhook/alertmanager',
      payload: webhook([
        firing(
          { alertname: 'Db', namespace: 'shop', pod: 'orders-0', severity: 'critical' },
          { description: 'database connection failed', summary: '{{workflow.uid}}' },
        ),
      ]),
    });
    assert.equal(res.json().decisions[0].outcome, 'invalid_target');
  });

  it('rate-limits across the window and answers 200 for rate_limited', async () => {
    const { app, clock } = await testApp({ args: ['--max-workflows-per-minute', '2'] });
    const alerts = ['a', 'b', 'c'].map((ns) =>
      firing({ alertname: 'A', namespace: ns, pod: 'p-0' }, { description: 'crashloop' }),
    );
    const res = await app.inject({ method: 'POST', url: '/webhook/alertmanager', payload: webhook(alerts) });
    assert.equal(res.statusCode, 200);
    const outcomes = res
      .json()
      .decisions.map((d: { outcome: string }) => d.outcome)
      .sort();
    assert.deepEqual(outcomes, ['dry_run', 'dry_run', 'rate_limited']);
    // The rate-limited alert's claim was released: next minute it goes through.
    clock.now += 60_000;
    const retry = await app.inject({ method: 'POST', url: '/webhook/alertmanager', payload: webhook(alerts) });
    assert.deepEqual(
      retry
        .json()
        .decisions.map((d: { outcome: string }) => d.outcome)
        .sort(),
      ['cooldown', 'cooldown', 'dry_run'],
    );
  });

  it('logs one line per decision with rule, action, outcome, workflow, namespace, pod and fingerprint', async () => {
    const { app, logs } = await testApp();
    await app.inject({
      method: 'POST',
      url: '/webhook/alertmanager',
      payload: webhook([firing({ alertname: 'A', namespace: 'shop', pod: 'api-0' }, { description: 'crashloop' })]),
    });
    const line = logs().find((l) => l.msg === 'decision');
    assert.ok(line);
    assert.equal(line.rule, 'crashloop');
    assert.equal(line.action, 'trigger-argo-workflow');
    assert.equal(line.outcome, 'dry_run');
    assert.match(String(line.workflow), /^kube-sentinel-crashloop-/);
    assert.equal(line.namespace, 'shop');
    assert.equal(line.pod, 'api-0');
    assert.match(String(line.fingerprint), /^[0-9a-f]{16}$/);
  });
});

describe('POST /v1/explain', () => {
  it('names the field of either payload shape that is wrong', async () => {
    const { app } = await testApp();
    const v2 = await app.inject({
      method: 'POST',
      url: '/v1/explain',
      payload: [{ labels: { a: 'b' } }, { annotations: {} }],
    });
    assert.equal(v2.statusCode, 400);
    assert.equal(v2.json().field, 'body.1.labels');
    const hook = await app.inject({
      method: 'POST',
      url: '/v1/explain',
      payload: webhook([{ status: 'firing', labels: { pod: 5 } }]),
    });
    assert.equal(hook.statusCode, 400);
    assert.equal(hook.json().field, 'body.alerts.0.labels.pod');
  });

  it('decides without side effects: nothing claimed, nothing recorded', async () => {
    const { app } = await testApp();
    const payload = webhook([
      firing({ alertname: 'A', namespace: 'shop', pod: 'api-0' }, { description: 'crashloop' }),
    ]);
    for (let i = 0; i < 2; i++) {
      const res = await app.inject({ method: 'POST', url: '/v1/explain', payload });
      assert.equal(res.json().decisions[0].outcome, 'dry_run');
    }
    const audit = await app.inject({ method: 'GET', url: '/v1/decisions' });
    assert.deepEqual(audit.json().decisions, []);
    const real = await app.inject({ method: 'POST', url: '/webhook/alertmanager', payload });
    assert.equal(real.json().decisions[0].outcome, 'dry_run');
    const peeked = await app.inject({
      method: 'POST',
      url: '/v1/explain',
      payload: [
        { labels: { alertname: 'A', namespace: 'shop', pod: 'api-1' }, annotations: { description: 'crashloop' } },
      ],
    });
    assert.equal(peeked.json().decisions[0].outcome, 'cooldown');
  });

  it('leaves the metrics, and the decision log lines, as they were', async () => {
    const { app, logs } = await testApp({ submitter: scriptedSubmitter() });
    const crash = (pod: string) => firing({ alertname: 'A', namespace: 'shop', pod }, { description: 'crashloop' });
    await app.inject({ method: 'POST', url: '/webhook/alertmanager', payload: webhook([crash('api-0')]) });
    const metrics = async () => (await app.inject({ method: 'GET', url: '/metrics' })).body;
    const before = await metrics();
    assert.match(before, /kube_sentinel_decisions_total\{rule="crashloop",outcome="submitted"\} 1/);
    const decisionLines = () => logs().filter((line) => line.msg === 'decision').length;
    const linesBefore = decisionLines();
    const explained = await app.inject({
      method: 'POST',
      url: '/v1/explain',
      payload: webhook([crash('api-1'), crash('other-0'), firing({ alertname: 'Watchdog' })]),
    });
    assert.deepEqual(
      explained.json().decisions.map((d: { outcome: string }) => d.outcome),
      ['cooldown', 'dry_run', 'no_match'],
    );
    assert.equal(await metrics(), before);
    assert.equal(decisionLines(), linesBefore);
  });

  it('takes one alert on its own, with or without a status', async () => {
    const { app } = await testApp();
    const labels = { alertname: 'A', namespace: 'shop', pod: 'api-0' };
    const annotations = { description: 'crashloop' };
    const cases = [
      [{ status: 'firing', labels, annotations }, 'dry_run'],
      [{ status: 'resolved', labels, annotations }, 'resolved'],
      [{ labels, annotations }, 'dry_run'],
      [{ labels, annotations, endsAt: '2020-01-01T00:00:00Z' }, 'resolved'],
    ] as const;
    for (const [payload, outcome] of cases) {
      const res = await app.inject({ method: 'POST', url: '/v1/explain', payload });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.json().decisions.length, 1);
      assert.equal(res.json().decisions[0].outcome, outcome, JSON.stringify(payload));
    }
    const bad = await app.inject({ method: 'POST', url: '/v1/explain', payload: { labels: { pod: 5 } } });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().field, 'body.labels.pod');
    const both = await app.inject({ method: 'POST', url: '/v1/explain', payload: { labels, alerts: 'x' } });
    assert.equal(both.statusCode, 400);
    assert.equal(both.json().field, 'body.alerts');
    const neither = await app.inject({
      method: 'POST',
      url: '/v1/explain',
      payload: '5',
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(neither.statusCode, 400);
    assert.equal(neither.json().message, 'body expected object or array');
  });
});

describe('the audit trail', () => {
  it('lists ingest decisions newest first and validates limit', async () => {
    const { app, clock } = await testApp();
    for (const pod of ['a-0', 'b-0']) {
      clock.now += 1000;
      await app.inject({
        method: 'POST',
        url: '/webhook/alertmanager',
        payload: webhook([firing({ alertname: 'A', namespace: 'shop', pod }, { description: 'crashloop' })]),
      });
    }
    const res = await app.inject({ method: 'GET', url: '/v1/decisions?limit=1' });
    assert.equal(res.json().decisions.length, 1);
    assert.equal(res.json().decisions[0].cooldownKey, 'crashloop:shop/b');
    assert.equal(res.json().decisions[0].replica, 'test');
    for (const bad of ['0', '1001', 'abc']) {
      assert.equal((await app.inject({ method: 'GET', url: `/v1/decisions?limit=${bad}` })).statusCode, 400, bad);
    }
  });
});

describe('auth', () => {
  it('requires the bearer token everywhere but the probes, metrics and API document', async () => {
    const { app } = await testApp({ config: { authToken: 's3cret' } });
    const payload = webhook([
      firing({ alertname: 'A', namespace: 'shop', pod: 'api-0' }, { description: 'crashloop' }),
    ]);
    assert.equal((await app.inject({ method: 'POST', url: '/webhook/alertmanager', payload })).statusCode, 401);
    assert.equal(
      (
        await app.inject({
          method: 'POST',
          url: '/webhook/alertmanager',
          payload,
          headers: { authorization: 'Bearer wrong' },
        })
      ).statusCode,
      401,
    );
    assert.equal((await app.inject({ method: 'GET', url: '/v1/rules' })).statusCode, 401);
    assert.equal((await app.inject({ method: 'GET', url: '/v1/decisions' })).statusCode, 401);
    const ok = await app.inject({
      method: 'POST',
      url: '/webhook/alertmanager',
      payload,
      headers: { authorization: 'Bearer s3cret' },
    });
    assert.equal(ok.statusCode, 200);
    for (const url of ['/healthz', '/readyz', '/metrics', '/openapi.yaml']) {
      assert.equal((await app.inject({ method: 'GET', url })).statusCode, 200, url);
    }
  });
});

describe('basic auth', () => {
  it('accepts the configured user and password, alone or beside the token', async () => {
    const payload = webhook([
      firing({ alertname: 'A', namespace: 'shop', pod: 'api-0' }, { description: 'crashloop' }),
    ]);
    const basic = (credentials: string) => ({ authorization: `Basic ${Buffer.from(credentials).toString('base64')}` });
    const { app } = await testApp({ args: ['--basic-auth', 'alertmanager:pa:ss'] });
    assert.equal((await app.inject({ method: 'POST', url: '/webhook/alertmanager', payload })).statusCode, 401);
    assert.equal(
      (
        await app.inject({
          method: 'POST',
          url: '/webhook/alertmanager',
          payload,
          headers: basic('alertmanager:wrong'),
        })
      ).statusCode,
      401,
    );
    assert.equal(
      (
        await app.inject({
          method: 'POST',
          url: '/webhook/alertmanager',
          payload,
          headers: basic('alertmanager:pa:ss'),
        })
      ).statusCode,
      200,
    );
    const both = (await testApp({ args: ['--basic-auth', 'am:pw'], config: { authToken: 'tok' } })).app;
    assert.equal(
      (await both.inject({ method: 'POST', url: '/webhook/alertmanager', payload, headers: basic('am:pw') }))
        .statusCode,
      200,
    );
    assert.equal(
      (
        await both.inject({
          method: 'POST',
          url: '/webhook/alertmanager',
          payload,
          headers: { authorization: 'Bearer tok' },
        })
      ).statusCode,
      200,
    );
    assert.equal((await both.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
  });
});

describe('when the cooldown store is down', async () => {
  const deadPort = await freePort();
  const stores: RedisCooldownStore[] = [];
  after(async () => Promise.all(stores.map((s) => s.close())));
  const deadStore = () => {
    const store = new RedisCooldownStore({ url: `redis://127.0.0.1:${deadPort}`, commandTimeoutMs: 200 });
    stores.push(store);
    return store;
  };

  it('fails closed: 503 with Retry-After and a retry decision; /readyz says why', async () => {
    const { app } = await testApp({ store: deadStore() });
    const res = await app.inject({
      method: 'POST',
      url: '/webhook/alertmanager',
      payload: webhook([firing({ alertname: 'A', namespace: 'shop', pod: 'api-0' }, { description: 'crashloop' })]),
    });
    assert.equal(res.statusCode, 503);
    assert.ok(Number(res.headers['retry-after']) > 0);
    assert.equal(res.json().decisions[0].outcome, 'retry');
    const ready = await app.inject({ method: 'GET', url: '/readyz' });
    assert.equal(ready.statusCode, 503);
    assert.match(ready.json().reasons.join(), /cooldown store/);
  });

  it('with --cooldown-store-failure=open remediates without the guard', async () => {
    const { app } = await testApp({ store: deadStore(), args: ['--cooldown-store-failure=open'] });
    const res = await app.inject({
      method: 'POST',
      url: '/webhook/alertmanager',
      payload: webhook([firing({ alertname: 'A', namespace: 'shop', pod: 'api-0' }, { description: 'crashloop' })]),
    });
    assert.equal(res.statusCode, 200);
    assert.equal(res.json().decisions[0].outcome, 'dry_run');
  });

  it('still decides alerts that need no guard (no match) with 200', async () => {
    const { app } = await testApp({ store: deadStore() });
    const res = await app.inject({
      method: 'POST',
      url: '/webhook/alertmanager',
      payload: webhook([firing({ alertname: 'Watchdog' })]),
    });
    assert.equal(res.statusCode, 200);
    assert.equal(res.json().decisions[0].outcome, 'no_match');
  });
});

describe('GET /v1/rules and /metrics', () => {
  it('lists the loaded rules in evaluation order', async () => {
    const { app } = await testApp();
    const res = await app.inject({ method: 'GET', url: '/v1/rules' });
    assert.deepEqual(
      res.json().rules.map((r: { name: string }) => r.name),
      ['db-recover', 'restart-inline', 'crashloop'],
    );
    assert.deepEqual(res.json().rules[0], {
      name: 'db-recover',
      priority: 'P1',
      enabled: true,
      action: 'trigger-argo-workflow',
      template: 'diagnose-and-recover',
      cluster_scope: false,
      workflow_name: null,
      cooldown: '10m',
      max_attempts: 3,
      attempt_window: '1h',
      approval: 'none',
      approval_timeout: null,
      runbook_url: null,
      on_resolved: false,
      source: res.json().rules[0].source,
    });
  });

  it('counts alerts received and decisions by outcome', async () => {
    const { app } = await testApp();
    await app.inject({
      method: 'POST',
      url: '/webhook/alertmanager',
      payload: webhook([
        firing({ alertname: 'A', namespace: 'shop', pod: 'api-0' }, { description: 'crashloop' }),
        firing({ alertname: 'W' }),
      ]),
    });
    const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    assert.match(text, /kube_sentinel_alerts_received_total\{source="alertmanager",status="firing"\} 2/);
    assert.match(text, /kube_sentinel_decisions_total\{rule="crashloop",outcome="dry_run"\} 1/);
    assert.match(text, /kube_sentinel_decisions_total\{rule="",outcome="no_match"\} 1/);
    assert.match(text, /kube_sentinel_dry_run 1/);
  });
});
