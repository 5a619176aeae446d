import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Alert } from '../../src/alert.js';
import { cooldownKey, workflowNameFor, workloadOf } from '../../src/pipeline/cooldown-key.js';
import type { Rule } from '../../src/rules/types.js';

function alertWith(labels: Record<string, string>, fingerprint = '0123456789abcdef'): Alert {
  return { source: 'alertmanager', status: 'firing', labels, annotations: {}, fingerprint };
}

function ruleWith(overrides: { name?: string; cooldownKey?: string[] | null; workflowName?: string } = {}): Rule {
  return {
    name: overrides.name ?? 'crashloop',
    priority: 'P1',
    enabled: true,
    onResolved: false,
    match: { pattern: 'CrashLoopBackOff', labels: [], namespaces: [], excludedNamespaces: [], fields: [] },
    remediation: {
      action: 'trigger-argo-workflow',
      params: {
        clusterScope: false,
        arguments: [],
        ...(overrides.workflowName === undefined
          ? { workflowTemplate: 'diagnose-pod' }
          : { workflowName: overrides.workflowName }),
      },
      cooldownMs: 300_000,
      cooldownKey: overrides.cooldownKey ?? null,
    },
    source: { file: 'rules/test.yaml', line: 1 },
  };
}

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

describe('workloadOf', () => {
  const cases: { name: string; labels: Record<string, string>; workload: string | null }[] = [
    {
      name: 'a deployment label wins over the pod label',
      labels: { deployment: 'api', pod: 'checkout-7d9f8b6c5-x2x9k' },
      workload: 'api',
    },
    { name: 'a statefulset label names the workload', labels: { statefulset: 'db', pod: 'db-0' }, workload: 'db' },
    { name: 'a daemonset label names the workload', labels: { daemonset: 'node-exporter' }, workload: 'node-exporter' },
    {
      name: 'a job_name label names the workload',
      labels: { job_name: 'backup-28312345' },
      workload: 'backup-28312345',
    },
    {
      name: 'deployment is preferred to statefulset, daemonset and job_name',
      labels: { job_name: 'j', daemonset: 'd', statefulset: 's', deployment: 'api' },
      workload: 'api',
    },
    { name: 'statefulset is preferred to daemonset', labels: { daemonset: 'd', statefulset: 's' }, workload: 's' },
    { name: 'an empty workload label counts as absent', labels: { deployment: '', pod: 'db-0' }, workload: 'db' },
    {
      name: 'a Deployment pod loses its ReplicaSet hash and pod suffix',
      labels: { pod: 'checkout-7d9f8b6c5-x2x9k' },
      workload: 'checkout',
    },
    {
      name: 'a Deployment pod with a 10-character hash loses both suffixes',
      labels: { pod: 'api-server-5f7b9c8d4b-7xq2z' },
      workload: 'api-server',
    },
    { name: 'a StatefulSet pod loses its ordinal', labels: { pod: 'db-0' }, workload: 'db' },
    {
      name: 'a StatefulSet pod with a two-digit ordinal loses it',
      labels: { pod: 'kafka-broker-12' },
      workload: 'kafka-broker',
    },
    {
      name: 'a DaemonSet pod loses its random suffix',
      labels: { pod: 'node-exporter-x7kq2' },
      workload: 'node-exporter',
    },
    { name: 'an ordinary name ending in a word keeps it', labels: { pod: 'my-app-cache' }, workload: 'my-app-cache' },
    {
      name: 'a five-letter word with vowels is not a generated suffix',
      labels: { pod: 'my-app-proxy' },
      workload: 'my-app-proxy',
    },
    {
      name: 'a suffix with characters outside the generated alphabet is kept',
      labels: { pod: 'web-a1b3c' },
      workload: 'web-a1b3c',
    },
    { name: 'a four-character tail is not a generated suffix', labels: { pod: 'web-x7kq' }, workload: 'web-x7kq' },
    { name: 'a name without a dash is kept', labels: { pod: 'standalone' }, workload: 'standalone' },
    { name: 'a bare ordinal is not stripped to nothing', labels: { pod: '0' }, workload: '0' },
    { name: 'no workload label and no pod gives null', labels: { namespace: 'shop' }, workload: null },
    { name: 'an empty pod label gives null', labels: { pod: '' }, workload: null },
  ];
  for (const { name, labels, workload } of cases) {
    it(name, () => {
      assert.equal(workloadOf(labels), workload);
    });
  }
});

describe('cooldownKey', () => {
  const cases: { name: string; alert: Alert; rule: Rule; key: string }[] = [
    {
      name: 'defaults to rule, namespace and workload',
      alert: alertWith({ namespace: 'shop', pod: 'checkout-7d9f8b6c5-x2x9k' }),
      rule: ruleWith(),
      key: 'crashloop:shop/checkout',
    },
    {
      name: 'uses the deployment label rather than the pod name',
      alert: alertWith({ namespace: 'shop', deployment: 'checkout-v2', pod: 'checkout-7d9f8b6c5-x2x9k' }),
      rule: ruleWith(),
      key: 'crashloop:shop/checkout-v2',
    },
    {
      name: 'strips a StatefulSet ordinal',
      alert: alertWith({ namespace: 'data', pod: 'db-0' }),
      rule: ruleWith(),
      key: 'crashloop:data/db',
    },
    {
      name: 'leaves the namespace empty when the alert has none',
      alert: alertWith({ pod: 'db-1' }),
      rule: ruleWith(),
      key: 'crashloop:/db',
    },
    {
      name: 'falls back to the fingerprint without any workload',
      alert: alertWith({ alertname: 'NodeDown', instance: 'n1' }, 'feedfacecafebeef'),
      rule: ruleWith(),
      key: 'crashloop:fingerprint/feedfacecafebeef',
    },
    {
      name: 'uses the cooldown_key labels in their order when the rule lists them',
      alert: alertWith({ namespace: 'shop', pod: 'checkout-7d9f8b6c5-x2x9k', service: 'checkout' }),
      rule: ruleWith({ cooldownKey: ['service', 'namespace'] }),
      key: 'crashloop:service=checkout,namespace=shop',
    },
    {
      name: 'gives a missing cooldown_key label an empty value',
      alert: alertWith({ namespace: 'shop' }),
      rule: ruleWith({ cooldownKey: ['namespace', 'cluster'] }),
      key: 'crashloop:namespace=shop,cluster=',
    },
    {
      name: 'does not read inherited properties as labels',
      alert: alertWith({ namespace: 'shop' }),
      rule: ruleWith({ cooldownKey: ['constructor'] }),
      key: 'crashloop:constructor=',
    },
  ];
  for (const { name, alert, rule, key } of cases) {
    it(name, () => {
      assert.equal(cooldownKey(alert, rule), key);
    });
  }

  it('gives two crash-looping pods of one Deployment the same key', () => {
    const first = alertWith({ namespace: 'shop', pod: 'checkout-7d9f8b6c5-x2x9k' }, '1111111111111111');
    const second = alertWith({ namespace: 'shop', pod: 'checkout-7d9f8b6c5-b4mzp' }, '2222222222222222');
    assert.equal(cooldownKey(first, ruleWith()), cooldownKey(second, ruleWith()));
  });

  it('gives pods of two ReplicaSets of one Deployment the same key', () => {
    const old = alertWith({ namespace: 'shop', pod: 'checkout-7d9f8b6c5-x2x9k' });
    const rolledOut = alertWith({ namespace: 'shop', pod: 'checkout-5c8d7f9b6d-q7w2n' });
    assert.equal(cooldownKey(old, ruleWith()), cooldownKey(rolledOut, ruleWith()));
  });

  it('gives the same workload in another namespace another key', () => {
    const shop = alertWith({ namespace: 'shop', pod: 'checkout-7d9f8b6c5-x2x9k' });
    const staging = alertWith({ namespace: 'staging', pod: 'checkout-7d9f8b6c5-x2x9k' });
    assert.notEqual(cooldownKey(shop, ruleWith()), cooldownKey(staging, ruleWith()));
  });

  it('gives the same workload under another rule another key', () => {
    const alert = alertWith({ namespace: 'shop', pod: 'checkout-7d9f8b6c5-x2x9k' });
    assert.notEqual(cooldownKey(alert, ruleWith({ name: 'crashloop' })), cooldownKey(alert, ruleWith({ name: 'oom' })));
  });
});

describe('workflowNameFor', () => {
  const claimedAt = 1_700_000_000_000;
  const cases: { name: string; rule: Rule; prefix: string }[] = [
    {
      name: 'uses the rule name for a template workflow',
      rule: ruleWith({ name: 'crashloop' }),
      prefix: 'kube-sentinel-crashloop-',
    },
    {
      name: 'uses workflow_name for an inline workflow',
      rule: ruleWith({ name: 'crashloop', workflowName: 'restart-pod' }),
      prefix: 'kube-sentinel-restart-pod-',
    },
    {
      name: 'lowercases and replaces characters outside DNS-1123',
      rule: ruleWith({ name: 'Complex Failure_Recovery!!' }),
      prefix: 'kube-sentinel-complex-failure-recovery-',
    },
    {
      name: 'collapses runs of dashes and trims them',
      rule: ruleWith({ name: '--a..b--' }),
      prefix: 'kube-sentinel-a-b-',
    },
    {
      name: 'falls back to a fixed prefix when nothing survives sanitizing',
      rule: ruleWith({ name: 'ÄÖÜ' }),
      prefix: 'kube-sentinel-workflow-',
    },
  ];
  for (const { name, rule, prefix } of cases) {
    it(name, () => {
      const workflowName = workflowNameFor(rule, 'key', claimedAt);
      assert.ok(workflowName.startsWith(prefix), workflowName);
      assert.match(workflowName.slice(prefix.length), /^[0-9a-f]{10}$/);
    });
  }

  const longNames = [
    'a'.repeat(100),
    `${'abc-'.repeat(9)}defghij`,
    // Truncation lands right after a dash here: it must not leave `--` before the suffix.
    `${'x'.repeat(37)}-yyyy`,
    'payments-database-connection-pool-exhausted-recovery',
  ];
  for (const ruleName of longNames) {
    it(`truncates the ${ruleName.length}-character rule name "${ruleName.slice(0, 20)}…" to a valid 63-character name`, () => {
      const workflowName = workflowNameFor(ruleWith({ name: ruleName }), 'key', claimedAt);
      assert.ok(workflowName.length <= 63, `${workflowName} is ${workflowName.length} characters`);
      assert.match(workflowName, DNS1123_LABEL);
      assert.doesNotMatch(workflowName, /--/);
    });
  }

  it('is deterministic: the same claim gives the same name', () => {
    const rule = ruleWith();
    assert.equal(
      workflowNameFor(rule, 'crashloop:shop/checkout', claimedAt),
      workflowNameFor(ruleWith(), 'crashloop:shop/checkout', claimedAt),
    );
  });

  it('gives a new claim time a new name', () => {
    const rule = ruleWith();
    assert.notEqual(
      workflowNameFor(rule, 'crashloop:shop/checkout', claimedAt),
      workflowNameFor(rule, 'crashloop:shop/checkout', claimedAt + 1),
    );
  });

  it('gives another cooldown key a new name', () => {
    const rule = ruleWith();
    assert.notEqual(
      workflowNameFor(rule, 'crashloop:shop/checkout', claimedAt),
      workflowNameFor(rule, 'crashloop:shop/cart', claimedAt),
    );
  });

  it('does not confuse key and time that concatenate alike', () => {
    const rule = ruleWith();
    assert.notEqual(workflowNameFor(rule, 'k1', 23), workflowNameFor(rule, 'k', 123));
  });
});
