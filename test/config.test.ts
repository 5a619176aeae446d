import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULTS, loadConfig } from '../src/config.js';
import { ConfigError } from '../src/errors.js';

describe('settings', () => {
  it('defaults to the values SPEC §2 names', () => {
    const config = loadConfig([], {});
    assert.equal(config.port, 8080);
    assert.equal(config.host, '0.0.0.0');
    assert.equal(config.rules, 'rules/');
    assert.equal(config.redisUrl, undefined);
    assert.equal(config.dryRun, false);
    assert.equal(config.workflowNamespace, 'argo');
    assert.equal(config.cooldownStoreFailure, 'closed');
    assert.equal(config.maxWorkflowsPerMinute, 30);
    assert.equal(config.submitTimeoutMs, 10_000);
    assert.equal(config.pendingLeaseMs, 30_000);
    assert.equal(config.bodyLimitBytes, DEFAULTS.bodyLimitBytes);
  });

  it('reads environment variables, and flags win over them', () => {
    const env = {
      PORT: '9000',
      REDIS_URL: 'redis://r:6379',
      KUBE_SENTINEL_SUBMIT_TIMEOUT: '2s',
      KUBE_SENTINEL_DRY_RUN: 'true',
    };
    const fromEnv = loadConfig([], env);
    assert.equal(fromEnv.port, 9000);
    assert.equal(fromEnv.redisUrl, 'redis://r:6379');
    assert.equal(fromEnv.submitTimeoutMs, 2000);
    assert.equal(fromEnv.dryRun, true);
    const flags = loadConfig(['--port', '9100', '--submit-timeout=500ms', '--dry-run=false'], env);
    assert.equal(flags.port, 9100);
    assert.equal(flags.submitTimeoutMs, 500);
    assert.equal(flags.dryRun, false);
  });

  it('bounds the load: alerts in flight, request and keep-alive timeouts, connections', () => {
    const defaults = loadConfig([], {});
    assert.equal(defaults.maxAlertsInFlight, 20_000);
    assert.equal(defaults.requestTimeoutMs, 30_000);
    assert.equal(defaults.keepAliveTimeoutMs, 72_000);
    assert.equal(defaults.maxConnections, 512);
    const env = {
      KUBE_SENTINEL_MAX_ALERTS_IN_FLIGHT: '5000',
      KUBE_SENTINEL_REQUEST_TIMEOUT: '1m',
      KUBE_SENTINEL_KEEP_ALIVE_TIMEOUT: '5s',
      KUBE_SENTINEL_MAX_CONNECTIONS: '64',
    };
    const fromEnv = loadConfig([], env);
    assert.deepEqual(
      [fromEnv.maxAlertsInFlight, fromEnv.requestTimeoutMs, fromEnv.keepAliveTimeoutMs, fromEnv.maxConnections],
      [5000, 60_000, 5000, 64],
    );
    const flags = loadConfig(['--max-alerts-in-flight=100', '--request-timeout', '10s', '--max-connections', '8'], env);
    assert.deepEqual([flags.maxAlertsInFlight, flags.requestTimeoutMs, flags.maxConnections], [100, 10_000, 8]);
  });

  it('reads a Redis Sentinel or a Redis Cluster as host:port lists, IPv6 in brackets', () => {
    const sentinel = loadConfig(
      ['--redis-sentinels', 's1:26379, [::1]:26380', '--redis-master-name', 'mymaster', '--redis-wait-replicas', '1'],
      {},
    );
    assert.deepEqual(sentinel.redisSentinels, [
      { host: 's1', port: 26379 },
      { host: '::1', port: 26380 },
    ]);
    assert.equal(sentinel.redisMasterName, 'mymaster');
    assert.equal(sentinel.redisWaitReplicas, 1);
    const cluster = loadConfig([], { KUBE_SENTINEL_REDIS_CLUSTER_NODES: 'redis-0:6379,redis-1:6379' });
    assert.deepEqual(cluster.redisClusterNodes, [
      { host: 'redis-0', port: 6379 },
      { host: 'redis-1', port: 6379 },
    ]);
    assert.equal(cluster.redisWaitReplicas, 0, 'WAIT is off by default');
  });

  it('reads escalation URLs from a repeated flag or a comma-separated variable; a flag wins over the variable', () => {
    const env = { KUBE_SENTINEL_ESCALATION_URLS: 'http://am-0:9093, http://am-1:9093/,' };
    assert.deepEqual(loadConfig([], env).escalationUrls, ['http://am-0:9093', 'http://am-1:9093']);
    const flagged = loadConfig(
      ['--escalation-url', 'https://am.example.com', '--escalation-url=http://am-2:9093'],
      env,
    );
    assert.deepEqual(flagged.escalationUrls, ['https://am.example.com', 'http://am-2:9093']);
    assert.deepEqual(loadConfig([], {}).escalationUrls, []);
    assert.equal(loadConfig(['--escalation-ttl', '30m'], {}).escalationTtlMs, 1_800_000);
    assert.equal(loadConfig([], {}).escalationTtlMs, 3_600_000);
    assert.equal(loadConfig(['--argo-ui-url', 'https://argo.example.com/'], {}).argoUiUrl, 'https://argo.example.com');
  });

  const bad: [string[], Record<string, string>, RegExp][] = [
    [['--escalation-url', 'am:9093'], {}, /--escalation-url: expected an http\(s\) URL, got "am:9093"/],
    [
      [],
      { KUBE_SENTINEL_ESCALATION_URLS: 'http://am:9093,ftp://x' },
      /KUBE_SENTINEL_ESCALATION_URLS: expected an http\(s\) URL/,
    ],
    [['--argo-ui-url', 'https://argo?x=1'], {}, /--argo-ui-url: expected a URL without a query/],
    [['--escalation-ttl', '0s'], {}, /--escalation-ttl/],
    [['--max-alerts-in-flight', '0'], {}, /--max-alerts-in-flight: expected a whole number, at least 1, got "0"/],
    [[], { KUBE_SENTINEL_REQUEST_TIMEOUT: '30' }, /KUBE_SENTINEL_REQUEST_TIMEOUT: expected a duration/],
    [['--keep-alive-timeout', 'forever'], {}, /--keep-alive-timeout/],
    [['--max-connections', '-5'], {}, /--max-connections/],
    [['--port', 'x'], {}, /--port/],
    [[], { PORT: '99999' }, /PORT/],
    [['--max-workflows-per-minute', '-1'], {}, /--max-workflows-per-minute/],
    [['--cooldown-store-failure', 'sometimes'], {}, /--cooldown-store-failure.*closed, open/],
    [['--submit-timeout', '10'], {}, /--submit-timeout/],
    [['--redis-url', 'localhost:6379'], {}, /--redis-url/],
    [['--workflow-namespace', 'Argo'], {}, /--workflow-namespace/],
    [
      ['--redis-url', 'redis://a:6379', '--redis-cluster-nodes', 'b:7000'],
      {},
      /--redis-cluster-nodes: choose one Redis: --redis-url and --redis-cluster-nodes were both given/,
    ],
    [
      ['--redis-sentinels', 's:26379', '--redis-master-name', 'm'],
      { REDIS_URL: 'redis://a:6379' },
      /choose one Redis: REDIS_URL and --redis-sentinels/,
    ],
    [['--redis-sentinels', 's1:26379,s2:26379'], {}, /--redis-sentinels: needs --redis-master-name/],
    [['--redis-master-name', 'm'], {}, /--redis-master-name: is for Redis Sentinel/],
    [['--redis-cluster-nodes', 'a:7000,b'], {}, /--redis-cluster-nodes: expected host:port \(port 1–65535\), got "b"/],
    [['--redis-cluster-nodes', 'a:70000'], {}, /--redis-cluster-nodes: expected host:port/],
    [['--redis-cluster-nodes', ','], {}, /--redis-cluster-nodes: expected host:port/],
    [['--redis-wait-replicas', '1'], {}, /--redis-wait-replicas: needs a Redis/],
    [
      ['--redis-sentinel-password-file', '/etc/hostname', '--redis-cluster-nodes', 'a:7000'],
      {},
      /--redis-sentinel-password-file \(\/etc\/hostname\): is for --redis-sentinels/,
    ],
    [['--redis-wait-replicas', '-1', '--redis-url', 'redis://a'], {}, /--redis-wait-replicas: expected a whole number/],
    [
      ['--redis-password-file', '/etc/hostname', '--redis-url', 'redis://a'],
      {},
      /--redis-password-file \(\/etc\/hostname\): is for --redis-sentinels or --redis-cluster-nodes/,
    ],
    [['--redis-password-file', '/nonexistent/pw', '--redis-cluster-nodes', 'a:1'], {}, /cannot read \/nonexistent\/pw/],
    [['--log-level', 'verbose'], {}, /--log-level/],
    [['--nope'], {}, /unknown flag --nope/],
    [['--port'], {}, /--port: a value is required/],
    [[], { KUBE_SENTINEL_DRY_RUN: 'maybe' }, /KUBE_SENTINEL_DRY_RUN/],
    [['--workflow-service-account', 'a..b'], {}, /--workflow-service-account: expected a service account name/],
    [['--body-limit', '100'], {}, /--body-limit: expected a number of bytes, at least 1024, got "100"/],
    [
      ['--pending-lease', '2s', '--submit-timeout', '2s'],
      {},
      /--pending-lease: the pending lease \(2000 ms\) must be longer than the submit timeout \(2000 ms\)/,
    ],
    [
      ['--submit-timeout', '1m'],
      {},
      /--submit-timeout: the pending lease \(30000 ms\) must be longer than the submit timeout \(60000 ms\)/,
    ],
    [
      [],
      { KUBE_SENTINEL_PENDING_LEASE: '5s' },
      /KUBE_SENTINEL_PENDING_LEASE: .*longer than the submit timeout \(10000 ms\)/,
    ],
  ];
  for (const [args, env, message] of bad) {
    it(`refuses ${[...args, ...Object.entries(env).map(([k, v]) => `${k}=${v}`)].join(' ')} with one line naming it`, () => {
      assert.throws(
        () => loadConfig(args, env),
        (err: unknown) => err instanceof ConfigError && message.test(err.message) && !err.message.includes('\n'),
      );
    });
  }
});

describe('a credential in a bad setting', () => {
  it('is named but never echoed', () => {
    for (const args of [
      ['--basic-auth', 'no-colon-s3cret'],
      ['--auth-token', ''],
      ['--escalation-url', 'ftp://user:s3cret@am:9093'],
    ]) {
      assert.throws(
        () => loadConfig(args, {}),
        (err: unknown) =>
          err instanceof ConfigError &&
          err.message.startsWith(`invalid ${args[0]}:`) &&
          !err.message.includes('s3cret'),
      );
    }
  });
});
