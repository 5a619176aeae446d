/**
 * Each part of the page, drawn from what the API answered: a heading's content, an empty state
 * that says what to do next, or the error that kept it from being read.
 */
import type { Pause } from '../pause.js';
import {
  type ActivityAnswer,
  LISTED,
  LISTED_REMEDIATIONS,
  type ShownCooldown,
  type ShownEscalation,
  type ShownRemediation,
  type ShownRule,
  type Snapshot,
} from './api.js';
import { decisionChart } from './chart.js';
import { code, el, empty, externalLink, failed, lasted, table, waiting, when } from './dom.js';
import { badgeOf, byAttention, pauseScope, percent } from './format.js';

type Drawn = HTMLElement | HTMLElement[];

function badge(state: string): HTMLElement {
  const { label, symbol, tone } = badgeOf(state);
  return el('span', { class: `badge ${tone}` }, el('span', { 'aria-hidden': 'true' }, `${symbol} `), label);
}

/** The Workflow's name, a link into the Argo UI when the receiver knows where that is (--argo-ui-url). */
function workflowLink(remediation: { workflow: string; workflowUrl?: string }): Node {
  return remediation.workflowUrl
    ? externalLink(remediation.workflowUrl, remediation.workflow)
    : code(remediation.workflow);
}

function parts(workflow: string): { namespace: string; name: string } {
  const segments = workflow.split('/');
  return { namespace: segments.at(-2) ?? '', name: segments.at(-1) ?? '' };
}

export function approvals(answer: Snapshot['approvals']): Drawn | null {
  if (typeof answer === 'string') return failed('the remediations awaiting approval', answer);
  const awaiting = byAttention(answer).filter((remediation) => remediation.state === 'awaiting_approval');
  if (awaiting.length === 0) return null;
  return el(
    'ul',
    { class: 'approvals' },
    ...awaiting.map((remediation) => {
      const { namespace, name } = parts(remediation.workflow);
      return el(
        'li',
        {},
        badge(remediation.state),
        ' ',
        workflowLink(remediation),
        ` on ${remediation.target} (rule ${remediation.rule}), waiting `,
        waiting(remediation.submittedAt),
        '. Approve with ',
        code(`argo resume -n ${namespace} ${name}`),
        remediation.cluster ? ` in cluster ${remediation.cluster}` : '',
        remediation.workflowUrl ? ' or Resume in the Argo UI.' : '.',
      );
    }),
  );
}

export function remediations(
  answer: Snapshot['remediations'],
  approvals: Snapshot['approvals'],
  status: Snapshot['status'],
): Drawn {
  if (typeof answer === 'string') return failed('remediations', answer);
  // The approvals first, all of them, though older than the newest remediations listed.
  const listed = new Set(answer.map((remediation) => remediation.workflow));
  const older = typeof approvals === 'string' ? [] : approvals.filter((approval) => !listed.has(approval.workflow));
  const shown = byAttention([...older, ...answer]);
  if (shown.length === 0 && typeof status !== 'string' && status.mode === 'dry-run') {
    return empty('None: in a dry run no Workflow is created. What each alert would get is under Recent decisions.');
  }
  if (shown.length === 0) {
    return empty(
      'No remediations yet. When an alert matches a rule, its Workflow shows here. See what an alert would do with ',
      code('kube-sentinel explain --alert FILE'),
      '.',
    );
  }
  const cut =
    answer.length >= LISTED_REMEDIATIONS
      ? empty(
          `The newest ${LISTED_REMEDIATIONS} remediations, and every one awaiting approval; the API lists more: `,
          code('GET /v1/remediations?limit=1000'),
          '.',
        )
      : null;
  const drawn = table<ShownRemediation>(
    'Remediations, those awaiting approval first',
    [
      { title: 'State', cell: (r) => badge(r.state) },
      { title: 'Workflow', cell: (r) => workflowLink(r), nowrap: true },
      { title: 'Target', cell: (r) => r.target },
      { title: 'Rule', cell: (r) => r.rule, nowrap: true },
      { title: 'Age', cell: (r) => when(r.submittedAt), nowrap: true },
      { title: 'Duration', cell: (r) => lasted(r.submittedAt, r.finishedAt), nowrap: true },
      {
        title: 'Details',
        wide: true,
        cell: (r) =>
          [r.message, r.approver ? `approved by ${r.approver}` : '', r.attempt ? `attempt ${r.attempt}` : '']
            .filter(Boolean)
            .join(' · '),
      },
    ],
    shown,
    (r) => `state-${r.state}`,
  );
  return cut ? [drawn, cut] : drawn;
}

export function escalations(answer: Snapshot['escalations']): Drawn {
  if (typeof answer === 'string') return failed('escalations', answer);
  if (answer.length === 0)
    return empty('Nothing escalated: no remediation failed, ran out of attempts or awaits approval.');
  const drawn = table<ShownEscalation>(
    'Open escalations',
    [
      { title: 'Alert', cell: (e) => e.alertname },
      { title: 'Rule', cell: (e) => e.labels.rule ?? '—' },
      { title: 'Target', cell: (e) => [e.labels.namespace, e.labels.pod].filter(Boolean).join('/') || e.cooldownKey },
      {
        title: 'Workflow',
        cell: (e) => {
          const workflow = e.labels.workflow ? `${e.labels.workflow_namespace ?? ''}/${e.labels.workflow}` : '';
          if (!workflow) return '—';
          return e.annotations.workflow_url ? externalLink(e.annotations.workflow_url, workflow) : code(workflow);
        },
      },
      { title: 'Since', cell: (e) => when(e.openedAt) },
      {
        title: 'Summary',
        wide: true,
        cell: (e) => {
          const summary = e.annotations.summary ?? e.annotations.description ?? '';
          const runbook = e.annotations.runbook_url;
          return runbook ? el('span', {}, `${summary} `, externalLink(runbook, 'runbook')) : summary;
        },
      },
    ],
    answer,
  );
  return withCut(drawn, answer.length, 'escalations, the newest first', 'GET /v1/escalations?limit=1000');
}

/** A list cut at LISTED says so, and where the rest is. */
function withCut(drawn: HTMLElement, count: number, what: string, route: string): Drawn {
  if (count < LISTED) return drawn;
  return [drawn, empty(`Only ${LISTED} ${what} are listed here; the API lists more: `, code(route), '.')];
}

export function pauses(answer: Snapshot['pauses']): Drawn {
  if (typeof answer === 'string') return failed('pauses', answer);
  if (answer.length === 0) {
    return empty(
      'No pauses. To hold remediation during a deploy or an incident: ',
      code('kube-sentinel pause --namespace shop --for 2h --reason "deploy"'),
      '.',
    );
  }
  return table<Pause>(
    'Active pauses',
    [
      { title: 'Covers', cell: (p) => pauseScope(p) },
      { title: 'Reason', cell: (p) => p.reason, wide: true },
      { title: 'By', cell: (p) => p.createdBy },
      { title: 'Ends', cell: (p) => when(p.expiresAt) },
      { title: 'Id', cell: (p) => code(p.id) },
    ],
    answer,
  );
}

export function cooldowns(answer: Snapshot['cooldowns']): Drawn {
  if (typeof answer === 'string') return failed('cooldowns', answer);
  if (answer.length === 0) {
    return empty("No cooldowns held. Each remediation holds its workload's key for its rule's cooldown.");
  }
  const sorted = [...answer].sort((a, b) => Date.parse(a.expiresAt) - Date.parse(b.expiresAt));
  const drawn = table<ShownCooldown>(
    'Active cooldowns, the one ending first first',
    [
      { title: 'Key', cell: (c) => code(c.key) },
      { title: 'Workflow', cell: (c) => code(c.workflow) },
      { title: 'State', cell: (c) => (c.dryRun ? `${c.state} (dry run)` : c.state) },
      { title: 'Ends', cell: (c) => when(c.expiresAt) },
    ],
    sorted,
  );
  return withCut(drawn, answer.length, 'cooldowns (the store gives them in no order)', 'GET /v1/cooldowns?limit=1000');
}

export function rules(answer: Snapshot['rules'], activity: Snapshot['activity']): Drawn {
  if (typeof answer === 'string') return failed('rules', answer);
  if (answer.rules.length === 0) {
    return empty(
      'No rules loaded. Put rules in the rules directory and check them with ',
      code('kube-sentinel validate'),
      '.',
    );
  }
  const byRule = new Map(typeof activity === 'string' ? [] : activity.rules.map((rule) => [rule.rule, rule]));
  const drawn: HTMLElement[] = [];
  if (typeof activity !== 'string' && activity.rules.every((rule) => rule.lastMatchAt === null)) {
    drawn.push(
      empty(
        'No rule has matched yet: try ',
        code('kube-sentinel explain --alert FILE'),
        ' with an alert you expect to act on.',
      ),
    );
  }
  drawn.push(
    table<ShownRule>(
      'Rules in evaluation order',
      [
        { title: 'Rule', cell: (r) => el('span', { title: r.source }, r.name) },
        { title: 'Priority', cell: (r) => r.priority },
        {
          title: 'Acts with',
          cell: (r) => (r.template ? `template ${r.template}` : `inline ${r.workflow_name ?? ''}`),
        },
        { title: 'Cooldown', cell: (r) => r.cooldown },
        { title: 'Approval', cell: (r) => (r.approval === 'required' ? 'required' : 'none') },
        { title: 'Enabled', cell: (r) => (r.enabled ? 'yes' : 'no (disabled)') },
        { title: 'Last match', cell: (r) => when(byRule.get(r.name)?.lastMatchAt) },
        { title: 'Matches, 24 h', cell: (r) => String(byRule.get(r.name)?.matches ?? '—'), numeric: true },
        { title: 'Success, 24 h', cell: (r) => percent(byRule.get(r.name)?.successRate), numeric: true },
      ],
      answer.rules,
      (r) => (r.enabled ? '' : 'disabled'),
    ),
  );
  return drawn;
}

export function activity(answer: Snapshot['activity']): Drawn {
  if (typeof answer === 'string') return failed('the last 24 hours', answer);
  const drawn: HTMLElement[] = [];
  if (answer.buckets.every((bucket) => Object.keys(bucket.outcomes).length === 0)) {
    drawn.push(
      empty(
        'No decisions in the last 24 hours. Point Alertmanager at ',
        code('/webhook/alertmanager'),
        ', or Prometheus and the Loki ruler at this receiver as their Alertmanager (see examples/).',
      ),
    );
  } else {
    drawn.push(decisionChart(answer));
  }
  const finished = answer.rules.filter((rule) => Object.values(rule.remediations).some((count) => count > 0));
  drawn.push(el('h3', {}, 'Success rate by rule'));
  if (finished.length === 0) {
    drawn.push(empty('No remediation finished in the last 24 hours.'));
  } else {
    drawn.push(
      table<ActivityAnswer['rules'][number]>(
        'Finished remediations by rule over the last 24 hours',
        [
          { title: 'Rule', cell: (r) => r.rule, nowrap: true },
          { title: 'Succeeded', cell: (r) => String(r.remediations.succeeded ?? 0), numeric: true },
          { title: 'Failed', cell: (r) => String(r.remediations.failed ?? 0), numeric: true },
          { title: 'Unknown', cell: (r) => String(r.remediations.unknown ?? 0), numeric: true },
          { title: 'Cancelled', cell: (r) => String(r.remediations.cancelled ?? 0), numeric: true },
          { title: 'Success rate', cell: (r) => percent(r.successRate), numeric: true },
        ],
        finished,
      ),
    );
  }
  return drawn;
}
