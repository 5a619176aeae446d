import { Type } from '@sinclair/typebox';
import { heldForMs, type LocalCooldowns } from '../pipeline/local-cooldowns.js';
import type { RuleSet } from '../rules/types.js';
import type { CooldownClaim, CooldownStore } from '../stores/cooldown-store.js';
import { ErrorBody, sendStoreUnavailable } from './errors.js';
import type { App } from './typebox.js';

/** A cooldown ended by hand is remembered at least this long (see endedMarkerMs). */
const MIN_ENDED_MARKER_MS = 24 * 3600_000;

const Held = Type.Object({
  workflow: Type.String(),
  state: Type.Union([Type.Literal('pending'), Type.Literal('committed')]),
  claimedAt: Type.String({ format: 'date-time' }),
  dryRun: Type.Optional(Type.Boolean()),
});

export const CooldownList = Type.Object({
  cooldowns: Type.Array(
    Type.Composite([
      Type.Object({ key: Type.String() }),
      Held,
      Type.Object({ expiresAt: Type.String({ format: 'date-time' }) }),
    ]),
  ),
});

export const EndedCooldown = Type.Object({ key: Type.String(), ended: Type.Union([Held, Type.Null()]) });

function held(claim: CooldownClaim) {
  return {
    workflow: claim.workflowName,
    state: claim.state,
    claimedAt: new Date(claim.claimedAt).toISOString(),
    ...(claim.dryRun ? { dryRun: true } : {}),
  };
}

/**
 * The ended mark must outlive every Workflow from before that could still hold the key in the
 * cluster (the cluster check ignores those created before it): the longest hold of the rules in
 * force, and at least a day.
 */
function endedMarkerMs(rules: RuleSet): number {
  return Math.max(MIN_ENDED_MARKER_MS, ...rules.rules.map((rule) => heldForMs(rule)));
}

/** The cooldowns held now, and ending one by hand after a manual fix (SPEC §10). */
export function cooldownRoutes(
  app: App,
  deps: { store: CooldownStore; local: LocalCooldowns; rules: () => RuleSet },
): void {
  const list = {
    querystring: Type.Object({ limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }) }),
    response: { 200: CooldownList, 400: ErrorBody, 401: ErrorBody, 503: ErrorBody },
  };
  app.get('/v1/cooldowns', { schema: list }, async (request, reply) => {
    try {
      const found = await deps.store.listCooldowns(request.query.limit);
      return {
        cooldowns: found.map((cooldown) => ({
          key: cooldown.key,
          ...held(cooldown.claim),
          expiresAt: new Date(cooldown.expiresAt).toISOString(),
        })),
      };
    } catch (err) {
      return sendStoreUnavailable(reply, err);
    }
  });

  // A key holds `/` and `:` (`rule:namespace/workload`): the rest of the path is the key, sent
  // percent-encoded or as it is.
  const end = {
    params: Type.Object({ '*': Type.String({ minLength: 1, maxLength: 1024 }) }),
    response: { 200: EndedCooldown, 400: ErrorBody, 401: ErrorBody, 503: ErrorBody },
  };
  app.delete('/v1/cooldowns/*', { schema: end }, async (request, reply) => {
    const key = request.params['*'];
    try {
      const ended = await deps.store.endCooldown(key, endedMarkerMs(deps.rules()));
      deps.local.forget(key);
      request.log.info({ key, workflow: ended?.workflowName ?? null }, 'cooldown ended by hand');
      return { key, ended: ended ? held(ended) : null };
    } catch (err) {
      return sendStoreUnavailable(reply, err);
    }
  });
}
