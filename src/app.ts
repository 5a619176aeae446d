import { fileURLToPath } from 'node:url';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import type { WorkflowSubmitter } from './kube/client.js';
import type { Metrics } from './metrics.js';
import type { PipelineDeps, PipelineSettings } from './pipeline/pipeline.js';
import type { RuleSet } from './rules/types.js';
import type { CooldownStore } from './stores/cooldown-store.js';
import { registerAuth } from './routes/auth.js';
import { registerErrorHandler } from './routes/errors.js';
import { registerInfoRoutes } from './routes/info.js';
import { registerIngestRoutes } from './routes/ingest.js';
import { typeboxCompilers } from './routes/schema-compilers.js';

export interface AppDeps {
  /** The rules in force; a reload replaces what this returns. */
  rules: () => RuleSet;
  store: CooldownStore;
  submitter: WorkflowSubmitter;
  metrics: Metrics;
  logger: Logger;
  now?: () => number;
  /** Extra readiness problems (e.g. missing WorkflowTemplates with --check-templates); empty when ready. */
  readinessProblems?: () => Promise<string[]>;
}

export const OPENAPI_PATH = fileURLToPath(new URL('../openapi.yaml', import.meta.url));

/** What the pipeline needs of the settings. Dry-run when asked for, or when there is no cluster to submit to. */
export function pipelineSettings(config: Config, submitter: WorkflowSubmitter): PipelineSettings {
  return {
    workflowNamespace: config.workflowNamespace,
    ...(config.workflowServiceAccount ? { workflowServiceAccount: config.workflowServiceAccount } : {}),
    dryRun: config.dryRun || submitter.mode === 'dry-run',
    cooldownStoreFailure: config.cooldownStoreFailure,
    maxWorkflowsPerMinute: config.maxWorkflowsPerMinute,
    submitTimeoutMs: config.submitTimeoutMs,
    pendingLeaseMs: config.pendingLeaseMs,
    auditMaxLen: config.auditMaxLen,
    replica: config.replica,
  };
}

/** Plugins and routes; never listens (server.ts does). Closing the app closes the store. */
export function buildApp(config: Config, deps: AppDeps): FastifyInstance {
  const app = Fastify({
    loggerInstance: deps.logger as unknown as FastifyBaseLogger, // pino 10's Logger type is wider than fastify's
    // One decision line per alert says what matters; a line per request would only double it.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.bodyLimitBytes,
    // TypeBox validates the routes' TypeBox schemas: alert labels are strings, so a number where a
    // string belongs is a 400, never coerced; unknown payload fields are kept.
    schemaController: typeboxCompilers,
  });
  registerErrorHandler(app);
  registerAuth(app, { token: config.authToken, basic: config.basicAuth });

  const pipeline: PipelineDeps = {
    rules: deps.rules,
    store: deps.store,
    submitter: deps.submitter,
    metrics: deps.metrics,
    logger: deps.logger,
    now: deps.now ?? Date.now,
    settings: pipelineSettings(config, deps.submitter),
  };
  deps.metrics.dryRun.set(pipeline.settings.dryRun ? 1 : 0);
  registerIngestRoutes(app, pipeline);
  registerInfoRoutes(app, {
    rules: deps.rules,
    store: deps.store,
    metrics: deps.metrics,
    openapiPath: OPENAPI_PATH,
    ...(deps.readinessProblems ? { readinessProblems: deps.readinessProblems } : {}),
  });
  // Alertmanager keeps connections alive: a response sent while shutting down must close its
  // connection, or the server would wait for the client's keep-alive timeout before exiting.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  // A callback hook, not an async one: it runs for every response, and a promise each costs.
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (closing) reply.header('Connection', 'close');
    done(null, payload);
  });
  app.addHook('onClose', async () => deps.store.close());
  return app;
}
