import { Type } from '@sinclair/typebox';
import type { FastifyReply } from 'fastify';
import { Decision } from '../decision.js';
import type { Pipeline } from '../pipeline/pipeline.js';
import {
  alertsFromEither,
  alertsFromPostable,
  alertsFromWebhook,
  ExplainBody,
  PostableAlerts,
  WebhookBody,
} from '../pipeline/receive.js';
import { ErrorBody } from './errors.js';
import type { App } from './typebox.js';

/** What every ingest route answers, 200 or 503: one decision per alert. */
export const DecisionsAnswer = Type.Object({ decisions: Type.Array(Decision) });

const responses = {
  200: DecisionsAnswer,
  400: ErrorBody,
  401: ErrorBody,
  413: ErrorBody,
  415: ErrorBody,
  503: DecisionsAnswer,
};

const DEFAULT_RETRY_AFTER_SECONDS = 5;

function withoutRetryAfter({ retryAfterSeconds: _, ...decision }: Decision): Decision {
  return decision;
}

/** 200 when every alert was decided; 503 with Retry-After when any decision is retry, so Alertmanager redelivers the group. */
function answer(reply: FastifyReply, decisions: Decision[]) {
  const retries = decisions.filter((d) => d.outcome === 'retry');
  if (retries.length > 0) {
    const after = Math.max(DEFAULT_RETRY_AFTER_SECONDS, ...retries.map((d) => d.retryAfterSeconds ?? 0));
    reply.code(503).header('Retry-After', String(after));
  }
  // retryAfterSeconds only feeds the header; the answer is what DecisionsAnswer documents.
  return {
    decisions: decisions.some((d) => d.retryAfterSeconds !== undefined) ? decisions.map(withoutRetryAfter) : decisions,
  };
}

export function ingestRoutes(app: App, pipeline: Pipeline, now: () => number): void {
  app.post('/webhook/alertmanager', { schema: { body: WebhookBody, response: responses } }, async (request, reply) =>
    answer(reply, await pipeline.ingest(alertsFromWebhook(request.body))),
  );
  app.post('/api/v2/alerts', { schema: { body: PostableAlerts, response: responses } }, async (request, reply) =>
    answer(reply, await pipeline.ingest(alertsFromPostable(request.body, now()))),
  );
  app.post('/v1/explain', { schema: { body: ExplainBody, response: responses } }, async (request, reply) =>
    answer(reply, await pipeline.explain(alertsFromEither(request.body, now()))),
  );
}
