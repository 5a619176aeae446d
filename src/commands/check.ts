import { type ClustersFile, clusterSource, connectClusters, loadClusters } from '../clusters.js';
import type { Config } from '../config.js';
import { ConfigError } from '../errors.js';
import {
  type CheckResult,
  checkOptOutReads,
  checkPermissions,
  checkReachable,
  checkTemplates,
  kubeProbe,
} from '../kube/check.js';
import { type KubeconfigSource, kubeconfigSource } from '../kube/client.js';
import { loadRules } from '../rules/load.js';
import type { RuleSet } from '../rules/types.js';

type Env = Record<string, string | undefined>;
type Source = Exclude<KubeconfigSource, { kind: 'none' }>;

/** The clusters `check` asks: the one of --kubeconfig (unnamed), or each of --clusters by name. */
async function targetsOf(config: Config, env: Env, clusters: ClustersFile | undefined) {
  if (clusters) {
    // Every kubeconfig and context is checked before any API server is asked (exit 2 for a bad one).
    await connectClusters(clusters, config, env);
    return clusters.clusters.map((cluster, i) => ({
      name: cluster.name,
      source: clusterSource(clusters, i, config, env),
    }));
  }
  const source = kubeconfigSource(config.kubeconfig, env);
  if (source.kind === 'none')
    throw new ConfigError(
      'check needs a cluster: no --kubeconfig (or KUBECONFIG) was given, and this is not a pod (no KUBERNETES_SERVICE_HOST and service account token)',
    );
  return [{ name: undefined, source }];
}

/**
 * One cluster's findings. With --clusters each names its cluster, and an API server that does not
 * answer is one failure (its templates and permissions are not asked about).
 */
async function checkCluster(ruleSet: RuleSet, config: Config, name: string | undefined, source: Source) {
  const probe = await kubeProbe(source);
  const where = name === undefined ? '' : `cluster ${name}: `;
  const named = (result: CheckResult): CheckResult => ({ ...result, what: `${where}${result.what}` });
  const warnings = probe.warnings.map((warning) => `${where}${warning}`);
  if (name !== undefined) {
    const reachable = await checkReachable(probe, probe.server);
    if (!reachable.ok) return { warnings, results: [named(reachable)] };
    return { warnings, results: [named(reachable), ...(await cluster()).map(named)] };
  }
  return { warnings, results: await cluster() };

  async function cluster(): Promise<CheckResult[]> {
    const identity = probe.user ? { user: probe.user } : {};
    return [
      ...(await checkTemplates(ruleSet, config.workflowNamespace, probe)),
      ...(await checkPermissions(ruleSet, config.workflowNamespace, probe, identity)),
      ...(await checkOptOutReads(ruleSet, probe, identity)),
    ];
  }
}

/** `kube-sentinel check`: prints each finding (and the fix of each failure); 1 when any failed. */
export async function runCheck(config: Config, env: Env): Promise<number> {
  const clusters = config.clusters ? loadClusters(config.clusters) : undefined;
  const targets = await targetsOf(config, env, clusters);
  const loaded = await loadRules(config.rules);
  if (!loaded.ok) {
    process.stderr.write(`${loaded.errors.join('\n')}\n`);
    return 1;
  }
  const checked = await Promise.all(
    targets.map(({ name, source }) => checkCluster(loaded.ruleSet, config, name, source)),
  );
  const results = checked.flatMap((one) => one.results);
  for (const warning of checked.flatMap((one) => one.warnings)) process.stderr.write(`warning: ${warning}\n`);
  for (const result of results) {
    if (result.ok) process.stdout.write(`ok    ${result.what}\n`);
    else process.stdout.write(`FAIL  ${result.what}\n      ${result.problem}\n      fix: ${result.fix}\n`);
  }
  const failed = results.filter((r) => !r.ok);
  if (clusters) {
    const failing = clusters.names.filter((name) => failed.some((r) => r.what.startsWith(`cluster ${name}: `)));
    process.stdout.write(
      failing.length === 0
        ? `clusters ok: ${clusters.names.join(', ')}\n`
        : `clusters failing: ${failing.join(', ')}\n`,
    );
  }
  process.stdout.write(`${results.length - failed.length} passed, ${failed.length} failed\n`);
  return failed.length > 0 ? 1 : 0;
}
