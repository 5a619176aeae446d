import { Type } from '@sinclair/typebox';
import { Remediation, RemediationState } from '../remediation/model.js';
import type { CooldownStore } from '../stores/cooldown-store.js';
import { ErrorBody, sendStoreUnavailable } from './errors.js';
import type { App } from './typebox.js';

export const RemediationList = Type.Object({ remediations: Type.Array(Remediation) });

/** What became of the Workflows Kube Sentinel created (SPEC §9), newest first, from the shared store. */
export function remediationRoutes(app: App, store: CooldownStore): void {
  const schema = {
    querystring: Type.Object({
      limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
      state: Type.Optional(RemediationState),
    }),
    response: { 200: RemediationList, 400: ErrorBody, 401: ErrorBody, 503: ErrorBody },
  };
  app.get('/v1/remediations', { schema }, async (request, reply) => {
    try {
      return { remediations: await store.listRemediations(request.query.limit, request.query.state) };
    } catch (err) {
      return sendStoreUnavailable(reply, err);
    }
  });
}
