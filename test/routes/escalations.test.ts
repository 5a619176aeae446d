import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { EscalationAlert } from '../../src/remediation/model.js';
import { TEST_START, testApp } from '../support/app.js';

const HOUR = 3600_000;

function failed(workflow: string): EscalationAlert {
  return {
    labels: { alertname: 'KubeSentinelRemediationFailed', rule: 'crashloop', workflow },
    annotations: { summary: `remediation ${workflow} failed`, description: 'step crashed' },
  };
}

describe('GET /v1/escalations', () => {
  it('lists the escalations firing now, newest opened first, with their alert and times', async () => {
    const { app, store, clock } = await testApp();
    await store.openEscalation('crashloop:shop/a', 'failed:argo/wf-1', failed('argo/wf-1'), HOUR);
    clock.now = TEST_START + 60_000;
    await store.openEscalation('crashloop:shop/b', 'failed:argo/wf-2', failed('argo/wf-2'), HOUR);
    await store.openEscalation('crashloop:shop/c', 'failed:argo/wf-3', failed('argo/wf-3'), HOUR);
    await store.closeEscalations('crashloop:shop/c', 'all');
    const res = await app.inject({ method: 'GET', url: '/v1/escalations' });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json(), {
      escalations: [
        {
          id: 'failed:argo/wf-2',
          cooldownKey: 'crashloop:shop/b',
          alertname: 'KubeSentinelRemediationFailed',
          ...failed('argo/wf-2'),
          openedAt: new Date(TEST_START + 60_000).toISOString(),
          expiresAt: new Date(TEST_START + 60_000 + HOUR).toISOString(),
        },
        {
          id: 'failed:argo/wf-1',
          cooldownKey: 'crashloop:shop/a',
          alertname: 'KubeSentinelRemediationFailed',
          ...failed('argo/wf-1'),
          openedAt: new Date(TEST_START).toISOString(),
          expiresAt: new Date(TEST_START + HOUR).toISOString(),
        },
      ],
    });
    const limited = await app.inject({ method: 'GET', url: '/v1/escalations?limit=1' });
    assert.deepEqual(
      limited.json().escalations.map((listed: { id: string }) => listed.id),
      ['failed:argo/wf-2'],
    );
    clock.now = TEST_START + HOUR;
    const later = await app.inject({ method: 'GET', url: '/v1/escalations' });
    assert.deepEqual(
      later.json().escalations.map((listed: { id: string }) => listed.id),
      ['failed:argo/wf-2'],
      'the first one ran out its ttl',
    );
  });

  it('refuses a limit outside 1 to 1000 with 400 naming the field', async () => {
    const { app } = await testApp();
    for (const limit of ['0', '1001', 'many']) {
      const res = await app.inject({ method: 'GET', url: `/v1/escalations?limit=${limit}` });
      assert.equal(res.statusCode, 400, limit);
      assert.equal(res.json().field, 'querystring.limit', limit);
    }
  });

  it('answers 503 with Retry-After when the store does not', async () => {
    const { app, store } = await testApp();
    await store.close();
    const res = await app.inject({ method: 'GET', url: '/v1/escalations' });
    assert.equal(res.statusCode, 503);
    assert.equal(res.json().error, 'store_unavailable');
    assert.ok(res.headers['retry-after']);
  });

  it('answers 401 without credentials', async () => {
    const { app } = await testApp({ config: { authToken: 's3cret' } });
    assert.equal((await app.inject({ method: 'GET', url: '/v1/escalations' })).statusCode, 401);
    const allowed = await app.inject({
      method: 'GET',
      url: '/v1/escalations',
      headers: { authorization: 'Bearer s3cret' },
    });
    assert.equal(allowed.statusCode, 200);
  });
});
