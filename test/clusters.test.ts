/**
 * The --clusters file (SPEC §10): what it may say, what it defaults, and a clear ConfigError (exit
 * 2 at start) naming the file, the field and the value for every problem in it.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import pino from 'pino';
import { stringify } from 'yaml';
import { connectClusters, loadClusters } from '../src/clusters.js';
import { loadConfig } from '../src/config.js';
import { ConfigError } from '../src/errors.js';
import { startServer } from '../src/server.js';
import { TEST_RULES } from './support/app.js';
import { writeKubeconfig } from './support/kubeconfig.js';

const SERVER = 'http://127.0.0.1:1';

/** A folder with a kubeconfig (contexts `fake-kube`) in `k/kubeconfig`, and `file` written with `content`. */
function folder(content: string | object, name = 'clusters.yaml'): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'ks-clusters-file-'));
  mkdirSync(join(dir, 'k'));
  writeKubeconfig(join(dir, 'k'), SERVER, 'token');
  const file = join(dir, name);
  writeFileSync(file, typeof content === 'string' ? content : stringify(content));
  return { dir, file };
}

/** The ConfigError loading (and connecting) the file gives; fails the test when there is none. */
async function problemOf(content: string | object, env: Record<string, string> = {}): Promise<string> {
  const { file } = folder(content);
  try {
    await connectClusters(loadClusters(file), loadConfig([], env), env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `a ConfigError, not ${String(err)}`);
    assert.equal(err.exitCode, 2);
    assert.ok(err.message.startsWith(`invalid --clusters ${file}: `), err.message);
    return err.message.slice(`invalid --clusters ${file}: `.length);
  }
  return assert.fail('the file was accepted');
}

const two = (extra: object = {}) => ({
  default: 'a',
  clusters: [
    { name: 'a', kubeconfig: 'k/kubeconfig' },
    { name: 'b', kubeconfig: 'k/kubeconfig' },
  ],
  ...extra,
});

describe('the --clusters file', () => {
  it('is read as YAML or JSON, with kubeconfigs relative to its folder, the label `cluster` by default', () => {
    const { dir, file } = folder(JSON.stringify(two()), 'clusters.json');
    const clusters = loadClusters(file);
    assert.deepEqual(
      { label: clusters.label, defaultCluster: clusters.defaultCluster, names: clusters.names },
      { label: 'cluster', defaultCluster: 'a', names: ['a', 'b'] },
    );
    assert.equal(clusters.clusters[0]?.kubeconfig, join(dir, 'k', 'kubeconfig'));
  });

  it('may leave out the default when there is one cluster, and a cluster may use the ambient kubeconfig with a context of it', async () => {
    const { dir, file } = folder({ label: 'k8s_cluster', clusters: [{ name: 'only', context: 'fake-kube' }] });
    const clusters = loadClusters(file);
    assert.deepEqual([clusters.label, clusters.defaultCluster], ['k8s_cluster', 'only']);
    const connected = await connectClusters(
      clusters,
      loadConfig(['--kubeconfig', join(dir, 'k', 'kubeconfig')], {}),
      {},
    );
    assert.deepEqual(
      connected.map((cluster) => [cluster.name, cluster.kube.server]),
      [['only', SERVER]],
    );
  });

  it('is a setting of its own: --clusters, or KUBE_SENTINEL_CLUSTERS', () => {
    assert.equal(loadConfig(['--clusters', '/etc/ks/clusters.yaml'], {}).clusters, '/etc/ks/clusters.yaml');
    assert.equal(loadConfig([], { KUBE_SENTINEL_CLUSTERS: '/c.yaml' }).clusters, '/c.yaml');
    assert.equal(loadConfig([], {}).clusters, undefined);
  });

  describe('refuses, naming the file, the field and the value', () => {
    const cases: [string, string | object, RegExp][] = [
      ['text that is not YAML', 'clusters: [a\n  b: {', /^not YAML or JSON: /],
      ['a list instead of a mapping', '- a\n- b\n', /^expected a mapping with clusters/],
      ['an unknown field', two({ defualt: 'a' }), /^unknown field defualt \(expected label, default, clusters\)$/],
      [
        'an unknown field of a cluster',
        { clusters: [{ name: 'a', kubconfig: 'x' }] },
        /^unknown field clusters\[0\]\.kubconfig \(expected name, kubeconfig, context\)$/,
      ],
      ['no clusters', { clusters: [] }, /^clusters \[\]: expected a non-empty list$/],
      ['a cluster without a name', { clusters: [{ kubeconfig: 'k/kubeconfig' }] }, /^clusters\[0\]\.name is missing$/],
      [
        'a name that is not a DNS label',
        { clusters: [{ name: 'Prod_EU' }] },
        /^clusters\[0\]\.name "Prod_EU": must be a DNS-1123 label/,
      ],
      [
        'a duplicate name',
        { default: 'a', clusters: [{ name: 'a' }, { name: 'b' }, { name: 'a' }] },
        /^clusters\[2\]\.name "a": a duplicate of clusters\[0\]\.name$/,
      ],
      [
        'no default with two clusters',
        { clusters: [{ name: 'a' }, { name: 'b' }] },
        /^default is missing: with 2 clusters, name one of a, b$/,
      ],
      ['a default not listed', two({ default: 'c' }), /^default "c" is not one of the clusters \(a, b\)$/],
      ['a label that is no label name', two({ label: 'my-cluster' }), /^label "my-cluster" is not a label name/],
      [
        'an empty kubeconfig',
        { clusters: [{ name: 'a', kubeconfig: '' }] },
        /^clusters\[0\]\.kubeconfig "": expected a non-empty string$/,
      ],
    ];
    for (const [what, content, expected] of cases) {
      it(what, async () => assert.match(await problemOf(content), expected));
    }

    it('a file it cannot read', () => {
      const file = join(tmpdir(), 'no-such-clusters-file.yaml');
      assert.throws(() => loadClusters(file), {
        name: 'ConfigError',
        message: `invalid --clusters ${file}: cannot read it: ENOENT`,
      });
    });

    it('a kubeconfig that does not exist', async () => {
      const problem = await problemOf({ clusters: [{ name: 'a', kubeconfig: 'missing.yaml' }] });
      assert.match(problem, /^clusters\[0\]\.kubeconfig \(a\): \/.*\/missing\.yaml: cannot read it: ENOENT$/);
    });

    it('a kubeconfig that does not load', async () => {
      const { dir, file } = folder({ clusters: [{ name: 'a', kubeconfig: 'broken.yaml' }] });
      writeFileSync(join(dir, 'broken.yaml'), 'just text\n');
      await assert.rejects(connectClusters(loadClusters(file), loadConfig([], {}), {}), {
        name: 'ConfigError',
        message: new RegExp(
          `^invalid --clusters ${file}: clusters\\[0\\]\\.kubeconfig \\(a\\): .*broken\\.yaml: not a kubeconfig`,
        ),
      });
    });

    it('a context the kubeconfig does not have', async () => {
      const problem = await problemOf({ clusters: [{ name: 'a', kubeconfig: 'k/kubeconfig', context: 'prod' }] });
      assert.match(
        problem,
        /^clusters\[0\]\.context \(a\): .*kubeconfig: context "prod" is not among its contexts \(fake-kube\)$/,
      );
    });

    it('a cluster without a kubeconfig when there is no ambient one', async () => {
      assert.match(
        await problemOf({ clusters: [{ name: 'a' }] }),
        /^clusters\[0\] \(a\): no kubeconfig, and there is no ambient one \(--kubeconfig, KUBECONFIG, or in-cluster in a pod\)$/,
      );
    });
  });

  it('stops serve before it listens (the CLI exits 2 on a ConfigError)', async () => {
    const { dir, file } = folder(two({ default: 'c' }));
    writeFileSync(join(dir, 'rules.yaml'), TEST_RULES);
    const config = loadConfig(['--rules', join(dir, 'rules.yaml'), '--clusters', file, '--port', '0'], {});
    await assert.rejects(startServer(config, {}, pino({ level: 'silent' })), {
      name: 'ConfigError',
      message: `invalid --clusters ${file}: default "c" is not one of the clusters (a, b)`,
    });
  });
});
