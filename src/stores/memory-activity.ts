/**
 * The activity of the memory store (the page's chart, SPEC §12): what the Redis store counts in
 * its hourly hashes, counted here by the store's injected clock. Only the buckets a reader can
 * still ask for are kept, so memory stays bounded whatever the uptime.
 */
import type { AuditEntry } from '../decision.js';
import type { RemediationState } from '../remediation/model.js';
import { HourCounts, KEPT_HOURS, ownKeys } from './activity-counts.js';
import { ACTIVITY_BUCKET_MS, type Activity, activityHour } from './cooldown-store.js';

export class ActivityBook {
  /** Hour index (epoch ms / ACTIVITY_BUCKET_MS) → what happened in that hour. */
  private readonly buckets = new Map<number, HourCounts>();
  /** Rule → epoch ms of its latest match; one entry per rule name ever matched. */
  private readonly lastMatch = new Map<string, number>();

  /** An entry appended to the audit trail: counted when it is a decision. */
  decided(entry: AuditEntry, now: number): void {
    if ('kind' in entry) return;
    const rule = this.bucket(activityHour(now), now).addDecision(entry);
    if (rule !== undefined) this.lastMatch.set(rule, Math.max(this.lastMatch.get(rule) ?? now, now));
  }

  /** A remediation of `rule` recorded in the final state `state`, counted in `hour` (finishedHour). */
  finished(rule: string, state: RemediationState, hour: number, now: number): void {
    this.bucket(hour, now).addState(rule, state);
  }

  read(hours: number, now: number): Activity {
    const current = activityHour(now);
    const buckets: Activity['buckets'] = [];
    for (let hour = current - hours + 1; hour <= current; hour++) {
      const counts = this.buckets.get(hour) ?? new HourCounts();
      buckets.push({ start: hour * ACTIVITY_BUCKET_MS, ...counts.counts() });
    }
    return { buckets, lastMatch: ownKeys(this.lastMatch) };
  }

  private bucket(hour: number, now: number): HourCounts {
    let counts = this.buckets.get(hour);
    if (!counts) {
      counts = new HourCounts();
      this.buckets.set(hour, counts);
      const oldestKept = activityHour(now) - KEPT_HOURS + 1;
      for (const kept of this.buckets.keys()) if (kept < oldestKept) this.buckets.delete(kept);
    }
    return counts;
  }
}
