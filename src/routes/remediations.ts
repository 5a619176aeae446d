import { Type } from '@sinclair/typebox';
import { type EscalationLinks, workflowUrl } from '../escalation/alerts.js';
import { Remediation, RemediationState, workflowOfId } from '../remediation/model.js';
import type { CooldownStore } from '../stores/cooldown-store.js';
import { ErrorBody, sendStoreUnavailable } from './errors.js';
import type { App } from './typebox.js';

export const RemediationList = Type.Object({
  remediations: Type.Array(
    Type.Composite([
      Remediation,
      /** With --argo-ui-url: the Workflow's page in the Argo UI. */
      Type.Object({ workflowUrl: Type.Optional(Type.String()) }),
    ]),
  ),
});

/**
 * What became of the Workflows Kube Sentinel created (SPEC §9), newest first, from the shared
 * store; each linked to the Argo UI when its URL is known.
 */
export function remediationRoutes(app: App, store: CooldownStore, links: EscalationLinks = {}): void {
  const schema = {
    querystring: Type.Object({
      limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
      state: Type.Optional(RemediationState),
    }),
    response: { 200: RemediationList, 400: ErrorBody, 401: ErrorBody, 503: ErrorBody },
  };
  const linked = (remediation: Remediation) => {
    const workflow = workflowOfId(remediation.workflow);
    if (!links.argoUiUrl || !workflow) return remediation;
    return { ...remediation, workflowUrl: workflowUrl(links.argoUiUrl, workflow) };
  };
  app.get('/v1/remediations', { schema }, async (request, reply) => {
    try {
      const listed = await store.listRemediations(request.query.limit, request.query.state);
      return { remediations: listed.map(linked) };
    } catch (err) {
      return sendStoreUnavailable(reply, err);
    }
  });
}
