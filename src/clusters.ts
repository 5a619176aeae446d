import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Logger } from 'pino';
import { parseDocument } from 'yaml';
import type { Config } from './config.js';
import { ConfigError } from './errors.js';
import { createKubeSubmitter, dryRunSubmitter, type WorkflowSubmitter } from './kube/client.js';
import { clusterSubmitter } from './kube/clusters.js';
import {
  KubeconfigError,
  type KubeconfigSource,
  kubeconfigSource,
  type LoadedKubeConfig,
  loadKubeConfig,
} from './kube/kubeconfig.js';
import { dnsLabelProblem } from './kube/names.js';
import type { ClusterRouting } from './pipeline/route.js';

/**
 * --clusters FILE (SPEC §10): the clusters one receiver submits to, and the alert label that
 * picks one. YAML or JSON:
 *
 *   label: cluster        # optional, default `cluster`
 *   default: a            # where an alert without the label goes; optional with one cluster
 *   clusters:
 *     - name: a           # a DNS-1123 label, unique
 *       kubeconfig: a.yaml  # optional, relative to this file; else --kubeconfig / KUBECONFIG / in-cluster
 *       context: prod     # optional; else the kubeconfig's current-context
 *
 * Every problem is a ConfigError naming the file, the field and the value (exit 2 at start).
 */

export interface ClusterEntry {
  name: string;
  /** Absolute; absent: the ambient source. */
  kubeconfig?: string;
  context?: string;
}

export interface ClustersFile extends ClusterRouting {
  /** The file, as given. */
  file: string;
  clusters: ClusterEntry[];
}

const TOP_FIELDS = ['label', 'default', 'clusters'];
const CLUSTER_FIELDS = ['name', 'kubeconfig', 'context'];
/** What Prometheus and Alertmanager accept as a label name. */
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const DEFAULT_LABEL = 'cluster';

function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function shown(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 79)}…` : text;
}

/** Reads and checks the file; nothing is connected to yet (connectClusters does that). */
export function loadClusters(file: string): ClustersFile {
  const fail = (problem: string): never => {
    throw new ConfigError(`invalid --clusters ${file}: ${problem}`);
  };
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    fail(`cannot read it: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const document = parseDocument(text);
  const syntax = document.errors[0];
  if (syntax) fail(`not YAML or JSON: ${syntax.message.split('\n')[0]}`);
  const content: unknown = document.toJS();
  if (!isMapping(content)) return fail('expected a mapping with clusters (and label, default)');
  const unknown = (fields: Record<string, unknown>, allowed: string[], where: string): void => {
    const extra = Object.keys(fields).find((field) => !allowed.includes(field));
    if (extra !== undefined) fail(`unknown field ${where}${extra} (expected ${allowed.join(', ')})`);
  };
  unknown(content, TOP_FIELDS, '');

  const label = content.label ?? DEFAULT_LABEL;
  if (typeof label !== 'string' || !LABEL_NAME.test(label)) {
    fail(`label ${shown(label)} is not a label name (letters, digits and _, not starting with a digit)`);
  }
  const list = content.clusters;
  if (!Array.isArray(list) || list.length === 0) return fail(`clusters ${shown(list)}: expected a non-empty list`);
  const clusters = list.map((entry: unknown, i): ClusterEntry => {
    const where = `clusters[${i}]`;
    if (!isMapping(entry))
      return fail(`${where} ${shown(entry)}: expected a mapping with name (and kubeconfig, context)`);
    unknown(entry, CLUSTER_FIELDS, `${where}.`);
    const { name, kubeconfig, context } = entry;
    if (name === undefined) return fail(`${where}.name is missing`);
    if (typeof name !== 'string') return fail(`${where}.name ${shown(name)}: expected a name`);
    const problem = dnsLabelProblem(name);
    if (problem) fail(`${where}.name ${shown(name)}: ${problem}`);
    const first = list.findIndex((other: unknown) => isMapping(other) && other.name === name);
    if (first !== i) fail(`${where}.name ${shown(name)}: a duplicate of clusters[${first}].name`);
    for (const [field, value] of [
      ['kubeconfig', kubeconfig],
      ['context', context],
    ] as const) {
      if (value !== undefined && (typeof value !== 'string' || value === '')) {
        fail(`${where}.${field} ${shown(value)}: expected a non-empty string`);
      }
    }
    return {
      name,
      ...(typeof kubeconfig === 'string' ? { kubeconfig: resolve(dirname(file), kubeconfig) } : {}),
      ...(typeof context === 'string' ? { context } : {}),
    };
  });
  const names = clusters.map((cluster) => cluster.name);
  const defaultCluster = content.default ?? (names.length === 1 ? names[0] : undefined);
  if (defaultCluster === undefined)
    fail(`default is missing: with ${names.length} clusters, name one of ${names.join(', ')}`);
  if (typeof defaultCluster !== 'string' || !names.includes(defaultCluster)) {
    fail(`default ${shown(defaultCluster)} is not one of the clusters (${names.join(', ')})`);
  }
  return { file, label: label as string, defaultCluster: defaultCluster as string, names, clusters };
}

/** Where a cluster's connection comes from: its own kubeconfig, or the ambient source with its context. */
export function clusterSource(
  clusters: ClustersFile,
  index: number,
  config: Pick<Config, 'kubeconfig'>,
  env: Record<string, string | undefined>,
): Exclude<KubeconfigSource, { kind: 'none' }> {
  const cluster = clusters.clusters[index] as ClusterEntry;
  const where = `invalid --clusters ${clusters.file}: clusters[${index}] (${cluster.name})`;
  const context = cluster.context === undefined ? {} : { context: cluster.context };
  if (cluster.kubeconfig !== undefined) return { kind: 'file', path: cluster.kubeconfig, ...context };
  let ambient: KubeconfigSource;
  try {
    ambient = kubeconfigSource(config.kubeconfig, env);
  } catch (err) {
    if (err instanceof KubeconfigError) throw new ConfigError(`${where}: no kubeconfig, and ${err.message}`);
    throw err;
  }
  if (ambient.kind === 'none') {
    throw new ConfigError(
      `${where}: no kubeconfig, and there is no ambient one (--kubeconfig, KUBECONFIG, or in-cluster in a pod)`,
    );
  }
  if (ambient.kind === 'in-cluster') {
    if (cluster.context !== undefined) {
      throw new ConfigError(
        `${where}.context ${shown(cluster.context)}: the ambient source is the in-cluster config, which has no contexts`,
      );
    }
    return ambient;
  }
  return { ...ambient, ...context };
}

export interface ConnectedCluster {
  name: string;
  source: Exclude<KubeconfigSource, { kind: 'none' }>;
  kube: LoadedKubeConfig;
}

/**
 * Loads every cluster's kubeconfig (nothing is asked of the API servers yet); a kubeconfig that
 * does not load or a context it lacks is a ConfigError naming the cluster, the file and the problem.
 */
export async function connectClusters(
  clusters: ClustersFile,
  config: Pick<Config, 'kubeconfig'>,
  env: Record<string, string | undefined>,
): Promise<ConnectedCluster[]> {
  const connected: ConnectedCluster[] = [];
  for (const [index, cluster] of clusters.clusters.entries()) {
    const source = clusterSource(clusters, index, config, env);
    try {
      connected.push({ name: cluster.name, source, kube: await loadKubeConfig(source) });
    } catch (err) {
      if (!(err instanceof KubeconfigError)) throw err;
      // The field to fix: the context it lacks, the file it names, or (none named) the ambient one.
      const field = /context ".*" is not among its contexts/.test(err.message)
        ? '.context'
        : cluster.kubeconfig === undefined
          ? ''
          : '.kubeconfig';
      const problem = err.message.replace(
        cluster.kubeconfig === undefined ? /^invalid / : /^invalid --kubeconfig /,
        '',
      );
      throw new ConfigError(
        `invalid --clusters ${clusters.file}: clusters[${index}]${field} (${cluster.name}): ${problem}`,
      );
    }
  }
  return connected;
}

/**
 * The submitter of many clusters, each create sent to the cluster its Workflow names, and each
 * cluster's connection for its closed loop. --dry-run connects to none (as it ignores
 * --kubeconfig): routing still decides, nothing is created.
 */
export async function clusterTargets(
  clusters: ClustersFile,
  config: Pick<Config, 'kubeconfig' | 'dryRun'>,
  env: Record<string, string | undefined>,
  logger: Pick<Logger, 'warn'>,
): Promise<{ submitter: WorkflowSubmitter; connected: ConnectedCluster[] }> {
  if (config.dryRun) return { submitter: dryRunSubmitter, connected: [] };
  const connected = await connectClusters(clusters, config, env);
  const submitters = new Map<string, WorkflowSubmitter>();
  for (const cluster of connected) {
    submitters.set(cluster.name, await createKubeSubmitter(cluster.source, { loaded: cluster.kube }));
  }
  const submitter = clusterSubmitter(submitters);
  for (const warning of submitter.warnings ?? []) logger.warn(warning);
  return { submitter, connected };
}
