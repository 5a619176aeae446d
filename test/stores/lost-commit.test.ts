/**
 * The commit that follows a create, lost to a Redis connection blip: the Workflow exists, the
 * store's connection is killed (CLIENT KILL) as the commit is sent. The commit must be retried
 * until it lands, so the key never goes back to a short pending lease that would let the same
 * workload be remediated twice inside its cooldown.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { createKubeSubmitter, type WorkflowSubmitter } from '../../src/kube/client.js';
import { RedisCooldownStore } from '../../src/stores/redis.js';
import { firing, testApp, webhook } from '../support/app.js';
import { type FakeKube, startFakeKube } from '../support/fake-kube.js';
import { writeKubeconfig } from '../support/kubeconfig.js';
import { type RedisServer, startRedis, uniquePrefix } from '../support/redis-server.js';

const LEASE_MS = 5_000;
/** Redis keeps real time: waits are polls, bounded. */
const BOUND_MS = 8_000;

const crashloop = (pod: string) =>
  webhook([firing({ alertname: 'KubePodCrashLooping', namespace: 'shop', pod }, { description: 'crashloop' })]);

async function eventually<T>(probe: () => Promise<T | undefined>, what: string): Promise<T> {
  const deadline = Date.now() + BOUND_MS;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await delay(20);
  }
  return assert.fail(`still waiting after ${BOUND_MS} ms: ${what}`);
}

describe('a commit lost to a Redis connection blip', () => {
  let redis: RedisServer;
  let admin: Redis;
  let kube: FakeKube;
  let real: WorkflowSubmitter;

  before(async () => {
    redis = await startRedis();
    admin = new Redis(redis.url);
    kube = await startFakeKube({ token: 't' });
    kube.addWorkflowTemplate('argo', 'diagnose-pod');
    real = await createKubeSubmitter({
      kind: 'file',
      path: writeKubeconfig(mkdtempSync(join(tmpdir(), 'ks-')), kube.url, 't'),
    });
  });
  after(async () => {
    admin.disconnect();
    await kube.close();
    await redis.stop();
  });

  it('is retried until it lands: the key holds the full cooldown, and a later alert of the workload gets cooldown', {
    timeout: 30_000,
  }, async () => {
    const prefix = uniquePrefix();
    const store = new RedisCooldownStore({ url: redis.url, keyPrefix: prefix });
    let kills = 0;
    // The Workflow is created, then every connection but the admin's is killed before the
    // receiver sends its commit: the commit goes out on a dead connection.
    const submitter: WorkflowSubmitter = {
      ...real,
      async create(workflow, timeoutMs) {
        const result = await real.create(workflow, timeoutMs);
        kills += Number(await admin.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes'));
        return result;
      },
    };
    const { app, logs } = await testApp({
      submitter,
      store,
      args: ['--pending-lease', `${LEASE_MS}ms`, '--submit-timeout', `${LEASE_MS - 1000}ms`],
    });
    try {
      const first = await app.inject({ method: 'POST', url: '/webhook/alertmanager', payload: crashloop('api-0') });
      const submitted = first.json().decisions[0];
      assert.equal(submitted.outcome, 'submitted');
      assert.ok(kills >= 1, 'the store connection was killed between the create and the commit');
      const key = `${prefix}cooldown:${submitted.cooldownKey}`;
      const committed = await eventually(async () => {
        const value = await admin.get(key);
        return value && JSON.parse(value).state === 'committed' ? value : undefined;
      }, 'the commit to land');
      assert.equal(JSON.parse(committed).workflowName, submitted.workflow.name);
      assert.ok(logs().some((l) => /^could not commit the cooldown; retrying/.test(String(l.msg))));
      // The key holds the rule's 10-minute cooldown, not the pending lease that would run out.
      assert.ok((await admin.pttl(key)) > 9 * 60_000);
      submitter.create = real.create;
      const later = await app.inject({ method: 'POST', url: '/webhook/alertmanager', payload: crashloop('api-1') });
      assert.equal(later.json().decisions[0].outcome, 'cooldown');
      assert.equal(kube.workflows.length, 1);
    } finally {
      await app.close();
    }
  });
});
