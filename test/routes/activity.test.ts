import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Remediation, RemediationState } from '../../src/remediation/model.js';
import { firing, rulesFrom, TEST_START, type TestApp, testApp, webhook } from '../support/app.js';

const HOUR = 3600_000;
const at = (ms: number) => new Date(ms).toISOString();

interface RuleActivity {
  rule: string;
  enabled: boolean;
  lastMatchAt: string | null;
  matches: number;
  remediations: Record<'succeeded' | 'failed' | 'cancelled' | 'unknown', number>;
  successRate: number | null;
}

interface ActivityBody {
  hours: number;
  bucketSeconds: number;
  buckets: { start: string; outcomes: Record<string, number> }[];
  rules: RuleActivity[];
}

const crashing = (pod: string) =>
  firing({ alertname: 'PodCrash', namespace: 'shop', pod }, { description: 'CrashLoopBackOff' });

async function post(app: TestApp['app'], alerts: ReturnType<typeof firing>[]): Promise<void> {
  const res = await app.inject({ method: 'POST', url: '/webhook/alertmanager', payload: webhook(alerts) });
  assert.equal(res.statusCode, 200, res.body);
}

async function activity({ app, store }: TestApp, query = ''): Promise<ActivityBody> {
  // The answers of ingest do not wait for their audit records: the store has them once it answers.
  await store.ping();
  const res = await app.inject({ method: 'GET', url: `/v1/activity${query}` });
  assert.equal(res.statusCode, 200, res.body);
  return res.json() as ActivityBody;
}

/** What the watcher records when a remediation of `rule` ends in `state`. */
async function ended(tested: TestApp, name: string, state: RemediationState, rule = 'crashloop'): Promise<void> {
  const remediation: Remediation = {
    workflow: `argo/${name}`,
    rule,
    cooldownKey: `${rule}:shop/checkout`,
    target: 'shop/checkout-0',
    state,
    submittedAt: at(tested.clock.now),
  };
  const { workflow, cooldownKey, target } = remediation;
  const entry = { kind: 'remediation' as const, workflow, rule, cooldownKey, target, state, at: at(tested.clock.now) };
  const options = { retentionMs: 24 * HOUR, auditMaxLen: 100 };
  assert.equal(await tested.store.recordTransition(remediation, { ...entry, replica: 'r' }, options), true);
}

const NOTHING = { succeeded: 0, failed: 0, cancelled: 0, unknown: 0 };

describe('GET /v1/activity', () => {
  it('answers 24 buckets of an hour by default, oldest first, the current hour last, the empty ones too', async () => {
    const tested = await testApp();
    tested.clock.now = TEST_START + 30 * 60_000;
    const body = await activity(tested);
    assert.equal(body.hours, 24);
    assert.equal(body.bucketSeconds, 3600);
    assert.deepEqual(
      body.buckets,
      Array.from({ length: 24 }, (_, i) => ({ start: at(TEST_START + (i - 23) * HOUR), outcomes: {} })),
    );
  });

  it("counts each hour's decisions by outcome, and each rule's matches within the hours and its latest match", async () => {
    const tested = await testApp();
    tested.clock.now = TEST_START - HOUR;
    await post(tested.app, [crashing('api-old')]);
    tested.clock.now = TEST_START;
    await post(tested.app, [crashing('api-0'), firing({ alertname: 'Watchdog' })]);
    await post(tested.app, [crashing('api-0')]);
    tested.clock.now = TEST_START + HOUR + 5;
    await post(tested.app, [crashing('api-1')]);
    const body = await activity(tested, '?hours=2');
    assert.deepEqual(body.buckets, [
      { start: at(TEST_START), outcomes: { dry_run: 1, no_match: 1, cooldown: 1 } },
      { start: at(TEST_START + HOUR), outcomes: { dry_run: 1 } },
    ]);
    assert.deepEqual(
      body.rules.map(({ rule, lastMatchAt, matches }) => ({ rule, lastMatchAt, matches })),
      [
        { rule: 'db-recover', lastMatchAt: null, matches: 0 },
        { rule: 'restart-inline', lastMatchAt: null, matches: 0 },
        { rule: 'crashloop', lastMatchAt: at(TEST_START + HOUR + 5), matches: 3 },
      ],
      'the rules in evaluation order (P1 first); the match of 2 h ago is not within the hours',
    );
    assert.equal((await activity(tested, '?hours=3')).rules[2]?.matches, 4);
  });

  it('rates each rule by the remediations that ended within the hours: cancelled is not a failed fix', async () => {
    const tested = await testApp();
    tested.clock.now = TEST_START - 2 * HOUR;
    await ended(tested, 'wf-old', 'failed');
    tested.clock.now = TEST_START;
    await ended(tested, 'wf-1', 'succeeded');
    await ended(tested, 'wf-2', 'succeeded');
    await ended(tested, 'wf-3', 'failed');
    await ended(tested, 'wf-4', 'unknown');
    await ended(tested, 'wf-5', 'cancelled');
    await ended(tested, 'wf-6', 'cancelled', 'db-recover');
    const rules = (await activity(tested, '?hours=2')).rules;
    assert.deepEqual(
      rules.map(({ rule, remediations, successRate }) => ({ rule, remediations, successRate })),
      [
        { rule: 'db-recover', remediations: { ...NOTHING, cancelled: 1 }, successRate: null },
        { rule: 'restart-inline', remediations: NOTHING, successRate: null },
        { rule: 'crashloop', remediations: { succeeded: 2, failed: 1, cancelled: 1, unknown: 1 }, successRate: 0.5 },
      ],
    );
    assert.equal((await activity(tested, '?hours=3')).rules[2]?.successRate, 0.4, 'with the failure of 2 h ago');
  });

  it('lists a disabled rule too, marked so', async () => {
    const rules = await rulesFrom(`
rules:
  - name: quiet
    enabled: false
    match: {pattern: "x"}
    priority: P3
    remediation:
      action: trigger-argo-workflow
      params: {workflow_template: diagnose-pod}
`);
    const body = await activity(await testApp({ rules }));
    assert.deepEqual(body.rules, [
      { rule: 'quiet', enabled: false, lastMatchAt: null, matches: 0, remediations: NOTHING, successRate: null },
    ]);
  });

  it('answers the record of a rule named constructor, which Object has a property of, as of any other', async () => {
    const rules = await rulesFrom(`
rules:
  - name: constructor
    match: {pattern: "(?i)crash ?loop"}
    priority: P3
    remediation:
      action: trigger-argo-workflow
      params: {workflow_template: diagnose-pod}
`);
    const tested = await testApp({ rules });
    await post(tested.app, [crashing('api-0')]);
    await ended(tested, 'wf-1', 'succeeded', 'constructor');
    await ended(tested, 'wf-2', 'failed', 'constructor');
    // The hours before have counted nothing: their buckets have no key of that name.
    const body = await activity(tested);
    assert.deepEqual(body.rules, [
      {
        rule: 'constructor',
        enabled: true,
        lastMatchAt: at(TEST_START),
        matches: 1,
        remediations: { ...NOTHING, succeeded: 1, failed: 1 },
        successRate: 0.5,
      },
    ]);
  });

  it('refuses hours outside 1 to 24 with 400 naming the field', async () => {
    const { app } = await testApp();
    for (const hours of ['0', '25', 'day', '']) {
      const res = await app.inject({ method: 'GET', url: `/v1/activity?hours=${hours}` });
      assert.equal(res.statusCode, 400, hours);
      assert.equal(res.json().field, 'querystring.hours', hours);
    }
  });

  it('answers 503 with Retry-After when the store does not', async () => {
    const { app, store } = await testApp();
    await store.close();
    const res = await app.inject({ method: 'GET', url: '/v1/activity' });
    assert.equal(res.statusCode, 503);
    assert.equal(res.json().error, 'store_unavailable');
    assert.ok(res.headers['retry-after']);
  });

  it('answers 401 without credentials', async () => {
    const { app } = await testApp({ config: { authToken: 's3cret' } });
    assert.equal((await app.inject({ method: 'GET', url: '/v1/activity' })).statusCode, 401);
    const allowed = await app.inject({
      method: 'GET',
      url: '/v1/activity',
      headers: { authorization: 'Bearer s3cret' },
    });
    assert.equal(allowed.statusCode, 200);
  });
});
