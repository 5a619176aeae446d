import { readFile } from 'node:fs/promises';
import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import type { Metrics } from '../pipeline/metrics.js';
import type { RuleSet } from '../rules/types.js';
import { type CooldownStore, StoreUnavailableError } from '../stores/cooldown-store.js';
import type { App } from './typebox.js';

export interface HealthDeps {
  rules: () => RuleSet;
  store: CooldownStore;
  metrics: Metrics;
  openapiPath: string;
  /** Extra readiness problems (e.g. missing WorkflowTemplates with --check-templates); empty when ready. */
  readinessProblems?: (() => Promise<string[]>) | undefined;
  readinessWarnings?: (() => string[]) | undefined;
  /**
   * Whether a request carries the API's credentials: /readyz then also says where the store is
   * and what its client reported. Without it (or without credentials configured) /readyz tells
   * anyone the reasons, never an address.
   */
  authenticated?: ((request: FastifyRequest) => boolean) | undefined;
}

/** One line on the cooldown store: the cause; for an authenticated reader, where, and the client's own words. */
function storeProblem(kind: string, err: unknown, detailed: boolean): string {
  if (!(err instanceof StoreUnavailableError)) return `cooldown store (${kind}) unavailable: ${(err as Error).message}`;
  if (!detailed || !err.address) return `cooldown store (${kind}) unavailable: ${err.reason}`;
  const detail = err.detail === err.reason ? '' : ` (${err.detail})`;
  return `cooldown store (${kind} at ${err.address}) unavailable: ${err.reason}${detail}`;
}

const READY_TIMEOUT_MS = 2000;

const Alive = Type.Object({ status: Type.Literal('ok') });
const Ready = Type.Object({ status: Type.Literal('ready'), warnings: Type.Optional(Type.Array(Type.String())) });
const NotReady = Type.Object({ status: Type.Literal('unavailable'), reasons: Type.Array(Type.String()) });
const Text = Type.String();

/** What probes, scrapers and API clients read without credentials: liveness, readiness, metrics, this API's document. */
export function healthRoutes(app: App, deps: HealthDeps): void {
  app.get('/healthz', { schema: { response: { 200: Alive } } }, async () => ({ status: 'ok' as const }));

  app.get('/readyz', { schema: { response: { 200: Ready, 503: NotReady } } }, async (request, reply) => {
    const problems: string[] = [];
    if (deps.rules().rules.length === 0) problems.push('no rules loaded');
    try {
      await Promise.race([
        deps.store.ping(),
        new Promise((_, reject) =>
          setTimeout(() => reject(new Error(`no answer within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS).unref(),
        ),
      ]);
    } catch (err) {
      problems.push(storeProblem(deps.store.kind, err, deps.authenticated?.(request) === true));
    }
    if (deps.readinessProblems) problems.push(...(await deps.readinessProblems()));
    const warnings = deps.readinessWarnings?.() ?? [];
    if (problems.length > 0)
      return reply.code(503).send({ status: 'unavailable', reasons: [...problems, ...warnings] });
    return warnings.length > 0 ? { status: 'ready' as const, warnings } : { status: 'ready' as const };
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
