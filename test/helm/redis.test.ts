/**
 * The chart's Redis Sentinel, Redis Cluster, password and waitReplicas values (SPEC §10): the
 * environment variables src/config.ts reads, the password Secret mounted as the file
 * KUBE_SENTINEL_REDIS_PASSWORD_FILE names, and the values that contradict each other refused in a
 * sentence before anything is installed.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { V1Container, V1Deployment, V1PodSpec, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import { loadConfig } from '../../src/config.js';
import { CHART_DIR, helm, type KubeObject, RELEASE_NAME, RELEASE_NAMESPACE, renderChart } from '../support/helm.js';

const SENTINELS = ['redis-node-0.redis-headless.redis.svc:26379', 'redis-node-1.redis-headless.redis.svc:26379'];
const CLUSTER_NODES = [
  'redis-cluster-0.redis-cluster-headless.redis.svc:6379',
  'redis-cluster-1.redis-cluster-headless.redis.svc:6379',
  '[fd00::7]:6379',
];

const SENTINEL = {
  replicaCount: 2,
  redis: {
    sentinel: { hosts: SENTINELS, masterName: 'mymaster' },
    password: { existingSecret: 'redis' },
    waitReplicas: 1,
  },
};

const CLUSTER = { replicaCount: 3, redis: { cluster: { nodes: CLUSTER_NODES } } };

interface KnativeService {
  spec: { template: { spec: V1PodSpec } };
}

/** The receiver's pod spec: the Deployment's, or the Knative Service's with knative.enabled. */
function podSpecOf(objects: KubeObject[]): V1PodSpec {
  const named = (kind: string, apiVersion: string) =>
    objects.find(
      (o) => o.kind === kind && o.apiVersion === apiVersion && (o.metadata as { name?: string }).name === RELEASE_NAME,
    );
  const deployment = named('Deployment', 'apps/v1') as V1Deployment | undefined;
  if (deployment) return deployment.spec?.template.spec ?? assert.fail('no pod spec');
  const knative = named('Service', 'serving.knative.dev/v1') as KnativeService | undefined;
  return knative?.spec.template.spec ?? assert.fail('no receiver Deployment or Knative Service');
}

function containerOf(spec: V1PodSpec): V1Container {
  return spec.containers.find((c) => c.name === 'kube-sentinel') ?? assert.fail('no kube-sentinel container');
}

function envOf(container: V1Container): Record<string, string | undefined> {
  return Object.fromEntries((container.env ?? []).map((variable) => [variable.name, variable.value]));
}

/**
 * The file a mounted Secret item lands at, as the kubelet lays it out: the mount's path, then the
 * item's path (or its key, without items).
 */
function mountedFiles(spec: V1PodSpec, container: V1Container): Map<string, { secret: string; key: string }> {
  const volumes = new Map<string, V1Volume>((spec.volumes ?? []).map((v) => [v.name, v]));
  const files = new Map<string, { secret: string; key: string }>();
  for (const mount of container.volumeMounts ?? ([] as V1VolumeMount[])) {
    const secret = volumes.get(mount.name)?.secret;
    if (!secret?.secretName) continue;
    for (const item of secret.items ?? []) {
      files.set(`${mount.mountPath}/${item.path}`, { secret: secret.secretName, key: item.key });
    }
  }
  return files;
}

/**
 * The rendered environment read by src/config.ts, with the password file (a path in the pod) swapped
 * for a local one holding PASSWORD: the receiver would start with these settings.
 */
function configOf(env: Record<string, string | undefined>, password?: string) {
  const dir = mkdtempSync(join(tmpdir(), 'ks-helm-redis-'));
  try {
    const local = { ...env };
    if (password !== undefined) {
      const file = join(dir, 'password');
      writeFileSync(file, `${password}\n`);
      local.KUBE_SENTINEL_REDIS_PASSWORD_FILE = file;
    }
    return loadConfig([], local);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('the chart pointed at a Redis Sentinel', () => {
  it('passes the sentinels and the master name in the two variables the receiver reads, and no REDIS_URL', async () => {
    const env = envOf(containerOf(podSpecOf(await renderChart(SENTINEL))));
    assert.equal(env.KUBE_SENTINEL_REDIS_SENTINELS, SENTINELS.join(','));
    assert.equal(env.KUBE_SENTINEL_REDIS_MASTER_NAME, 'mymaster');
    assert.equal('REDIS_URL' in env, false);
    assert.equal('KUBE_SENTINEL_REDIS_CLUSTER_NODES' in env, false);
    const config = configOf(env, 's3cret');
    assert.deepEqual(config.redisSentinels, [
      { host: 'redis-node-0.redis-headless.redis.svc', port: 26379 },
      { host: 'redis-node-1.redis-headless.redis.svc', port: 26379 },
    ]);
    assert.equal(config.redisMasterName, 'mymaster');
  });

  it('mounts the password Secret as the file KUBE_SENTINEL_REDIS_PASSWORD_FILE names, read-only', async () => {
    const spec = podSpecOf(await renderChart(SENTINEL));
    const container = containerOf(spec);
    const path =
      envOf(container).KUBE_SENTINEL_REDIS_PASSWORD_FILE ?? assert.fail('no KUBE_SENTINEL_REDIS_PASSWORD_FILE');
    assert.deepEqual(mountedFiles(spec, container).get(path), { secret: 'redis', key: 'redis-password' });
    assert.equal(container.volumeMounts?.find((m) => path.startsWith(`${m.mountPath}/`))?.readOnly, true);
    assert.equal(configOf(envOf(container), 's3cret').redisPassword, 's3cret');
  });

  it("mounts the sentinels' own password as the file KUBE_SENTINEL_REDIS_SENTINEL_PASSWORD_FILE names", async () => {
    const spec = podSpecOf(
      await renderChart({
        ...SENTINEL,
        redis: {
          ...SENTINEL.redis,
          sentinel: { ...SENTINEL.redis.sentinel, password: { existingSecret: 'sentinels', existingSecretKey: 'pw' } },
        },
      }),
    );
    const container = containerOf(spec);
    const env = envOf(container);
    const path =
      env.KUBE_SENTINEL_REDIS_SENTINEL_PASSWORD_FILE ?? assert.fail('no KUBE_SENTINEL_REDIS_SENTINEL_PASSWORD_FILE');
    assert.deepEqual(mountedFiles(spec, container).get(path), { secret: 'sentinels', key: 'pw' });
    assert.notEqual(path, env.KUBE_SENTINEL_REDIS_PASSWORD_FILE, "the servers' password is another file");
  });

  it('takes the password from another key of the Secret with redis.password.existingSecretKey', async () => {
    const spec = podSpecOf(
      await renderChart({
        ...SENTINEL,
        redis: { ...SENTINEL.redis, password: { existingSecret: 'r', existingSecretKey: 'pw' } },
      }),
    );
    const container = containerOf(spec);
    const path = envOf(container).KUBE_SENTINEL_REDIS_PASSWORD_FILE ?? '';
    assert.deepEqual(mountedFiles(spec, container).get(path), { secret: 'r', key: 'pw' });
  });

  it('passes redis.waitReplicas as KUBE_SENTINEL_REDIS_WAIT_REPLICAS', async () => {
    const env = envOf(containerOf(podSpecOf(await renderChart(SENTINEL))));
    assert.equal(env.KUBE_SENTINEL_REDIS_WAIT_REPLICAS, '1');
    assert.equal(configOf(env, 's3cret').redisWaitReplicas, 1);
  });
});

describe('the chart pointed at a Redis Cluster', () => {
  it('passes the nodes, IPv6 ones bracketed, in the variable the receiver reads, and no REDIS_URL', async () => {
    const env = envOf(containerOf(podSpecOf(await renderChart(CLUSTER))));
    assert.equal(env.KUBE_SENTINEL_REDIS_CLUSTER_NODES, CLUSTER_NODES.join(','));
    assert.equal('REDIS_URL' in env, false);
    assert.equal('KUBE_SENTINEL_REDIS_SENTINELS' in env, false);
    assert.deepEqual(configOf(env).redisClusterNodes, [
      { host: 'redis-cluster-0.redis-cluster-headless.redis.svc', port: 6379 },
      { host: 'redis-cluster-1.redis-cluster-headless.redis.svc', port: 6379 },
      { host: 'fd00::7', port: 6379 },
    ]);
  });

  it('mounts no password and waits for no replica unless asked', async () => {
    const spec = podSpecOf(await renderChart(CLUSTER));
    const env = envOf(containerOf(spec));
    assert.equal('KUBE_SENTINEL_REDIS_PASSWORD_FILE' in env, false);
    assert.equal(
      spec.volumes?.find((v) => v.name === 'redis-password'),
      undefined,
    );
    assert.equal(env.KUBE_SENTINEL_REDIS_WAIT_REPLICAS, '0');
  });

  it('mounts the password in a Knative Service too', async () => {
    const spec = podSpecOf(
      await renderChart({
        knative: { enabled: true, maxScale: 3 },
        redis: { cluster: { nodes: CLUSTER_NODES }, password: { existingSecret: 'redis-cluster' }, waitReplicas: 1 },
      }),
    );
    const container = containerOf(spec);
    const env = envOf(container);
    assert.equal(env.KUBE_SENTINEL_REDIS_CLUSTER_NODES, CLUSTER_NODES.join(','));
    assert.equal(env.KUBE_SENTINEL_REDIS_WAIT_REPLICAS, '1');
    const path = env.KUBE_SENTINEL_REDIS_PASSWORD_FILE ?? assert.fail('no KUBE_SENTINEL_REDIS_PASSWORD_FILE');
    assert.deepEqual(mountedFiles(spec, container).get(path), { secret: 'redis-cluster', key: 'redis-password' });
  });
});

describe('the chart’s Redis values refused in a sentence', () => {
  const both =
    'set only one of redis.enabled, redis.url, redis.existingSecret, redis.sentinel.hosts and redis.cluster.nodes';
  const refused: ReadonlyArray<{ what: string; set: string[]; message: string }> = [
    {
      what: 'a Sentinel and a Cluster at once, naming both',
      set: ['redis.sentinel.hosts={s-0:26379}', 'redis.sentinel.masterName=mymaster', 'redis.cluster.nodes={n-0:6379}'],
      message: `${both} (got redis.sentinel.hosts, redis.cluster.nodes): each names a cooldown store, and the replicas must share one`,
    },
    {
      what: 'the bundled Redis beside a Sentinel',
      set: ['redis.enabled=true', 'redis.sentinel.hosts={s-0:26379}', 'redis.sentinel.masterName=mymaster'],
      message: `${both} (got redis.enabled, redis.sentinel.hosts)`,
    },
    {
      what: 'a Redis URL beside a Cluster',
      set: ['redis.url=redis://cache:6379', 'redis.cluster.nodes={n-0:6379}'],
      message: `${both} (got redis.url, redis.cluster.nodes)`,
    },
    {
      what: 'sentinels without a master name',
      set: ['redis.sentinel.hosts={s-0:26379}'],
      message:
        'redis.sentinel.hosts needs redis.sentinel.masterName, the master the sentinels watch (their sentinel monitor <name>)',
    },
    {
      what: 'a master name without sentinels',
      set: ['redis.sentinel.masterName=mymaster'],
      message: 'redis.sentinel.masterName is for Redis Sentinel: set redis.sentinel.hosts too',
    },
    {
      what: 'a sentinel without a port',
      set: ['redis.sentinel.hosts={s-0:26379,s-1}', 'redis.sentinel.masterName=mymaster'],
      message:
        'redis.sentinel.hosts[1] must be host:port (port 1-65535, [address]:port for IPv6), such as redis-node-0.redis-headless.redis.svc:26379 (got "s-1")',
    },
    {
      what: 'a cluster node with a port out of range',
      set: ['redis.cluster.nodes={n-0:70000}'],
      message: 'redis.cluster.nodes[0] must be host:port (port 1-65535, [address]:port for IPv6)',
    },
    {
      what: "the sentinels' password without sentinels",
      set: ['redis.cluster.nodes={n-0:7000}', 'redis.sentinel.password.existingSecret=s'],
      message: "redis.sentinel.password.existingSecret is the sentinels' own password: set redis.sentinel.hosts",
    },
    {
      what: 'a password Secret beside a Redis URL, which carries its own',
      set: ['redis.url=redis://cache:6379', 'redis.password.existingSecret=redis'],
      message: "redis.password.existingSecret is the password of a Sentinel's or a Cluster's Redis servers",
    },
    {
      what: 'waitReplicas with the bundled Redis, which has no replicas',
      set: ['redis.enabled=true', 'redis.waitReplicas=1'],
      message:
        'redis.waitReplicas is 1, but the bundled Redis (redis.enabled) has no replicas, and every claim would fail closed: set redis.waitReplicas=0, or use a Sentinel or Cluster with replicas',
    },
    {
      what: 'waitReplicas without Redis',
      set: ['redis.waitReplicas=2'],
      message: 'redis.waitReplicas is 2, but there is no Redis whose replicas could acknowledge a claim',
    },
  ];
  /** The schema's own phrasings, which name a value but not what is wrong with it. */
  const terse = /Must (not )?validate|String length must be|Does not match pattern|does not match/;

  for (const { what, set, message } of refused) {
    it(what, async () => {
      const args = set.flatMap((s) => ['--set', s]);
      const template = await helm(['template', RELEASE_NAME, CHART_DIR, '--namespace', RELEASE_NAMESPACE, ...args]);
      assert.notEqual(template.status, 0, 'helm template rendered');
      assert.ok(template.stderr.includes(message), template.stderr);
      assert.doesNotMatch(template.stderr, terse);
      const lint = await helm(['lint', CHART_DIR, '--namespace', RELEASE_NAMESPACE, ...args]);
      assert.notEqual(lint.status, 0, `helm lint passed:\n${lint.stdout}${lint.stderr}`);
    });
  }

  it('refuses a negative waitReplicas by its type, naming the value', async () => {
    const result = await helm([
      'lint',
      CHART_DIR,
      '--set',
      'redis.cluster.nodes={n-0:6379}',
      '--set',
      'redis.waitReplicas=-1',
    ]);
    assert.notEqual(result.status, 0);
    assert.match(result.stdout + result.stderr, /redis\.waitReplicas: Must be greater than or equal to 0/);
  });
});
