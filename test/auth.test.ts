/**
 * The credentials the API asks for: the scheme is case-insensitive (RFC 7235), and a refused
 * request leaves a trace on the receiving side (a rate-limited log line, a counter by route)
 * without the credential that was presented.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { firing, type TestApp, testApp, webhook } from './support/app.js';

const payload = webhook([firing({ alertname: 'A', namespace: 'shop', pod: 'api-0' }, { description: 'crashloop' })]);

async function status(app: TestApp['app'], authorization?: string, url = '/webhook/alertmanager'): Promise<number> {
  const res = await app.inject({
    method: url === '/webhook/alertmanager' ? 'POST' : 'GET',
    url,
    ...(url === '/webhook/alertmanager' ? { payload } : {}),
    ...(authorization === undefined ? {} : { headers: { authorization } }),
  });
  return res.statusCode;
}

const basic = (scheme: string, credentials: string) => `${scheme} ${Buffer.from(credentials).toString('base64')}`;

describe('the Authorization scheme', () => {
  it('is case-insensitive for the bearer token; the token itself is not', async () => {
    const { app } = await testApp({ config: { authToken: 's3cret' } });
    for (const header of ['Bearer s3cret', 'bearer s3cret', 'BEARER s3cret', 'bEaReR s3cret', 'Bearer  s3cret']) {
      assert.equal(await status(app, header), 200, header);
    }
    for (const header of ['Bearer S3CRET', 'Bearers3cret', 'Bearer', 'Basic s3cret', 's3cret']) {
      assert.equal(await status(app, header), 401, header);
    }
  });

  it('is case-insensitive for basic auth; the encoded credentials are not', async () => {
    const { app } = await testApp({ args: ['--basic-auth', 'am:pw'] });
    for (const scheme of ['Basic', 'basic', 'BASIC']) assert.equal(await status(app, basic(scheme, 'am:pw')), 200);
    assert.equal(await status(app, basic('basic', 'am:PW')), 401);
    assert.equal(await status(app, basic('Bearer', 'am:pw')), 401);
  });
});

describe('a request refused with 401', () => {
  it('is logged at most once per 10 s, with how many were left out, never with the credential', async () => {
    const { app, clock, logs } = await testApp({ config: { authToken: 's3cret' } });
    const refusals = () => logs().filter((entry) => /401/.test(String(entry.msg)));
    assert.equal(await status(app, 'Bearer wrong-token-1'), 401);
    assert.equal(await status(app, 'Bearer wrong-token-2'), 401);
    assert.equal(await status(app), 401);
    clock.now += 9_999;
    assert.equal(await status(app, 'Bearer wrong-token-3', '/v1/rules'), 401);
    assert.equal(refusals().length, 1, JSON.stringify(refusals()));
    const first = refusals()[0]!;
    assert.equal(first.route, '/webhook/alertmanager');
    assert.equal(first.problem, 'wrong credentials');
    assert.equal(first.suppressedSinceLastLog, 0);

    clock.now += 1;
    assert.equal(await status(app, 'Basic d3Jvbmc6Y3JlZHM=', '/v1/decisions'), 401);
    assert.equal(refusals().length, 2, JSON.stringify(refusals()));
    const second = refusals()[1]!;
    assert.equal(second.route, '/v1/decisions');
    assert.equal(second.suppressedSinceLastLog, 3);

    const everything = JSON.stringify(logs());
    for (const secret of ['wrong-token', 'd3Jvbmc6Y3JlZHM=', 's3cret']) {
      assert.ok(!everything.includes(secret), `${secret} is not logged`);
    }
  });

  it('says when the header is missing', async () => {
    const { app, logs } = await testApp({ config: { authToken: 's3cret' } });
    assert.equal(await status(app), 401);
    const line = logs().find((entry) => /401/.test(String(entry.msg)));
    assert.equal(line?.problem, 'missing Authorization header');
  });

  it('is counted by route in kube_sentinel_http_unauthorized_total; accepted requests are not', async () => {
    const { app } = await testApp({ config: { authToken: 's3cret' } });
    assert.equal(await status(app, 'Bearer wrong'), 401);
    assert.equal(await status(app), 401);
    assert.equal(await status(app, 'Bearer wrong', '/v1/rules'), 401);
    assert.equal(await status(app, 'Bearer s3cret'), 200);
    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    assert.match(metrics, /^kube_sentinel_http_unauthorized_total\{route="\/webhook\/alertmanager"\} 2$/m);
    assert.match(metrics, /^kube_sentinel_http_unauthorized_total\{route="\/v1\/rules"\} 1$/m);
  });
});
