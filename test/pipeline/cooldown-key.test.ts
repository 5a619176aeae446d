import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Alert } from '../../src/alert.js';
import { cooldownKey, workflowNameFor, workloadOf, workloadRefOf } from '../../src/pipeline/cooldown-key.js';
import { REMEDIATION_DEFAULTS } from '../../src/rules/parse.js';
import type { Rule } from '../../src/rules/types.js';
import { Random } from '../support/fuzz.js';

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
      ...REMEDIATION_DEFAULTS,
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

describe('workloadRefOf: the workload, and the kinds an opt-out is read from', () => {
  const cases: { name: string; labels: Record<string, string>; workload: string; kinds: string[] }[] = [
    {
      name: 'a deployment label names a Deployment',
      labels: { deployment: 'api', pod: 'db-0' },
      workload: 'api',
      kinds: ['Deployment'],
    },
    {
      name: 'a statefulset label names a StatefulSet',
      labels: { statefulset: 'db' },
      workload: 'db',
      kinds: ['StatefulSet'],
    },
    {
      name: 'a daemonset label names a DaemonSet',
      labels: { daemonset: 'agent' },
      workload: 'agent',
      kinds: ['DaemonSet'],
    },
    {
      name: 'a Job cannot opt out: no kind to read',
      labels: { job_name: 'backup-1' },
      workload: 'backup-1',
      kinds: [],
    },
    {
      name: 'a pod with a pod-template hash and a random suffix is a Deployment’s',
      labels: { pod: 'checkout-7d9f8b6c5-x2x9k' },
      workload: 'checkout',
      kinds: ['Deployment'],
    },
    {
      name: 'a pod with an ordinal is a StatefulSet’s',
      labels: { pod: 'db-0' },
      workload: 'db',
      kinds: ['StatefulSet'],
    },
    {
      name: 'a pod with a random suffix is a DaemonSet’s',
      labels: { pod: 'agent-x2x9k' },
      workload: 'agent',
      kinds: ['DaemonSet'],
    },
    {
      name: 'a five-digit suffix of the generated alphabet may be an ordinal or a DaemonSet’s',
      labels: { pod: 'web-24567' },
      workload: 'web',
      kinds: ['StatefulSet', 'DaemonSet'],
    },
    {
      // The API server cuts `<deployment>-<hash>-` to 58 characters before the random 5.
      name: 'a 63-character pod of a long-named Deployment whose hash ran into the random suffix is that Deployment’s',
      labels: { pod: 'payments-reconciliation-worker-eu-west-1-primary-7d9f8b6c5x2k9p' },
      workload: 'payments-reconciliation-worker-eu-west-1-primary',
      kinds: ['Deployment'],
    },
    {
      name: 'a 63-character pod whose hash was cut off entirely may be a Deployment’s or a DaemonSet’s',
      labels: { pod: 'payments-reconciliation-worker-eu-west-1-primary-shardaab-x2k9p' },
      workload: 'payments-reconciliation-worker-eu-west-1-primary-shardaab',
      kinds: ['Deployment', 'DaemonSet'],
    },
    {
      name: 'a shorter pod with a long generated-looking suffix keeps its name',
      labels: { pod: 'cache-bcdfghj' },
      workload: 'cache-bcdfghj',
      kinds: ['Deployment', 'StatefulSet', 'DaemonSet'],
    },
    {
      name: 'a pod name no controller shape fits may be any of the three',
      labels: { pod: 'standalone' },
      workload: 'standalone',
      kinds: ['Deployment', 'StatefulSet', 'DaemonSet'],
    },
  ];
  for (const { name, labels, workload, kinds } of cases) {
    it(name, () => {
      const ref = workloadRefOf(labels);
      assert.deepEqual(ref && { name: ref.name, kinds: [...ref.kinds] }, { name: workload, kinds });
      assert.equal(ref?.name, workloadOf(labels), 'the same workload as the cooldown key’s');
    });
  }

  it('is null when the alert names no workload and no pod', () => {
    assert.equal(workloadRefOf({ namespace: 'shop' }), null);
  });
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
      key: 'crashloop:fingerprint:feedfacecafebeef',
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
      name: 'percent-encodes the separators and % in cooldown_key values, and nothing else',
      alert: alertWith({ cluster: 'eu/1,a=b:c', team: '50% ünïcødé 😀' }),
      rule: ruleWith({ cooldownKey: ['cluster', 'team'] }),
      key: 'crashloop:cluster=eu%2F1%2Ca%3Db%3Ac,team=50%25 ünïcødé 😀',
    },
    {
      name: 'percent-encodes the separators in the namespace and the workload',
      alert: alertWith({ namespace: 'a/b:c', deployment: 'd/e%f' }),
      rule: ruleWith(),
      key: 'crashloop:a%2Fb%3Ac/d%2Fe%25f',
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

  it('keeps cooldown_key values apart that differ only in where a separator falls', () => {
    const rule = ruleWith({ cooldownKey: ['cluster', 'team'] });
    assert.notEqual(
      cooldownKey(alertWith({ cluster: '1,team=2', team: '3' }), rule),
      cooldownKey(alertWith({ cluster: '1', team: '2,team=3' }), rule),
    );
  });

  it('keeps namespace and workload apart that differ only in where a slash falls', () => {
    assert.notEqual(
      cooldownKey(alertWith({ namespace: 'a/b', deployment: 'c' }), ruleWith()),
      cooldownKey(alertWith({ namespace: 'a', deployment: 'b/c' }), ruleWith()),
    );
  });

  it('never gives a workload the key of an alert that has none', () => {
    assert.notEqual(
      cooldownKey(alertWith({ namespace: 'fingerprint', deployment: 'feedfacecafebeef' }), ruleWith()),
      cooldownKey(alertWith({ alertname: 'NodeDown' }, 'feedfacecafebeef'), ruleWith()),
    );
  });

  it('hashes a key past 512 characters into a form no readable key has', () => {
    const long = 'x'.repeat(600);
    const key = cooldownKey(alertWith({ namespace: 'shop', deployment: long }), ruleWith());
    assert.match(key, /^crashloop:sha256:[0-9a-f]{64}$/);
    assert.notEqual(key, cooldownKey(alertWith({ namespace: 'sha256', deployment: key.slice(17) }), ruleWith()));
    assert.notEqual(key, cooldownKey(alertWith({ namespace: 'shop', deployment: `${long}y` }), ruleWith()));
  });

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

/**
 * Property: over label values made of separators, `=`, `,`, `/`, `:`, `%`, encoded-looking
 * sequences and unicode, a key decodes back to exactly the values it was made from, so two
 * different label sets never share a key, whichever form (default, cooldown_key, fingerprint,
 * hashed) each one takes.
 */
describe('cooldownKey over tricky values', () => {
  const PIECES = [
    '',
    'a',
    'shop',
    '1',
    ',',
    '=',
    '/',
    ':',
    '%',
    '%2F',
    '%25',
    '%3D',
    'team=',
    ',team=',
    '/x',
    'é',
    '日本',
    '😀',
    ' ',
    '-',
    '\n',
    'x'.repeat(200),
  ];

  function value(random: Random): string {
    let text = '';
    for (let i = random.int(5); i > 0; i--) text += random.pick(PIECES);
    return text;
  }

  function decodePart(part: string): string {
    assert.doesNotMatch(part, /%(?![0-9A-F]{2})/, `a bare % in ${JSON.stringify(part)}`);
    return part.replace(/%([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
  }

  /** What a readable key stands for, read back from it alone; null for a hashed key. */
  function decode(key: string, rule: Rule): unknown {
    assert.ok(key.startsWith(`${rule.name}:`), key);
    const rest = key.slice(rule.name.length + 1);
    if (rest.startsWith('sha256:')) return null;
    if (rest.startsWith('fingerprint:')) return { fingerprint: decodePart(rest.slice('fingerprint:'.length)) };
    assert.doesNotMatch(rest, /:/, key);
    if (rule.remediation.cooldownKey !== null) {
      return Object.fromEntries(
        rest.split(',').map((pair) => {
          const [name = '', encoded, ...more] = pair.split('=');
          assert.equal(more.length, 0, key);
          return [name, decodePart(encoded ?? '')];
        }),
      );
    }
    const parts = rest.split('/');
    assert.equal(parts.length, 2, key);
    return { namespace: decodePart(parts[0]!), workload: decodePart(parts[1]!) };
  }

  /** What the key of ALERT under RULE must stand for. */
  function meaning(alert: Alert, rule: Rule): unknown {
    const names = rule.remediation.cooldownKey;
    if (names !== null) return Object.fromEntries(names.map((name) => [name, alert.labels[name] ?? '']));
    const workload = workloadOf(alert.labels);
    if (workload === null) return { fingerprint: alert.fingerprint };
    return { namespace: alert.labels.namespace ?? '', workload };
  }

  for (const rule of [ruleWith(), ruleWith({ cooldownKey: ['cluster', 'team'] })]) {
    const form = rule.remediation.cooldownKey === null ? 'namespace + workload' : 'cooldown_key [cluster, team]';
    it(`decodes every key back to what it stands for, and no key stands for two things (${form})`, () => {
      const random = new Random(20_240_610);
      const seen = new Map<string, string>();
      let hashed = 0;
      for (let i = 0; i < 5000; i++) {
        const labels: Record<string, string> = {};
        for (const name of ['namespace', 'deployment', 'pod', 'cluster', 'team']) {
          if (random.chance(0.6)) labels[name] = value(random);
        }
        const alert = alertWith(labels, value(random));
        const key = cooldownKey(alert, rule);
        const expected = JSON.stringify(meaning(alert, rule));
        const decoded = decode(key, rule);
        if (decoded === null) hashed++;
        else assert.equal(JSON.stringify(decoded), expected, key);
        const before = seen.get(key);
        assert.ok(before === undefined || before === expected, `${key} stands for ${before} and ${expected}`);
        seen.set(key, expected);
      }
      assert.ok(hashed > 0 && hashed < 5000, `${hashed} hashed keys: both forms must be exercised`);
      assert.ok(seen.size > 1000, `only ${seen.size} distinct keys`);
    });
  }
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

describe('cooldownKey with --clusters', () => {
  const alert = alertWith({ namespace: 'shop', deployment: 'api' });

  it('starts with the cluster, so the same workload in two clusters has two keys', () => {
    assert.equal(cooldownKey(alert, ruleWith(), 'east'), 'east/crashloop:shop/api');
    assert.equal(cooldownKey(alert, ruleWith(), 'west'), 'west/crashloop:shop/api');
  });

  it('is unchanged without a cluster (single-cluster keys do not move on upgrade)', () => {
    assert.equal(cooldownKey(alert, ruleWith()), 'crashloop:shop/api');
  });

  it('names the cluster in every form: cooldown_key labels, the fingerprint, and the hash of a long key', () => {
    assert.equal(
      cooldownKey(alertWith({ service: 'db' }), ruleWith({ cooldownKey: ['service'] }), 'east'),
      'east/crashloop:service=db',
    );
    assert.equal(cooldownKey(alertWith({}), ruleWith(), 'east'), 'east/crashloop:fingerprint:0123456789abcdef');
    const long = alertWith({ namespace: 'shop', deployment: 'x'.repeat(600) });
    const east = cooldownKey(long, ruleWith(), 'east');
    assert.match(east, /^east\/crashloop:sha256:[0-9a-f]{64}$/);
    assert.notEqual(east.slice('east/'.length), cooldownKey(long, ruleWith(), 'west').slice('west/'.length));
  });
});
