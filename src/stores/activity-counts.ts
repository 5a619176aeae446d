/**
 * Counting the page's activity (SPEC §12), the same way in both stores. Rule names are whoever
 * writes the rules' to choose, and `constructor` is a DNS label as valid as any (the stores take
 * any name: `__proto__` too): counts are added up in Maps, and handed out as objects in which
 * every name is a key of the object's own.
 */
import type { AuditEntry } from '../decision.js';
import type { Remediation, RemediationState } from '../remediation/model.js';
import { ACTIVITY_BUCKET_MS, ACTIVITY_KEPT_MS, type ActivityCounts, activityHour } from './cooldown-store.js';

/** How many hours' buckets are kept, the current one included. */
export const KEPT_HOURS = ACTIVITY_KEPT_MS / ACTIVITY_BUCKET_MS;

interface RuleTally {
  matches: number;
  states: Map<RemediationState, number>;
}

/** One hour's counts, while they are added up. */
export class HourCounts {
  private readonly outcomes = new Map<string, number>();
  private readonly rules = new Map<string, RuleTally>();

  /**
   * One appended entry, when it is a decision: under its outcome, and under its rule's matches
   * when it has one. Answers the rule it matched (its latest match is now), else undefined.
   */
  addDecision(entry: AuditEntry): string | undefined {
    if ('kind' in entry) return undefined;
    this.addOutcome(entry.outcome);
    if (entry.rule === null) return undefined;
    this.addMatches(entry.rule);
    return entry.rule;
  }

  addOutcome(outcome: string, count = 1): void {
    this.outcomes.set(outcome, (this.outcomes.get(outcome) ?? 0) + count);
  }

  addMatches(rule: string, count = 1): void {
    this.rule(rule).matches += count;
  }

  addState(rule: string, state: RemediationState, count = 1): void {
    const { states } = this.rule(rule);
    states.set(state, (states.get(state) ?? 0) + count);
  }

  /** A copy: later counts do not change it. */
  counts(): ActivityCounts {
    const rules: ActivityCounts['rules'] = ownKeys(
      [...this.rules].map(([rule, { matches, states }]) => [rule, { matches, states: ownKeys(states) }]),
    );
    return { outcomes: ownKeys(this.outcomes), rules };
  }

  private rule(rule: string): RuleTally {
    let tally = this.rules.get(rule);
    if (!tally) {
      tally = { matches: 0, states: new Map() };
      this.rules.set(rule, tally);
    }
    return tally;
  }
}

/**
 * A plain object (the JSON the routes answer) with each name a key of its own: Object.fromEntries
 * defines its keys, so `__proto__` is a key like any other rather than the object's prototype.
 */
export function ownKeys<K extends string, V>(entries: Iterable<readonly [K, V]>): Record<K, V> {
  return Object.fromEntries(entries) as Record<K, V>;
}

/**
 * The hour a remediation's final state is counted in: the hour it finished, as its finishedAt
 * says, since a watcher that lists the Workflows again (a replica restarted, or the record's
 * markers expired) records old ones now, and they must not count as this hour's. The hour of
 * `now` when finishedAt does not say or says later (a clock ahead of the store's). Undefined
 * when that hour is no longer kept (ACTIVITY_KEPT_MS): it is not counted at all.
 */
export function finishedHour(remediation: Pick<Remediation, 'finishedAt'>, now: number): number | undefined {
  const current = activityHour(now);
  const finished = remediation.finishedAt === undefined ? Number.NaN : Date.parse(remediation.finishedAt);
  const hour = Number.isNaN(finished) ? current : Math.min(activityHour(finished), current);
  return hour > current - KEPT_HOURS ? hour : undefined;
}
