import { writeSync } from 'node:fs';
import closeWithGrace from 'close-with-grace';
import type { FastifyInstance } from 'fastify';
import pino, { type Logger } from 'pino';
import { buildApp } from './app.js';
import type { Config } from './config.js';
import { RulesError } from './errors.js';
import { checkTemplates, kubeProbe } from './kube/check.js';
import { createKubeSubmitter, dryRunSubmitter, kubeconfigSource, type WorkflowSubmitter } from './kube/client.js';
import { createMetrics } from './metrics.js';
import { loadRules } from './rules/load.js';
import type { RuleSet } from './rules/types.js';
import { watchRules } from './rules/watch.js';
import type { CooldownStore } from './stores/cooldown-store.js';
import { MemoryCooldownStore } from './stores/memory.js';

const SHUTDOWN_DEADLINE_MS = 20_000;

export async function createLogger(
  level: Config['logLevel'],
  // Pretty output only for a person at a terminal; JSON lines everywhere else.
  output: { pretty?: boolean; fd?: number } = {},
): Promise<Logger> {
  const pretty = output.pretty ?? (process.stdout.isTTY === true && !process.env.CI);
  const fd = output.fd ?? 1;
  const options = { level, base: { service: 'kube-sentinel' } };
  if (pretty) {
    // In process, as a stream (pino is bundled, so its worker-thread transports cannot find
    // their files), and imported only here: no other start pays for it.
    const { default: pinoPretty } = await import('pino-pretty');
    return pino(options, pinoPretty({ destination: fd, sync: true }));
  }
  // Buffered, asynchronous writes: a synchronous write per decision line was a third of the cost
  // of a decision. What is still buffered is written out when the process exits. The buffer is
  // bounded: if stdout cannot keep up for long, lines are dropped rather than memory exhausted.
  const destination = new TurnBatchedStream(pino.destination({ dest: fd, sync: false, maxLength: 16 * 1024 * 1024 }), fd);
  process.on('exit', () => destination.flushSync());
  return pino(options, destination);
}

/**
 * Hands the lines of one event-loop turn (a webhook's 20 decision lines) to sonic-boom as one
 * string. sonic-boom measures the byte length of its whole pending buffer on every write, which
 * made a busy receiver spend 5–8% of its time counting bytes.
 */
export class TurnBatchedStream {
  private lines: string[] = [];
  private scheduled = false;

  constructor(
    private readonly target: { write(chunk: string): boolean; flushSync(): void },
    private readonly fd: number,
  ) {}

  write(line: string): boolean {
    this.lines.push(line);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flushTurn());
    }
    return true;
  }

  /** Everything written so far, to the file descriptor now, in order (at exit). */
  flushSync(): void {
    const chunk = this.take();
    try {
      this.target.flushSync();
    } catch {
      // nothing buffered there yet, or stdout already gone
    }
    try {
      if (chunk) writeSync(this.fd, chunk);
    } catch {
      // stdout already gone
    }
  }

  private flushTurn(): void {
    this.scheduled = false;
    const chunk = this.take();
    if (chunk) this.target.write(chunk);
  }

  private take(): string {
    const chunk = this.lines.length === 1 ? this.lines[0]! : this.lines.join('');
    this.lines = [];
    return chunk;
  }
}

export async function createSubmitter(config: Config, env: Record<string, string | undefined>, logger: Logger): Promise<WorkflowSubmitter> {
  if (config.dryRun) return dryRunSubmitter;
  const source = kubeconfigSource(config.kubeconfig, env);
  if (source.kind === 'none') {
    logger.warn('no --kubeconfig and not running in a cluster: dry-run, no Workflow will be submitted');
    return dryRunSubmitter;
  }
  return createKubeSubmitter(source);
}

export async function createStore(config: Config, logger: Logger): Promise<CooldownStore> {
  if (config.redisUrl) {
    // ioredis is imported only when used: it is a third of a second of a cold start.
    const { RedisCooldownStore } = await import('./stores/redis.js');
    return new RedisCooldownStore({ url: config.redisUrl, logger });
  }
  logger.warn('no --redis-url: in-memory cooldown store, not shared between replicas');
  return new MemoryCooldownStore();
}

const TEMPLATE_CHECK_TTL_MS = 30_000;

/**
 * --check-templates: /readyz also reports WorkflowTemplates the rules reference but the cluster
 * lacks. Probes come every few seconds; the answer is cached so the API server is asked at most
 * every 30 s.
 */
async function templateReadiness(config: Config, env: Record<string, string | undefined>, rules: () => RuleSet, logger: Logger) {
  const source = kubeconfigSource(config.kubeconfig, env);
  if (source.kind === 'none') {
    logger.warn('--check-templates needs a cluster (--kubeconfig or in-cluster); not checking');
    return undefined;
  }
  const probe = await kubeProbe(source);
  let cached: { at: number; ruleSet: RuleSet; problems: Promise<string[]> } | undefined;
  return () => {
    const ruleSet = rules();
    if (!cached || cached.ruleSet !== ruleSet || Date.now() - cached.at > TEMPLATE_CHECK_TTL_MS) {
      const problems = checkTemplates(ruleSet, config.workflowNamespace, probe).then((results) =>
        results.filter((r) => !r.ok).map((r) => r.problem ?? r.what),
      );
      cached = { at: Date.now(), ruleSet, problems };
    }
    return cached.problems;
  };
}

export interface RunningServer {
  app: FastifyInstance;
  url: string;
  close(): Promise<void>;
}

/** config → rules, store, submitter → buildApp → listen; hot reload; graceful shutdown on SIGTERM/SIGINT. */
export async function startServer(config: Config, env: Record<string, string | undefined>, logger: Logger): Promise<RunningServer> {
  const loaded = await loadRules(config.rules);
  if (!loaded.ok) throw new RulesError(loaded.errors);
  for (const warning of loaded.warnings) logger.warn(warning);
  let ruleSet: RuleSet = loaded.ruleSet;

  const submitter = await createSubmitter(config, env, logger);
  const store = await createStore(config, logger);
  const metrics = createMetrics();
  metrics.rulesLoaded.set(ruleSet.rules.length);
  metrics.lastReloadSuccess.set(1);

  const readinessProblems = config.checkTemplates ? await templateReadiness(config, env, () => ruleSet, logger) : undefined;
  const app = buildApp(config, { rules: () => ruleSet, store, submitter, metrics, logger, ...(readinessProblems ? { readinessProblems } : {}) });

  const watcher = watchRules(config.rules, {
    onReload(result) {
      if (result.ok) {
        ruleSet = result.ruleSet;
        metrics.reloads.inc({ result: 'success' });
        metrics.lastReloadSuccess.set(1);
        metrics.rulesLoaded.set(ruleSet.rules.length);
        logger.info({ rules: ruleSet.rules.length, files: ruleSet.files }, 'rules reloaded');
      } else {
        metrics.reloads.inc({ result: 'failure' });
        metrics.lastReloadSuccess.set(0);
        logger.error({ errors: result.errors }, 'rules reload failed; the previous rules stay in force');
      }
    },
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
  if (!config.authToken && !config.basicAuth) logger.warn('no auth token set: anyone who can reach this port can trigger remediations');

  let closing: Promise<void> | undefined;
  const close = () => (closing ??= app.close());
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
