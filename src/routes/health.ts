import { readFile } from 'node:fs/promises';
import { Type } from '@sinclair/typebox';
import type { Metrics } from '../pipeline/metrics.js';
import type { RuleSet } from '../rules/types.js';
import type { CooldownStore } from '../stores/cooldown-store.js';
import type { App } from './typebox.js';

export interface HealthDeps {
  rules: () => RuleSet;
  store: CooldownStore;
  metrics: Metrics;
  openapiPath: string;
  /** Extra readiness problems (e.g. missing WorkflowTemplates with --check-templates); empty when ready. */
  readinessProblems?: (() => Promise<string[]>) | undefined;
}

const READY_TIMEOUT_MS = 2000;

const Alive = Type.Object({ status: Type.Literal('ok') });
const Ready = Type.Object({ status: Type.Literal('ready') });
const NotReady = Type.Object({ status: Type.Literal('unavailable'), reasons: Type.Array(Type.String()) });
const Text = Type.String();

/** What probes, scrapers and API clients read without credentials: liveness, readiness, metrics, this API's document. */
export function healthRoutes(app: App, deps: HealthDeps): void {
  app.get('/healthz', { schema: { response: { 200: Alive } } }, async () => ({ status: 'ok' as const }));

  app.get('/readyz', { schema: { response: { 200: Ready, 503: NotReady } } }, async (_request, reply) => {
    const problems: string[] = [];
    if (deps.rules().rules.length === 0) problems.push('no rules loaded');
    try {
      await Promise.race([
        deps.store.ping(),
        new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), READY_TIMEOUT_MS).unref()),
      ]);
    } catch (err) {
      problems.push(`cooldown store (${deps.store.kind}) unavailable: ${(err as Error).message}`);
    }
    if (deps.readinessProblems) problems.push(...(await deps.readinessProblems()));
    if (problems.length > 0) return reply.code(503).send({ status: 'unavailable', reasons: problems });
    return { status: 'ready' as const };
  });

  app.get('/metrics', { schema: { response: { 200: Text } } }, async (_request, reply) => {
    reply.header('Content-Type', deps.metrics.registry.contentType);
    return deps.metrics.registry.metrics();
  });

  let openapi: string | undefined;
  app.get('/openapi.yaml', { schema: { response: { 200: Text } } }, async (_request, reply) => {
    openapi ??= await readFile(deps.openapiPath, 'utf8');
    return reply.type('application/yaml').send(openapi);
  });
}
