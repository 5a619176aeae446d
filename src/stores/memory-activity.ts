/**
 * The activity of the memory store (the page's chart, SPEC §12): what the Redis store counts in
 * its hourly hashes, counted here by the store's injected clock. Only the buckets a reader can
 * still ask for are kept, so memory stays bounded whatever the uptime.
 */
import type { AuditEntry } from '../decision.js';
import type { RemediationState } from '../remediation/model.js';
import {
  ACTIVITY_BUCKET_MS,
  ACTIVITY_KEPT_MS,
  type Activity,
  type ActivityCounts,
  activityHour,
} from './cooldown-store.js';

const KEPT_BUCKETS = ACTIVITY_KEPT_MS / ACTIVITY_BUCKET_MS;

export class ActivityBook {
  /** Hour index (epoch ms / ACTIVITY_BUCKET_MS) → what happened in that hour. */
  private readonly buckets = new Map<number, ActivityCounts>();
  /** Rule → epoch ms of its latest match; one entry per rule name ever matched. */
  private readonly lastMatch = new Map<string, number>();

  /** An entry appended to the audit trail: counted when it is a decision. */
  decided(entry: AuditEntry, now: number): void {
    if ('kind' in entry) return;
    const counts = this.bucket(now);
    counts.outcomes[entry.outcome] = (counts.outcomes[entry.outcome] ?? 0) + 1;
    if (entry.rule === null) return;
    ruleCounts(counts, entry.rule).matches += 1;
    this.lastMatch.set(entry.rule, Math.max(this.lastMatch.get(entry.rule) ?? now, now));
  }

  /** A remediation of `rule` recorded in the final state `state`. */
  finished(rule: string, state: RemediationState, now: number): void {
    const { states } = ruleCounts(this.bucket(now), rule);
    states[state] = (states[state] ?? 0) + 1;
  }

  read(hours: number, now: number): Activity {
    const current = activityHour(now);
    const buckets: Activity['buckets'] = [];
    for (let hour = current - hours + 1; hour <= current; hour++) {
      const counts = this.buckets.get(hour);
      buckets.push({ start: hour * ACTIVITY_BUCKET_MS, ...(counts ? structuredClone(counts) : emptyCounts()) });
    }
    return { buckets, lastMatch: Object.fromEntries(this.lastMatch) };
  }

  private bucket(now: number): ActivityCounts {
    const hour = activityHour(now);
    let counts = this.buckets.get(hour);
    if (!counts) {
      counts = emptyCounts();
      this.buckets.set(hour, counts);
      for (const kept of this.buckets.keys()) if (kept <= hour - KEPT_BUCKETS) this.buckets.delete(kept);
    }
    return counts;
  }
}

function emptyCounts(): ActivityCounts {
  return { outcomes: {}, rules: {} };
}

function ruleCounts(counts: ActivityCounts, rule: string): ActivityCounts['rules'][string] {
  counts.rules[rule] ??= { matches: 0, states: {} };
  return counts.rules[rule];
}
