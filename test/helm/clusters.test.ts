/**
 * The chart's `clusters` value (SPEC §10): the clusters file in a ConfigMap, the kubeconfigs in a
 * Secret, both mounted and passed as KUBE_SENTINEL_CLUSTERS; the file is what src/clusters.ts reads.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { V1ConfigMap, V1Container, V1Deployment, V1PodSpec, V1Secret } from '@kubernetes/client-node';
import { loadClusters } from '../../src/clusters.js';
import { CHART_DIR, helm, type KubeObject, RELEASE_NAME, RELEASE_NAMESPACE, renderChart } from '../support/helm.js';

const WEST_KUBECONFIG = 'apiVersion: v1\nkind: Config\ncurrent-context: west\n';

const CLUSTERS = {
  clusters: {
    label: 'k8s_cluster',
    default: 'east',
    list: [{ name: 'east' }, { name: 'west', kubeconfig: 'west', context: 'prod' }],
    kubeconfigs: { files: { west: WEST_KUBECONFIG } },
  },
};

function named<T>(objects: KubeObject[], kind: string, name: string): T | undefined {
  return objects.find((o) => o.kind === kind && (o.metadata as { name?: string }).name === name) as T | undefined;
}

function podOf(objects: KubeObject[]): {
  spec: V1PodSpec;
  container: V1Container;
  annotations: Record<string, string>;
} {
  const deployment = named<V1Deployment>(objects, 'Deployment', RELEASE_NAME) ?? assert.fail('no Deployment');
  const spec = deployment.spec?.template.spec ?? assert.fail('no pod spec');
  const container = spec.containers.find((c) => c.name === 'kube-sentinel') ?? assert.fail('no container');
  return { spec, container, annotations: deployment.spec?.template.metadata?.annotations ?? {} };
}

describe('the chart’s clusters value', () => {
  it('renders the clusters file the receiver reads, each kubeconfig a path in the mounted Secret', async () => {
    const objects = await renderChart(CLUSTERS);
    const configMap =
      named<V1ConfigMap>(objects, 'ConfigMap', `${RELEASE_NAME}-clusters`) ?? assert.fail('no clusters ConfigMap');
    const file = join(mkdtempSync(join(tmpdir(), 'ks-helm-clusters-')), 'clusters.yaml');
    writeFileSync(file, configMap.data?.['clusters.yaml'] ?? '');
    const clusters = loadClusters(file);
    assert.deepEqual(
      { label: clusters.label, defaultCluster: clusters.defaultCluster, clusters: clusters.clusters },
      {
        label: 'k8s_cluster',
        defaultCluster: 'east',
        clusters: [
          { name: 'east' },
          { name: 'west', kubeconfig: '/etc/kube-sentinel/kubeconfigs/west', context: 'prod' },
        ],
      },
    );
    const secret =
      named<V1Secret>(objects, 'Secret', `${RELEASE_NAME}-kubeconfigs`) ?? assert.fail('no kubeconfigs Secret');
    assert.equal(Buffer.from(secret.data?.west ?? '', 'base64').toString(), WEST_KUBECONFIG);
  });

  it('passes the file as KUBE_SENTINEL_CLUSTERS, with the ConfigMap and the Secret mounted where it says', async () => {
    const { spec, container, annotations } = podOf(await renderChart(CLUSTERS));
    assert.equal(
      container.env?.find((e) => e.name === 'KUBE_SENTINEL_CLUSTERS')?.value,
      '/etc/kube-sentinel/clusters/clusters.yaml',
    );
    const mounts = new Map((container.volumeMounts ?? []).map((m) => [m.name, m.mountPath]));
    assert.equal(mounts.get('clusters'), '/etc/kube-sentinel/clusters');
    assert.equal(mounts.get('kubeconfigs'), '/etc/kube-sentinel/kubeconfigs');
    const volumes = new Map((spec.volumes ?? []).map((v) => [v.name, v]));
    assert.equal(volumes.get('clusters')?.configMap?.name, `${RELEASE_NAME}-clusters`);
    assert.equal(volumes.get('kubeconfigs')?.secret?.secretName, `${RELEASE_NAME}-kubeconfigs`);
    assert.match(annotations['checksum/clusters'] ?? '', /^[0-9a-f]{64}$/, 'a change of the file restarts the pods');
  });

  it('mounts an existing Secret of kubeconfigs instead of making one', async () => {
    const objects = await renderChart({
      clusters: { ...CLUSTERS.clusters, kubeconfigs: { existingSecret: 'my-kubeconfigs' } },
    });
    assert.equal(named(objects, 'Secret', `${RELEASE_NAME}-kubeconfigs`), undefined);
    const { spec } = podOf(objects);
    assert.equal(spec.volumes?.find((v) => v.name === 'kubeconfigs')?.secret?.secretName, 'my-kubeconfigs');
  });

  it('renders nothing of it by default: one cluster, in-cluster config', async () => {
    const objects = await renderChart();
    assert.equal(named(objects, 'ConfigMap', `${RELEASE_NAME}-clusters`), undefined);
    const { container, spec } = podOf(objects);
    assert.equal(
      container.env?.find((e) => e.name === 'KUBE_SENTINEL_CLUSTERS'),
      undefined,
    );
    assert.equal(
      spec.volumes?.find((v) => v.name === 'clusters'),
      undefined,
    );
  });

  describe('is refused in a sentence', () => {
    const refused: { what: string; set: string[]; message: string }[] = [
      {
        what: 'two clusters without a default',
        set: ['clusters.list[0].name=east', 'clusters.list[1].name=west'],
        message: 'clusters.default must name the cluster an alert without the cluster label goes to: one of east, west',
      },
      {
        what: 'a default not listed',
        set: ['clusters.default=north', 'clusters.list[0].name=east'],
        message: 'clusters.default "north" is not one of clusters.list (east)',
      },
      {
        what: 'a kubeconfig without a kubeconfigs Secret',
        set: ['clusters.list[0].name=east', 'clusters.list[0].kubeconfig=east'],
        message:
          'clusters.list[0] (east) names kubeconfig "east", but there is no kubeconfigs Secret: set clusters.kubeconfigs.existingSecret or clusters.kubeconfigs.files',
      },
      {
        what: 'a kubeconfig the files do not have',
        set: ['clusters.list[0].name=east', 'clusters.list[0].kubeconfig=east', 'clusters.kubeconfigs.files.west=x'],
        message: 'clusters.list[0] (east) names kubeconfig "east", which clusters.kubeconfigs.files does not have',
      },
      {
        what: 'a name given twice',
        set: ['clusters.default=east', 'clusters.list[0].name=east', 'clusters.list[1].name=east'],
        message: 'clusters.list[1]: the name "east" is given twice; each cluster needs its own',
      },
    ];
    for (const { what, set, message } of refused) {
      it(what, async () => {
        const args = set.flatMap((s) => ['--set', s]);
        const result = await helm(['template', RELEASE_NAME, CHART_DIR, '--namespace', RELEASE_NAMESPACE, ...args]);
        assert.notEqual(result.status, 0, 'helm template rendered');
        assert.ok(result.stderr.includes(message), result.stderr);
      });
    }
  });
});
