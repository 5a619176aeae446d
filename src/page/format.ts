/**
 * What the page shows, computed from the API's answers: pure functions of their input and the
 * time, so that node's tests check them without a browser.
 */

/** A span of time as a person reads it at a glance: `45s`, `12m`, `3h 5m`, `2d 4h`. */
export function span(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return minutes % 60 === 0 ? `${hours}h` : `${hours}h ${minutes % 60}m`;
  const days = Math.floor(hours / 24);
  return hours % 24 === 0 ? `${days}d` : `${days}d ${hours % 24}h`;
}

/** `3m ago`, or `in 3m` for a time still to come; `—` for a missing or unreadable time. */
export function relative(iso: string | null | undefined, now: number): string {
  const at = iso ? Date.parse(iso) : Number.NaN;
  if (Number.isNaN(at)) return '—';
  return at > now ? `in ${span(at - now)}` : `${span(now - at)} ago`;
}

/**
 * How long a remediation ran: submitted to finished, or to now while it is not finished (then
 * marked so: the figure still grows).
 */
export function duration(submittedAt: string, finishedAt: string | undefined, now: number): string {
  const start = Date.parse(submittedAt);
  if (Number.isNaN(start)) return '—';
  const end = finishedAt ? Date.parse(finishedAt) : Number.NaN;
  return Number.isNaN(end) ? `${span(now - start)} so far` : span(end - start);
}

/** How a state is shown: a word and a symbol beside its colour, so colour is never the only signal. */
export interface Badge {
  label: string;
  symbol: string;
  /** The CSS class of its colour: good, bad, wait, busy, idle. */
  tone: 'good' | 'bad' | 'wait' | 'busy' | 'idle';
}

const BADGES: Record<string, Badge> = {
  // Symbols every system font has (Unicode's pause sign is missing from many): ‖ for a wait.
  awaiting_approval: { label: 'awaiting approval', symbol: '‖', tone: 'wait' },
  pending: { label: 'pending', symbol: '…', tone: 'idle' },
  running: { label: 'running', symbol: '▶', tone: 'busy' },
  succeeded: { label: 'succeeded', symbol: '✓', tone: 'good' },
  failed: { label: 'failed', symbol: '✗', tone: 'bad' },
  cancelled: { label: 'cancelled', symbol: '⊘', tone: 'idle' },
  unknown: { label: 'unknown', symbol: '?', tone: 'bad' },
};

export function badgeOf(state: string): Badge {
  return BADGES[state] ?? { label: state.replaceAll('_', ' '), symbol: '•', tone: 'idle' };
}

/**
 * Which remediations come first: those that wait for a person, then those still under way, then
 * the finished ones; newest first within each.
 */
const STATE_ORDER: Record<string, number> = { awaiting_approval: 0, running: 1, pending: 1 };

export function byAttention<T extends { state: string; submittedAt: string }>(remediations: readonly T[]): T[] {
  return [...remediations].sort(
    (a, b) =>
      (STATE_ORDER[a.state] ?? 2) - (STATE_ORDER[b.state] ?? 2) ||
      (Date.parse(b.submittedAt) || 0) - (Date.parse(a.submittedAt) || 0),
  );
}

/** A share as a whole percentage, `—` when there is nothing to share. */
export function percent(rate: number | null | undefined): string {
  return rate === null || rate === undefined ? '—' : `${Math.round(rate * 100)}%`;
}

/** What a pause covers, in words: `namespace shop, rule oom`; everything when it names nothing. */
export function pauseScope(pause: { namespace?: string; rule?: string; workload?: string; cluster?: string }): string {
  const parts = (['cluster', 'namespace', 'workload', 'rule'] as const)
    .filter((selector) => pause[selector] !== undefined)
    .map((selector) => `${selector} ${pause[selector]}`);
  return parts.length > 0 ? parts.join(', ') : 'every alert';
}

/** The outcomes the chart stacks, in the order of its legend: actions first, then what held them back. */
export const CHART_OUTCOMES = [
  'submitted',
  'awaiting_approval',
  'dry_run',
  'failed',
  'retry',
  'escalated',
  'rate_limited',
  'cooldown',
  'paused',
  'excluded',
  'invalid_target',
  'resolved',
  'no_match',
] as const;

/** The total of each outcome over the buckets, in CHART_OUTCOMES order then any other, without zeros. */
export function outcomeTotals(buckets: readonly { outcomes: Record<string, number> }[]): [string, number][] {
  const totals = new Map<string, number>(CHART_OUTCOMES.map((outcome) => [outcome, 0]));
  for (const bucket of buckets) {
    for (const [outcome, count] of Object.entries(bucket.outcomes)) {
      totals.set(outcome, (totals.get(outcome) ?? 0) + count);
    }
  }
  return [...totals].filter(([, count]) => count > 0);
}
