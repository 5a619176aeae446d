import { fileURLToPath } from 'node:url';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { drainConnections, limitConnections, serverOptions } from './connections.js';
import { dryRunSubmitter, type WorkflowSubmitter } from './kube/client.js';
import { LocalCooldowns } from './pipeline/local-cooldowns.js';
import { LocalPauses } from './pipeline/local-pauses.js';
import type { Metrics } from './pipeline/metrics.js';
import { createPipeline, type PipelineDeps } from './pipeline/pipeline.js';
import { activityRoutes } from './routes/activity.js';
import { Admission } from './routes/admission.js';
import { credentialCheck, requireCredentials } from './routes/auth.js';
import { cooldownRoutes } from './routes/cooldowns.js';
import { decisionRoutes } from './routes/decisions.js';
import { registerErrorHandler } from './routes/errors.js';
import { escalationRoutes } from './routes/escalations.js';
import { healthRoutes } from './routes/health.js';
import { ingestRoutes } from './routes/ingest.js';
import { loadPage, pageRoutes, sendPage } from './routes/page.js';
import { pauseRoutes } from './routes/pauses.js';
import { remediationRoutes } from './routes/remediations.js';
import { ruleRoutes } from './routes/rules.js';
import { statusRoutes } from './routes/status.js';
import { type TypeBoxProvider, typeboxCompilers } from './routes/typebox.js';
import type { RuleSet } from './rules/types.js';
import type { CooldownStore } from './stores/cooldown-store.js';

export interface AppDeps {
  /** The rules in force; a reload replaces what this returns. */
  rules: () => RuleSet;
  store: CooldownStore;
  /** Creates the Workflows; dry-run (asked for, or no cluster) is the submitter that creates nothing. */
  submitter: WorkflowSubmitter;
  metrics: Metrics;
  logger: Logger;
  now?: () => number;
  /** Extra readiness problems (e.g. missing WorkflowTemplates with --check-templates); empty when ready. */
  readinessProblems?: () => Promise<string[]>;
  /** What works at less than its best: shown by /readyz, which still answers 200. */
  readinessWarnings?: () => string[];
  /** With a cluster (SPEC §9): the record consulted before a create, and the escalation and approval hooks. */
  cluster?: PipelineDeps['cluster'];
  exhausted?: PipelineDeps['exhausted'];
  sourceResolved?: PipelineDeps['sourceResolved'];
  /** --clusters: which cluster each alert goes to. */
  clusters?: PipelineDeps['clusters'];
  /** This replica's copy of the pauses; one of its own (reloaded every few seconds) when not given. */
  pauses?: LocalPauses;
  /** With a cluster: the opt-out annotations (SPEC §11), per cluster with --clusters. */
  optOuts?: PipelineDeps['optOuts'];
  /** The built page GET / serves; PAGE_PATH when not given. */
  pagePath?: string;
}

export const OPENAPI_PATH = fileURLToPath(new URL('../openapi.yaml', import.meta.url));
/** dist/page.html, from src/app.ts (tests) and from dist/cli.js (the bundle) alike. */
export const PAGE_PATH = fileURLToPath(new URL('../dist/page.html', import.meta.url));

/** Plugins and routes; never listens (server.ts does). Closing the app closes the store. */
export function buildApp(config: Config, deps: AppDeps): FastifyInstance {
  const app = Fastify({
    loggerInstance: deps.logger as unknown as FastifyBaseLogger, // pino 10's Logger type is wider than fastify's
    // One decision line per alert says what matters; a line per request would only double it.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.bodyLimitBytes,
    // A `__proto__` key, or a `constructor` holding a `prototype`, anywhere in a body is dropped
    // (never set on an object's prototype), not a 400 for the whole group: the other alerts are
    // still decided, and an alert left invalid by it is refused by name like any other.
    onProtoPoisoning: 'remove',
    onConstructorPoisoning: 'remove',
    ...serverOptions(config),
    // TypeBox validates the routes' TypeBox schemas: alert labels are strings, so a number where a
    // string belongs is a 400, never coerced; unknown payload fields are kept.
    schemaController: typeboxCompilers,
  }).withTypeProvider<TypeBoxProvider>();
  registerErrorHandler(app);
  // Every body is JSON: text/plain is a 415 naming the fix, like any other type, not a string
  // that fails the schema.
  app.removeContentTypeParser('text/plain');
  limitConnections(app.server, config.maxConnections, deps.logger);

  const now = deps.now ?? Date.now;
  // --dry-run is nothing but the submitter that creates nothing, whatever cluster is configured.
  const submitter = config.dryRun ? dryRunSubmitter : deps.submitter;
  // Committed cooldowns answered from memory; a key ended on any replica is dropped at once.
  const local = new LocalCooldowns(now);
  const stopListening = deps.store.onCooldownEnded((key) => (key === null ? local.clear() : local.forget(key)));
  // The pauses of every replica, copied here: a decision never waits for the store to learn them.
  const pauses = deps.pauses ?? new LocalPauses({ store: deps.store, now, logger: deps.logger });
  pauses.start();
  const pipeline = createPipeline({ ...deps, submitter, now, settings: config, local, pauses });
  deps.metrics.dryRun.set(submitter.mode === 'dry-run' ? 1 : 0);
  const admission = new Admission(config.maxAlertsInFlight);

  // Probes, scrapers and readers of the API document send no credentials; /readyz says more to
  // a request that carries the API's.
  const credentials = { token: config.authToken, basic: config.basicAuth };
  const check = credentialCheck(credentials);
  app.register((open, _options, done) => {
    healthRoutes(open, {
      rules: deps.rules,
      store: deps.store,
      metrics: deps.metrics,
      openapiPath: OPENAPI_PATH,
      readinessProblems: deps.readinessProblems,
      readinessWarnings: deps.readinessWarnings,
      authenticated: check ? (request) => check(request.headers.authorization) : undefined,
    });
    done();
  });
  const refusals = { logger: deps.logger, unauthorized: deps.metrics.unauthorized, now };
  // The page, behind the same credentials: without them a browser gets the 401 with the page's
  // sign-in form (no data) and is asked for basic auth first.
  const page = loadPage(deps.pagePath ?? PAGE_PATH);
  if (page instanceof Error) deps.logger.warn({ problem: page.message }, 'GET / answers 503: the page is not built');
  app.register((browser, _options, done) => {
    requireCredentials(browser, credentials, refusals, {
      forBrowsers: true,
      quietWhenAnonymous: true,
      send: page instanceof Error ? undefined : (request, reply) => sendPage(request, reply, page, 401),
    });
    pageRoutes(browser, page);
    done();
  });
  // Everything else needs them, when any are configured.
  app.register((api, _options, done) => {
    requireCredentials(api, credentials, refusals);
    ingestRoutes(api, pipeline, { now, admission, bodyLimit: config.bodyLimitBytes });
    ruleRoutes(api, deps.rules);
    statusRoutes(api, { replica: config.replica, mode: submitter.mode, store: deps.store.kind });
    decisionRoutes(api, deps.store);
    remediationRoutes(api, deps.store, config.argoUiUrl ? { argoUiUrl: config.argoUiUrl } : {});
    escalationRoutes(api, deps.store);
    activityRoutes(api, { store: deps.store, rules: deps.rules });
    cooldownRoutes(api, { store: deps.store, local, rules: deps.rules });
    pauseRoutes(api, { store: deps.store, pauses, rules: deps.rules, now, clusters: deps.clusters });
    done();
  });

  // Alertmanager keeps connections alive: once closing, each answer closes its connection, and an
  // idle connection is closed without resetting a request already on its way (connections.ts).
  drainConnections(app.server);
  app.addHook('onClose', async () => deps.store.close());
  app.addHook('onClose', async () => stopListening());
  app.addHook('onClose', async () => pauses.stop());
  return app;
}
