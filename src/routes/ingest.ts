import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Alert } from '../pipeline/alert.js';
import type { Decision } from '../pipeline/decision.js';
import { decideAlerts, type Mode, type PipelineDeps } from '../pipeline/pipeline.js';
import {
  alertsFromEither,
  alertsFromPostable,
  alertsFromWebhook,
  DecisionsResponse,
  ExplainBody,
  PostableAlerts,
  WebhookBody,
} from '../pipeline/receive.js';

const response = { 200: DecisionsResponse, 503: DecisionsResponse };

const DEFAULT_RETRY_AFTER_SECONDS = 5;

function withoutRetryAfter({ retryAfterSeconds: _, ...decision }: Decision): Decision {
  return decision;
}

/** 200 when every alert was decided; 503 with Retry-After when any decision is retry, so Alertmanager redelivers the group. */
async function answer(reply: FastifyReply, alerts: Alert[], mode: Mode, deps: PipelineDeps) {
  const decisions: Decision[] = await decideAlerts(alerts, mode, deps);
  const retries = decisions.filter((d) => d.outcome === 'retry');
  if (retries.length > 0) {
    const after = Math.max(DEFAULT_RETRY_AFTER_SECONDS, ...retries.map((d) => d.retryAfterSeconds ?? 0));
    reply.code(503).header('Retry-After', String(after));
  }
  // retryAfterSeconds only feeds the header; the answer is what DecisionsResponse documents.
  return { decisions: decisions.some((d) => d.retryAfterSeconds !== undefined) ? decisions.map(withoutRetryAfter) : decisions };
}

export function registerIngestRoutes(app: FastifyInstance, deps: PipelineDeps): void {
  app.post('/webhook/alertmanager', { schema: { body: WebhookBody, response } }, async (request, reply) =>
    answer(reply, alertsFromWebhook(request.body as WebhookBody), 'ingest', deps),
  );
  app.post('/api/v2/alerts', { schema: { body: PostableAlerts, response } }, async (request, reply) =>
    answer(reply, alertsFromPostable(request.body as PostableAlerts, deps.now()), 'ingest', deps),
  );
  app.post('/v1/explain', { schema: { body: ExplainBody, response } }, async (request, reply) =>
    answer(reply, alertsFromEither(request.body as WebhookBody | PostableAlerts, deps.now()), 'explain', deps),
  );
}
