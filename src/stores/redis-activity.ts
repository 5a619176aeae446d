/**
 * The activity of the Redis store (the page's chart, SPEC §12): one hash per hour of the store's
 * clock, counted by the scripts that append decisions and record state changes (no round trip of
 * its own), and the latest match of each rule. A hash's fields:
 * - `o:<outcome>`: decisions with that outcome;
 * - `m:<rule>`: decisions the rule matched;
 * - `s:<rule>:<state>`: the rule's remediations that ended in that final state.
 * Rule names are DNS labels and states are plain words: neither holds a `:`, and a field is read
 * up to its last one.
 */
import type { AuditEntry } from '../decision.js';
import { isRemediationState, type RemediationState } from '../remediation/model.js';
import { HourCounts, ownKeys } from './activity-counts.js';
import { ACTIVITY_BUCKET_MS, type Activity, type ActivityCounts, activityHour } from './cooldown-store.js';
import type { RedisKeys } from './redis-keys.js';

function outcomeField(outcome: string): string {
  return `o:${outcome}`;
}

function matchesField(rule: string): string {
  return `m:${rule}`;
}

export function stateField(rule: string, state: RemediationState): string {
  return `s:${rule}:${state}`;
}

/** What one batch of audit entries adds to the activity. */
interface ActivityTally {
  /** Hour → its counts. */
  hours: Map<number, HourCounts>;
  /** Rule → epoch ms of its latest match in the batch. */
  lastMatch: Map<string, number>;
}

/**
 * Counts each decision of a batch in the hour of `at` (the store's clock when it was appended),
 * before the batch folds its repeats: a repeat counts as much as the decision it repeats.
 */
export function tallyDecisions(entries: Iterable<{ entry: AuditEntry; at: number }>): ActivityTally {
  const tally: ActivityTally = { hours: new Map(), lastMatch: new Map() };
  for (const { entry, at } of entries) {
    if ('kind' in entry) continue;
    const hour = activityHour(at);
    let counts = tally.hours.get(hour);
    if (!counts) {
      counts = new HourCounts();
      tally.hours.set(hour, counts);
    }
    const rule = counts.addDecision(entry);
    if (rule !== undefined) tally.lastMatch.set(rule, Math.max(tally.lastMatch.get(rule) ?? at, at));
  }
  return tally;
}

/** The hash fields one hour's counts add to (what countsOf reads back). */
export function fieldsOf({ outcomes, rules }: ActivityCounts): [string, number][] {
  const fields: [string, number][] = [];
  for (const [outcome, count] of Object.entries(outcomes)) fields.push([outcomeField(outcome), count]);
  for (const [rule, { matches, states }] of Object.entries(rules)) {
    if (matches > 0) fields.push([matchesField(rule), matches]);
    for (const [state, count] of Object.entries(states))
      fields.push([stateField(rule, state as RemediationState), count]);
  }
  return fields;
}

/** What the reads need of the client: a pipeline of HGETALLs, one round trip for the whole chart. */
interface ActivityClient {
  pipeline(): {
    hgetall(key: string): unknown;
    exec(): Promise<[Error | null, unknown][] | null>;
  };
}

/**
 * The last `hours` buckets and the latest matches. Every key is in the `{records}` slot, so the
 * pipeline goes to one node of a Redis Cluster too.
 */
export async function readActivity(
  client: ActivityClient,
  keys: Pick<RedisKeys, 'activity' | 'lastMatch'>,
  hours: number,
  now: number,
): Promise<Activity> {
  const current = activityHour(now);
  const wanted = Array.from({ length: hours }, (_, i) => current - hours + 1 + i);
  const pipeline = client.pipeline();
  for (const hour of wanted) pipeline.hgetall(keys.activity(hour));
  pipeline.hgetall(keys.lastMatch());
  const answers = (await pipeline.exec()) ?? [];
  const hashes = answers.map(([error, hash]) => {
    if (error) throw error;
    return hash as Record<string, string>;
  });
  const buckets = wanted.map((hour, i) => ({ start: hour * ACTIVITY_BUCKET_MS, ...countsOf(hashes[i] ?? {}) }));
  const lastMatch = new Map<string, number>();
  for (const [rule, at] of Object.entries(hashes[wanted.length] ?? {})) {
    const ms = Number(at);
    if (Number.isFinite(ms)) lastMatch.set(rule, ms);
  }
  return { buckets, lastMatch: ownKeys(lastMatch) };
}

/** A field that is not one of ours, or not a count, is left out rather than trusted. */
function countsOf(hash: Record<string, string>): ActivityCounts {
  const counts = new HourCounts();
  for (const [field, value] of Object.entries(hash)) {
    const count = Number(value);
    if (!Number.isSafeInteger(count)) continue;
    const name = field.slice(2);
    if (field.startsWith('o:')) counts.addOutcome(name, count);
    else if (field.startsWith('m:')) counts.addMatches(name, count);
    else if (field.startsWith('s:')) {
      const split = name.lastIndexOf(':');
      const state = name.slice(split + 1);
      if (split > 0 && isRemediationState(state)) counts.addState(name.slice(0, split), state, count);
    }
  }
  return counts.counts();
}
