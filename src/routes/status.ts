import { Type } from '@sinclair/typebox';
import { ErrorBody } from './errors.js';
import type { App } from './typebox.js';

export const StatusAnswer = Type.Object({
  /** The replica that answered (--replica, the pod's name by default). */
  replica: Type.String(),
  /** `dry-run`: Workflows are decided and rendered, never created (--dry-run, or no cluster). */
  mode: Type.Union([Type.Literal('cluster'), Type.Literal('dry-run')]),
  /** `memory`: cooldowns, limits, pauses and the audit trail are this replica's alone. */
  store: Type.Union([Type.Literal('memory'), Type.Literal('redis')]),
});

/** How this receiver runs: what a person reading its page must know before trusting it. */
export function statusRoutes(
  app: App,
  status: { replica: string; mode: 'cluster' | 'dry-run'; store: 'memory' | 'redis' },
) {
  const answer = { replica: status.replica, mode: status.mode, store: status.store };
  app.get('/v1/status', { schema: { response: { 200: StatusAnswer, 401: ErrorBody } } }, async () => answer);
}
