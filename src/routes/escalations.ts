import { Type } from '@sinclair/typebox';
import { ESCALATION_ALERTNAMES } from '../remediation/model.js';
import type { CooldownStore, OpenEscalation } from '../stores/cooldown-store.js';
import { ErrorBody, sendStoreUnavailable } from './errors.js';
import type { App } from './typebox.js';

const Labels = Type.Record(Type.String(), Type.String());

export const EscalationList = Type.Object({
  escalations: Type.Array(
    Type.Object({
      /** Unique within its cooldown key: what it is about (`failed:<workflow>`, `exhausted`, `approval:<workflow>`). */
      id: Type.String(),
      cooldownKey: Type.String(),
      alertname: Type.Union(ESCALATION_ALERTNAMES.map((name) => Type.Literal(name))),
      labels: Labels,
      annotations: Labels,
      /** Absent for one opened before the receiver noted when. */
      openedAt: Type.Optional(Type.String({ format: 'date-time' })),
      /** When its alert ends in Alertmanager unless it is sent again (--escalation-ttl). */
      expiresAt: Type.String({ format: 'date-time' }),
    }),
  ),
});

function listed({ id, cooldownKey, alert, openedAt, expiresAt }: OpenEscalation) {
  return {
    id,
    cooldownKey,
    alertname: alert.labels.alertname,
    labels: alert.labels,
    annotations: alert.annotations,
    ...(openedAt === undefined ? {} : { openedAt: new Date(openedAt).toISOString() }),
    expiresAt: new Date(expiresAt).toISOString(),
  };
}

/** The escalations firing now (SPEC §9), newest opened first, from the shared store. */
export function escalationRoutes(app: App, store: CooldownStore): void {
  const schema = {
    querystring: Type.Object({ limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }) }),
    response: { 200: EscalationList, 400: ErrorBody, 401: ErrorBody, 503: ErrorBody },
  };
  app.get('/v1/escalations', { schema }, async (request, reply) => {
    try {
      return { escalations: (await store.listEscalations(request.query.limit)).map(listed) };
    } catch (err) {
      return sendStoreUnavailable(reply, err);
    }
  });
}
