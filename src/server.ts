import closeWithGrace from 'close-with-grace';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { buildApp } from './app.js';
import { type ClustersFile, clusterSource, clusterTargets, loadClusters } from './clusters.js';
import type { Config } from './config.js';
import { RulesError } from './errors.js';
import { createEscalator, type Escalator } from './escalation/escalator.js';
import { type ClusterProbe, checkTemplates, kubeProbe } from './kube/check.js';
import {
  createKubeSubmitter,
  dryRunSubmitter,
  kubeconfigSource,
  loadKubeConfig,
  type WorkflowSubmitter,
} from './kube/client.js';
import { clusterOptOuts } from './kube/clusters.js';
import type { LoadedKubeConfig } from './kube/kubeconfig.js';
import { OptOutCache, type OptOuts } from './kube/opt-out.js';
import type { Metrics } from './pipeline/metrics.js';
import { createMetrics } from './pipeline/metrics.js';
import { ClusterLoops, type Loop } from './remediation/clusters.js';
import { Escalations, escalationBuilders } from './remediation/escalations.js';
import { ClosedLoop } from './remediation/loop.js';
import { loadRules } from './rules/load.js';
import type { RuleSet } from './rules/types.js';
import { DEFAULT_CHECK_EVERY_MS, type WatchOptions, watchRules } from './rules/watch.js';
import type { CooldownStore } from './stores/cooldown-store.js';
import { MemoryCooldownStore } from './stores/memory.js';
import type { RedisSource } from './stores/redis-connection.js';

const SHUTDOWN_DEADLINE_MS = 20_000;

/** The submitter, and the cluster it submits to (absent in dry-run). */
export async function createSubmitter(
  config: Config,
  env: Record<string, string | undefined>,
  logger: Logger,
): Promise<{ submitter: WorkflowSubmitter; kube?: LoadedKubeConfig }> {
  if (config.dryRun) return { submitter: dryRunSubmitter };
  const source = kubeconfigSource(config.kubeconfig, env);
  if (source.kind === 'none') {
    logger.warn('no --kubeconfig and not running in a cluster: dry-run, no Workflow will be submitted');
    return { submitter: dryRunSubmitter };
  }
  const kube = await loadKubeConfig(source);
  const submitter = await createKubeSubmitter(source, { loaded: kube });
  for (const warning of submitter.warnings ?? []) logger.warn(warning);
  return { submitter, kube };
}

/**
 * The namespaces the rules submit to, disabled rules' too (their Workflows from before are still
 * followed), and the default. `check`'s clusterNeeds reads only the enabled rules.
 */
function workflowNamespaces(ruleSet: RuleSet, config: Config): string[] {
  const namespaces = new Set([config.workflowNamespace]);
  for (const rule of ruleSet.rules) namespaces.add(rule.remediation.params.namespace ?? config.workflowNamespace);
  return [...namespaces];
}

/** The clusters Workflows go to: the one of --kubeconfig (unnamed), or each of --clusters by name. */
interface Targets {
  submitter: WorkflowSubmitter;
  kubes: { cluster?: string; kube: LoadedKubeConfig }[];
}

async function createTargets(
  config: Config,
  env: Record<string, string | undefined>,
  logger: Logger,
  clusters: ClustersFile | undefined,
): Promise<Targets> {
  if (!clusters) {
    const { submitter, kube } = await createSubmitter(config, env, logger);
    return { submitter, kubes: kube ? [{ kube }] : [] };
  }
  const { submitter, connected } = await clusterTargets(clusters, config, env, logger);
  return { submitter, kubes: connected.map(({ name, kube }) => ({ cluster: name, kube })) };
}

/**
 * SPEC §11: each cluster's opt-out annotations, read through its own client into its own cache,
 * each read bounded like a create (--submit-timeout). None without a cluster.
 */
function optOutsOf(
  config: Config,
  kubes: Targets['kubes'],
  logger: Logger,
  clusters: ClustersFile | undefined,
): OptOuts | undefined {
  const caches = kubes.map(
    ({ cluster, kube }) =>
      new OptOutCache({
        request: kube.request,
        logger,
        timeoutMs: config.submitTimeoutMs,
        ...(cluster === undefined ? {} : { cluster }),
      }),
  );
  if (!clusters) return caches[0];
  return caches.length === 0
    ? undefined
    : clusterOptOuts(new Map(kubes.map(({ cluster }, i) => [cluster ?? '', caches[i] as OptOutCache])));
}

/**
 * SPEC §9 for a receiver with a cluster: escalations, and the watcher of its Workflows (started
 * after listening); with --clusters, a loop per cluster, each with its watchers.
 */
function closeTheLoop(
  config: Config,
  kubes: Targets['kubes'],
  deps: { store: CooldownStore; metrics: Metrics; logger: Logger; rules: () => RuleSet },
  clusters: ClustersFile | undefined,
): { loop: Loop; escalator: Escalator } {
  const { store, metrics, logger } = deps;
  const settings = {
    replica: config.replica,
    auditMaxLen: config.auditMaxLen,
    escalationTtlMs: config.escalationTtlMs,
  };
  const escalator = createEscalator({
    urls: config.escalationUrls,
    ttlMs: config.escalationTtlMs,
    logger,
    metric: metrics.escalations,
    store,
    replica: config.replica,
    auditMaxLen: config.auditMaxLen,
  });
  const escalations = new Escalations({
    store,
    sender: escalator,
    builders: escalationBuilders(config.argoUiUrl ? { argoUiUrl: config.argoUiUrl } : {}),
    ttlMs: config.escalationTtlMs,
    logger,
  });
  const loops = kubes.map(
    ({ cluster, kube }) =>
      new ClosedLoop({
        kube,
        store,
        escalations,
        metrics,
        logger,
        now: Date.now,
        settings,
        namespaces: () => workflowNamespaces(deps.rules(), config),
        workflowNamespace: config.workflowNamespace,
        apiTimeoutMs: config.submitTimeoutMs,
        ...(cluster === undefined ? {} : { cluster }),
      }),
  );
  const loop: Loop = clusters
    ? new ClusterLoops(new Map(loops.map((one, i) => [kubes[i]?.cluster ?? '', one])), clusters)
    : (loops[0] as ClosedLoop);
  if (config.escalationUrls.length === 0) {
    logger.warn(
      'no --escalation-url: failed remediations, spent budgets and approvals are logged and counted, not sent',
    );
  }
  return { loop, escalator };
}

/** The one way to Redis the settings give (config.ts allows at most one), or none. */
function redisSource(config: Config): RedisSource | undefined {
  const password = config.redisPassword === undefined ? {} : { password: config.redisPassword };
  if (config.redisUrl) return { kind: 'standalone', url: config.redisUrl };
  if (config.redisSentinels && config.redisMasterName) {
    const sentinelPassword = config.redisSentinelPassword;
    return {
      kind: 'sentinel',
      sentinels: config.redisSentinels,
      masterName: config.redisMasterName,
      ...password,
      ...(sentinelPassword === undefined ? {} : { sentinelPassword }),
    };
  }
  if (config.redisClusterNodes) return { kind: 'cluster', nodes: config.redisClusterNodes, ...password };
  return undefined;
}

export async function createStore(config: Config, logger: Logger): Promise<CooldownStore> {
  const source = redisSource(config);
  if (source) {
    // ioredis is imported only when used: defining its command functions is a good part of a cold start.
    const { RedisCooldownStore } = await import('./stores/redis.js');
    return new RedisCooldownStore({ source, waitReplicas: config.redisWaitReplicas, logger });
  }
  logger.warn(
    'no Redis (--redis-url, --redis-sentinels or --redis-cluster-nodes): in-memory cooldown store, not shared between replicas',
  );
  return new MemoryCooldownStore({ logger });
}

const TEMPLATE_CHECK_TTL_MS = 30_000;

/**
 * --check-templates: /readyz also reports WorkflowTemplates the rules reference but the cluster
 * lacks. Probes come every few seconds; the answer is cached so the API server is asked at most
 * every 30 s.
 */
async function templateReadiness(
  config: Config,
  env: Record<string, string | undefined>,
  rules: () => RuleSet,
  logger: Logger,
  clusters: ClustersFile | undefined,
) {
  // With --clusters, every cluster's templates, each problem naming its cluster.
  const sources = clusters
    ? clusters.clusters.map((cluster, i) => ({ name: cluster.name, source: clusterSource(clusters, i, config, env) }))
    : [{ name: undefined, source: kubeconfigSource(config.kubeconfig, env) }];
  const probes: { name: string | undefined; probe: ClusterProbe }[] = [];
  for (const { name, source } of sources) {
    if (source.kind === 'none') {
      logger.warn('--check-templates needs a cluster (--kubeconfig or in-cluster); not checking');
      return undefined;
    }
    probes.push({ name, probe: await kubeProbe(source) });
  }
  const problemsOf = async (ruleSet: RuleSet) => {
    const perCluster = await Promise.all(
      probes.map(async ({ name, probe }) =>
        (await checkTemplates(ruleSet, config.workflowNamespace, probe))
          .filter((r) => !r.ok)
          .map((r) => (name === undefined ? '' : `cluster ${name}: `) + (r.problem ?? r.what)),
      ),
    );
    return perCluster.flat();
  };
  let cached: { at: number; ruleSet: RuleSet; problems: Promise<string[]> } | undefined;
  return () => {
    const ruleSet = rules();
    if (!cached || cached.ruleSet !== ruleSet || Date.now() - cached.at > TEMPLATE_CHECK_TTL_MS) {
      const problems = problemsOf(ruleSet);
      cached = { at: Date.now(), ruleSet, problems };
    }
    return cached.problems;
  };
}

export interface ServerOptions {
  /** For tests: how the rules' directories are watched, and the periodic check's timer. */
  rulesWatch?: Pick<WatchOptions, 'watchDirectory' | 'every'>;
}

export interface RunningServer {
  app: FastifyInstance;
  url: string;
  close(): Promise<void>;
}

/** config → rules, store, submitter → buildApp → listen; hot reload; graceful shutdown on SIGTERM/SIGINT. */
export async function startServer(
  config: Config,
  env: Record<string, string | undefined>,
  logger: Logger,
  options: ServerOptions = {},
): Promise<RunningServer> {
  const loaded = await loadRules(config.rules);
  if (!loaded.ok) throw new RulesError(loaded.errors);
  for (const warning of loaded.warnings) logger.warn(warning);
  let ruleSet: RuleSet = loaded.ruleSet;

  const clusters = config.clusters ? loadClusters(config.clusters) : undefined;
  const { submitter, kubes } = await createTargets(config, env, logger, clusters);
  const store = await createStore(config, logger);
  const metrics = createMetrics();
  const closed =
    kubes.length > 0
      ? closeTheLoop(config, kubes, { store, metrics, logger, rules: () => ruleSet }, clusters)
      : undefined;
  const optOuts = optOutsOf(config, kubes, logger, clusters);
  metrics.rulesLoaded.set(ruleSet.rules.length);
  metrics.lastReloadSuccess.set(1);
  metrics.rulesWatchHealthy.set(1);

  // A rules watch that failed is a warning in /readyz, not unreadiness: the periodic content check
  // still picks up every change (within seconds), and a node out of inotify watches must not take
  // every replica on it out of service.
  let rulesWatchProblem: string | null = null;
  const templateProblems = config.checkTemplates
    ? await templateReadiness(config, env, () => ruleSet, logger, clusters)
    : undefined;
  // A failing Workflow watch is a warning too: decisions still work, the cluster is then asked
  // before each create, and what became of the Workflows is recorded once it recovers.
  const readinessWarnings = () => [
    ...(rulesWatchProblem === null ? [] : [`rules: ${rulesWatchProblem}`]),
    ...(closed?.loop.watchProblems() ?? []),
  ];
  const app = buildApp(config, {
    rules: () => ruleSet,
    store,
    submitter,
    metrics,
    logger,
    ...(templateProblems ? { readinessProblems: templateProblems } : {}),
    readinessWarnings,
    ...(closed
      ? { cluster: closed.loop, exhausted: closed.loop.exhausted, sourceResolved: closed.loop.sourceResolved }
      : {}),
    ...(clusters ? { clusters } : {}),
    ...(optOuts ? { optOuts } : {}),
  });
  if (closed) {
    // Before the store closes (the app's onClose closes it last): the watchers stop recording and
    // the escalations in flight get their bounded moment.
    app.addHook('onClose', async () => {
      await closed.loop.stop();
      await closed.escalator.close();
    });
  }

  const watcher = watchRules(config.rules, {
    onReload(result) {
      if (result.ok) {
        ruleSet = result.ruleSet;
        metrics.reloads.inc({ result: 'success' });
        metrics.lastReloadSuccess.set(1);
        metrics.rulesLoaded.set(ruleSet.rules.length);
        closed?.loop.watchNamespaces();
        logger.info({ rules: ruleSet.rules.length, files: ruleSet.files }, 'rules reloaded');
      } else {
        metrics.reloads.inc({ result: 'failure' });
        metrics.lastReloadSuccess.set(0);
        logger.error({ errors: result.errors }, 'rules reload failed; the previous rules stay in force');
      }
    },
    onHealth(health) {
      rulesWatchProblem = health.problem;
      metrics.rulesWatchHealthy.set(health.healthy ? 1 : 0);
      if (health.healthy) logger.info('watching the rules for changes again');
      else
        logger.error(
          { problem: health.problem },
          `rules watch failed; the rules are still compared every ${DEFAULT_CHECK_EVERY_MS / 1000} s`,
        );
    },
    ...options.rulesWatch,
  });
  app.addHook('onClose', async () => watcher.close());
  // Listen only once the watcher has taken stock, so an edit right after start-up is not missed.
  await watcher.ready;

  const url = await app.listen({ port: config.port, host: config.host });
  logger.info(
    {
      url,
      rules: ruleSet.rules.length,
      store: store.kind,
      submit: submitter.target,
      dryRun: submitter.mode === 'dry-run',
      auth: [config.authToken ? 'bearer' : null, config.basicAuth ? 'basic' : null].filter(Boolean).join('+') || 'none',
    },
    'kube-sentinel listening',
  );
  if (!config.authToken && !config.basicAuth)
    logger.warn('no auth token set: anyone who can reach this port can trigger remediations');
  // After listening: a cold start answers first and lists the cluster's Workflows after.
  closed?.loop.start();

  let closing: Promise<void> | undefined;
  // The listener first, alone: a client answered with Connection: close while closing then finds
  // the port closed (refused), never a connection accepted and dropped. Once every connection is
  // done (connections.ts drains them), the app closes: the rules watcher, then the store.
  const stopListening = () => new Promise<void>((resolve) => app.server.close(() => resolve()));
  const close = () => (closing ??= stopListening().then(() => app.close()));
  return { app, url, close };
}

/** For `serve`: finishes in-flight decisions on SIGTERM, closes Redis, exits 0 (1 past the deadline). */
export function closeOnSignals(server: RunningServer, logger: Logger): void {
  closeWithGrace({ delay: SHUTDOWN_DEADLINE_MS }, async ({ signal, err }) => {
    if (err) logger.error({ err }, 'fatal error, shutting down');
    else logger.info({ signal }, 'shutting down');
    await server.close();
  });
}
