/**
 * What a person must know before reading the rest (the header's notices), and the latest
 * decisions: what became of each alert, including those that made no Workflow.
 */
import type { ShownDecision, Snapshot } from './api.js';
import { code, el, empty, failed, table, when } from './dom.js';

/** Notices: a receiver that creates nothing, state kept by one replica, everything paused, alerts held back by the rate limit. */
export function notices(snapshot: Snapshot): HTMLElement[] {
  const shown: (string | Node)[][] = [];
  const { status, pauses, activity } = snapshot;
  if (typeof status !== 'string' && status.mode === 'dry-run') {
    shown.push([
      'Dry run: Workflows are decided, never created (',
      code('--dry-run'),
      ', or no cluster configured). Alerts that match show as ',
      code('dry_run'),
      ' under Recent decisions.',
    ]);
  }
  if (typeof status !== 'string' && status.store === 'memory') {
    shown.push([
      `In-memory store: cooldowns, pauses and the audit trail are this replica's (${status.replica}) alone; `,
      code('--redis-url'),
      ' shares them.',
    ]);
  }
  if (typeof pauses !== 'string') {
    for (const pause of pauses) {
      if (pause.namespace ?? pause.rule ?? pause.workload ?? pause.cluster) continue;
      shown.push([
        `All remediation is paused (“${pause.reason}”, by ${pause.createdBy}), ending `,
        when(pause.expiresAt),
        '.',
      ]);
    }
  }
  if (typeof activity !== 'string') {
    // The current hour and the one before: the current one may have just begun.
    const recent = activity.buckets.slice(-2);
    const held = recent.reduce((sum, bucket) => sum + (bucket.outcomes.rate_limited ?? 0), 0);
    const since = new Date(recent[0]?.start ?? Date.now()).toLocaleTimeString([], {
      hour: '2-digit',
      minute: '2-digit',
    });
    if (held > 0) {
      shown.push([
        `${held} alert${held === 1 ? ' was' : 's were'} held back by the global rate limit since ${since} (`,
        code('--max-workflows-per-minute'),
        ').',
      ]);
    }
  }
  return shown.map((parts) => el('li', {}, el('span', { 'aria-hidden': 'true' }, '! '), ...parts));
}

/** How many of the latest decisions the page lists. */
const SHOWN_DECISIONS = 25;

function workflowOf(decision: ShownDecision): string {
  const { workflow } = decision;
  if (!workflow) return '';
  return typeof workflow === 'string' ? workflow : `${workflow.namespace}/${workflow.name}`;
}

export function decisions(answer: Snapshot['decisions']): HTMLElement {
  if (typeof answer === 'string') return failed('the latest decisions', answer);
  const latest = answer.filter((entry) => entry.kind === undefined).slice(0, SHOWN_DECISIONS);
  if (latest.length === 0) {
    return empty(
      'No alert received yet. Try one: ',
      code(
        `curl -s ${location.origin}/api/v2/alerts -H 'content-type: application/json' -d '[{"labels":{"alertname":"Test"}}]'`,
      ),
      '.',
    );
  }
  return table<ShownDecision>(
    'The latest decisions, newest first',
    [
      { title: 'When', cell: (d) => when(d.lastAt ?? d.at), nowrap: true },
      { title: 'Alert', cell: (d) => d.alertname ?? '' },
      {
        title: 'Outcome',
        cell: (d) => `${(d.outcome ?? '').replaceAll('_', ' ')}${d.count && d.count > 1 ? ` ×${d.count}` : ''}`,
      },
      { title: 'Rule', cell: (d) => d.rule ?? '—' },
      { title: 'Cooldown key', cell: (d) => (d.cooldownKey ? code(d.cooldownKey) : '—') },
      { title: 'Workflow or reason', cell: (d) => workflowOf(d) || d.reason || '', wide: true },
    ],
    latest,
  );
}
