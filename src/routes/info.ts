import { readFile } from 'node:fs/promises';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { formatDuration } from '../rules/duration.js';
import type { RuleSet } from '../rules/types.js';
import type { CooldownStore } from '../stores/cooldown-store.js';
import type { Metrics } from '../metrics.js';

export interface InfoDeps {
  rules: () => RuleSet;
  store: CooldownStore;
  metrics: Metrics;
  openapiPath: string;
  readinessProblems?: () => Promise<string[]>;
}

const READY_TIMEOUT_MS = 2000;

/** Health, readiness, metrics, loaded rules, the audit trail and the API document. */
export function registerInfoRoutes(app: FastifyInstance, deps: InfoDeps): void {
  const Status = Type.Object({ status: Type.String(), reasons: Type.Optional(Type.Array(Type.String())) });
  app.get('/healthz', { schema: { response: { 200: Status } } }, async () => ({ status: 'ok' }));

  app.get('/readyz', { schema: { response: { 200: Status, 503: Status } } }, async (_request, reply) => {
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
    return { status: 'ready' };
  });

  app.get('/metrics', async (_request, reply) => {
    reply.header('Content-Type', deps.metrics.registry.contentType);
    return deps.metrics.registry.metrics();
  });

  app.get('/v1/rules', async () => {
    const ruleSet = deps.rules();
    return {
      excluded_namespaces: ruleSet.excludedNamespaces,
      rules: ruleSet.rules.map((rule) => ({
        name: rule.name,
        priority: rule.priority,
        enabled: rule.enabled,
        action: rule.remediation.action,
        template: rule.remediation.params.workflowTemplate ?? null,
        cluster_scope: rule.remediation.params.clusterScope,
        workflow_name: rule.remediation.params.workflowName ?? null,
        cooldown: formatDuration(rule.remediation.cooldownMs),
        on_resolved: rule.onResolved,
        source: `${rule.source.file}:${rule.source.line}`,
      })),
    };
  });

  app.get(
    '/v1/decisions',
    { schema: { querystring: Type.Object({ limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,7}$' })) }) } },
    async (request, reply) => {
      const raw = (request.query as { limit?: string }).limit;
      const limit = raw === undefined ? 100 : Number(raw);
      if (limit < 1 || limit > 1000) {
        return reply.code(400).send({ error: 'invalid_request', message: 'querystring.limit must be from 1 to 1000', field: 'querystring.limit' });
      }
      try {
        return { decisions: await deps.store.listDecisions(limit) };
      } catch (err) {
        return reply.code(503).header('Retry-After', '5').send({ error: 'store_unavailable', message: (err as Error).message });
      }
    },
  );

  let openapi: string | undefined;
  app.get('/openapi.yaml', async (_request, reply) => {
    openapi ??= await readFile(deps.openapiPath, 'utf8');
    return reply.type('application/yaml').send(openapi);
  });
}
