import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Remediation } from '../../src/remediation/model.js';
import type { CooldownStore } from '../../src/stores/cooldown-store.js';
import { TEST_START, testApp } from '../support/app.js';

async function recorded(store: CooldownStore, workflow: string, cluster?: string): Promise<Remediation> {
  const remediation: Remediation = {
    workflow,
    ...(cluster ? { cluster } : {}),
    rule: 'crashloop',
    cooldownKey: 'crashloop:shop/checkout',
    target: 'shop/checkout-0',
    state: 'running',
    submittedAt: new Date(TEST_START).toISOString(),
  };
  const { rule, cooldownKey, target, state, submittedAt: at } = remediation;
  const entry = { kind: 'remediation' as const, workflow, rule, cooldownKey, target, state, at, replica: 'r' };
  await store.recordTransition(remediation, entry, { retentionMs: 3600_000, auditMaxLen: 100 });
  return remediation;
}

describe('GET /v1/remediations', () => {
  it("links each remediation to its Workflow's page in the Argo UI with --argo-ui-url, its cluster left out", async () => {
    const { app, store } = await testApp({ args: ['--argo-ui-url', 'https://argo.example.com/ui/'] });
    const plain = await recorded(store, 'argo/kube-sentinel-crashloop-abc12');
    const clustered = await recorded(store, 'eu-1/jobs/kube-sentinel-crashloop-def34', 'eu-1');
    const res = await app.inject({ method: 'GET', url: '/v1/remediations' });
    assert.equal(res.statusCode, 200, res.body);
    const byWorkflow = new Map(
      (res.json().remediations as (Remediation & { workflowUrl?: string })[]).map((listed) => [
        listed.workflow,
        listed,
      ]),
    );
    assert.deepEqual(byWorkflow.get(plain.workflow), {
      ...plain,
      workflowUrl: 'https://argo.example.com/ui/workflows/argo/kube-sentinel-crashloop-abc12',
    });
    assert.deepEqual(byWorkflow.get(clustered.workflow), {
      ...clustered,
      workflowUrl: 'https://argo.example.com/ui/workflows/jobs/kube-sentinel-crashloop-def34',
    });
  });

  it('has no link without --argo-ui-url', async () => {
    const { app, store } = await testApp();
    const plain = await recorded(store, 'argo/kube-sentinel-crashloop-abc12');
    const res = await app.inject({ method: 'GET', url: '/v1/remediations' });
    assert.deepEqual(res.json(), { remediations: [plain] });
  });
});
