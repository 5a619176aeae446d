import { Type } from '@sinclair/typebox';
import { AuditEntry } from '../decision.js';
import type { CooldownStore } from '../stores/cooldown-store.js';
import { ErrorBody, sendStoreUnavailable } from './errors.js';
import type { App } from './typebox.js';

export const DecisionRecords = Type.Object({ decisions: Type.Array(AuditEntry) });

/** The shared audit trail, newest first. */
export function decisionRoutes(app: App, store: CooldownStore): void {
  const schema = {
    querystring: Type.Object({ limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }) }),
    response: { 200: DecisionRecords, 400: ErrorBody, 401: ErrorBody, 503: ErrorBody },
  };
  app.get('/v1/decisions', { schema }, async (request, reply) => {
    try {
      return { decisions: await store.listDecisions(request.query.limit) };
    } catch (err) {
      return sendStoreUnavailable(reply, err);
    }
  });
}
