import { Type } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Alert } from '../alert.js';
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
import { type Admission, admitBySize, decideAdmitted, TICKET_DECORATION, weightOf } from './admission.js';
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
  // Some decision is retry; or, with an error, too many alerts were in flight and nothing was done.
  503: Type.Union([DecisionsAnswer, ErrorBody]),
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

export interface IngestOptions {
  now: () => number;
  /** The bound on the alerts in flight (--max-alerts-in-flight). */
  admission: Admission;
  bodyLimit: number;
}

export function ingestRoutes(app: App, pipeline: Pipeline, options: IngestOptions): void {
  const { now, admission, bodyLimit } = options;
  // After authentication (the scope's own onRequest hook), before the body is read.
  app.decorateRequest(...TICKET_DECORATION);
  const onRequest = admitBySize(admission, bodyLimit);
  /** Decides ALERTS once they are admitted: 503 before any work when too many are in flight. */
  const decided = (
    request: FastifyRequest,
    reply: FastifyReply,
    alerts: Alert[],
    run: (alerts: readonly Alert[]) => Promise<Decision[]>,
  ) =>
    decideAdmitted(
      request,
      reply,
      admission,
      weightOf(alerts.length, request.headers['content-length'], bodyLimit),
      async () => answer(reply, await run(alerts)),
    );
  app.post(
    '/webhook/alertmanager',
    { schema: { body: WebhookBody, response: responses }, onRequest },
    async (request, reply) => decided(request, reply, alertsFromWebhook(request.body), pipeline.ingest),
  );
  app.post(
    '/api/v2/alerts',
    { schema: { body: PostableAlerts, response: responses }, onRequest },
    async (request, reply) => decided(request, reply, alertsFromPostable(request.body, now()), pipeline.ingest),
  );
  app.post('/v1/explain', { schema: { body: ExplainBody, response: responses }, onRequest }, async (request, reply) =>
    decided(request, reply, alertsFromEither(request.body, now()), pipeline.explain),
  );
}
