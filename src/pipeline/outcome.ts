/**
 * Every outcome of a decision. The string is used unchanged in the HTTP response,
 * the decision log line, the metrics labels and the audit trail.
 */
export const Outcome = {
  Submitted: 'submitted',
  DryRun: 'dry_run',
  Cooldown: 'cooldown',
  NoMatch: 'no_match',
  Resolved: 'resolved',
  Excluded: 'excluded',
  InvalidTarget: 'invalid_target',
  RateLimited: 'rate_limited',
  Failed: 'failed',
  Retry: 'retry',
} as const;

export type Outcome = (typeof Outcome)[keyof typeof Outcome];

export const ALL_OUTCOMES: readonly Outcome[] = Object.values(Outcome);
