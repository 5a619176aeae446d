import { Type } from '@sinclair/typebox';
import type { RemediationState } from '../remediation/model.js';
import type { RuleSet } from '../rules/types.js';
import { ACTIVITY_BUCKET_MS, type Activity, type CooldownStore } from '../stores/cooldown-store.js';
import { ErrorBody, sendStoreUnavailable } from './errors.js';
import type { App } from './typebox.js';

/** The store keeps a day of buckets (and the hour before it). */
const MAX_ACTIVITY_HOURS = 24;

const Count = Type.Integer({ minimum: 0 });
const FINAL = ['succeeded', 'failed', 'cancelled', 'unknown'] as const satisfies readonly RemediationState[];

export const ActivityAnswer = Type.Object({
  hours: Type.Integer({ minimum: 1, maximum: MAX_ACTIVITY_HOURS }),
  bucketSeconds: Type.Integer({ minimum: 1 }),
  /** Exactly `hours` buckets, oldest first, the last one the current hour. */
  buckets: Type.Array(
    Type.Object({
      start: Type.String({ format: 'date-time' }),
      /** Decisions by outcome; an outcome that did not happen is absent. */
      outcomes: Type.Record(Type.String(), Count),
    }),
  ),
  /** The rules in force, in evaluation order. */
  rules: Type.Array(
    Type.Object({
      rule: Type.String(),
      enabled: Type.Boolean(),
      /** Its latest matching decision, however old; null when none is known. */
      lastMatchAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
      /** Decisions it matched within the hours. */
      matches: Count,
      /** Its remediations that ended within the hours, by final state. */
      remediations: Type.Object({ succeeded: Count, failed: Count, cancelled: Count, unknown: Count }),
      /**
       * succeeded / (succeeded + failed + unknown): cancelled is Kube Sentinel stopping it (approval
       * expired, alert resolved), not a fix that failed. Null when none of those ended.
       */
      successRate: Type.Union([Type.Number({ minimum: 0, maximum: 1 }), Type.Null()]),
    }),
  ),
});

function answer(activity: Activity, hours: number, ruleSet: RuleSet) {
  return {
    hours,
    bucketSeconds: ACTIVITY_BUCKET_MS / 1000,
    buckets: activity.buckets.map(({ start, outcomes }) => ({ start: new Date(start).toISOString(), outcomes })),
    rules: ruleSet.rules.map(({ name, enabled }) => {
      const ended = { succeeded: 0, failed: 0, cancelled: 0, unknown: 0 };
      let matches = 0;
      for (const bucket of activity.buckets) {
        const counts = own(bucket.rules, name);
        if (!counts) continue;
        matches += counts.matches;
        for (const state of FINAL) ended[state] += own(counts.states, state) ?? 0;
      }
      const judged = ended.succeeded + ended.failed + ended.unknown;
      const lastMatch = own(activity.lastMatch, name);
      return {
        rule: name,
        enabled,
        lastMatchAt: lastMatch === undefined ? null : new Date(lastMatch).toISOString(),
        matches,
        remediations: ended,
        successRate: judged === 0 ? null : ended.succeeded / judged,
      };
    }),
  };
}

/**
 * The value under `key` when it is a key of the record's own: a rule named `constructor` or
 * `toString` that counted nothing must not find Object's.
 */
function own<K extends string, V>(record: Partial<Record<K, V>>, key: K): V | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

/** What happened in the last hours (SPEC §12): decisions by outcome per hour, and each rule's record. */
export function activityRoutes(app: App, deps: { store: CooldownStore; rules: () => RuleSet }): void {
  const schema = {
    querystring: Type.Object({
      hours: Type.Integer({ minimum: 1, maximum: MAX_ACTIVITY_HOURS, default: MAX_ACTIVITY_HOURS }),
    }),
    response: { 200: ActivityAnswer, 400: ErrorBody, 401: ErrorBody, 503: ErrorBody },
  };
  app.get('/v1/activity', { schema }, async (request, reply) => {
    const { hours } = request.query;
    let activity: Activity;
    try {
      activity = await deps.store.activity(hours);
    } catch (err) {
      return sendStoreUnavailable(reply, err);
    }
    // Outside the try: a fault of this route's own is a 500 to fix, not an unavailable store.
    return answer(activity, hours, deps.rules());
  });
}
