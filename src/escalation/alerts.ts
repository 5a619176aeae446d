import { clip, type Priority } from '../decision.js';
import {
  type Attempt,
  type EscalationAlert,
  type EscalationAlertname,
  type RemediationState,
  workflowOfId,
} from '../remediation/model.js';
import { formatDuration } from '../rules/duration.js';

/**
 * The escalations Kube Sentinel posts to the team's Alertmanager (SPEC §9), built from what the
 * caller knows: pure data in, one alert out, no clock and no I/O. The labels are the alert's
 * identity in Alertmanager (its fingerprint): the same subject always gets the same labels, so a
 * re-fire updates the alert and a resolve ends it.
 */

export interface WorkflowRef {
  namespace: string;
  name: string;
}

/** What an escalation is about: the rule, the target it remediates, and the Workflow if there is one. */
export interface EscalationSubject {
  rule: string;
  priority: Priority;
  cooldownKey: string;
  target: { namespace: string; pod: string };
  /** The workload of the target (deployment, statefulset, …), empty when none is known. */
  workload: string;
  workflow?: WorkflowRef;
  /** The alertname of the alert that started it all. */
  sourceAlertname: string;
  /** The rule's runbook_url. */
  runbookUrl?: string;
  /** With --clusters: the cluster of the Workflow (a label of the escalation). */
  cluster?: string;
}

/** Where escalations link to. */
export interface EscalationLinks {
  /** Base URL of the Argo UI (--argo-ui-url). */
  argoUiUrl?: string;
}

/** How a remediation ended that calls for a person. */
export interface FailedOutcome {
  /** failed: Argo's Failed or Error; unknown: the Workflow was deleted before it completed. */
  state: 'failed' | 'unknown';
  /** Argo's status.message. */
  message?: string;
}

/** One attempt of the spent budget, with what became of it when known. */
export interface AttemptReport extends Attempt {
  state?: RemediationState;
  message?: string;
}

export interface ExhaustedOutcome {
  /** The attempts within the window (any order); the latest is the escalation's workflow unless the subject names one. */
  attempts: readonly AttemptReport[];
  maxAttempts: number;
  attemptWindowMs: number;
}

export interface ApprovalOutcome {
  /** Epoch milliseconds at which the suspended Workflow was created. */
  createdAt: number;
  approvalTimeoutMs: number;
}

/** Alertmanager routes on severity; P1 and P2 both page. */
export const SEVERITY: Readonly<Record<Priority, string>> = {
  P1: 'critical',
  P2: 'critical',
  P3: 'warning',
  P4: 'info',
};

/** Argo's own message can be a stack of lines; an annotation is read in a chat message or a page. */
const MESSAGE_MAX = 1024;
const DESCRIPTION_MAX = 4096;
/** The newest attempts listed in a description; the count says how many there were. */
const ATTEMPTS_LISTED = 10;

/** `U/workflows/<namespace>/<name>`, the Argo UI's page of a Workflow. */
export function workflowUrl(argoUiUrl: string, workflow: WorkflowRef): string {
  const base = argoUiUrl.replace(/\/+$/, '');
  return `${base}/workflows/${encodeURIComponent(workflow.namespace)}/${encodeURIComponent(workflow.name)}`;
}

export function remediationFailed(
  subject: EscalationSubject & { workflow: WorkflowRef },
  outcome: FailedOutcome,
  links: EscalationLinks = {},
): EscalationAlert {
  const workflow = refText(subject.workflow);
  const target = targetText(subject);
  const message = outcome.message?.trim() ? clip(outcome.message.trim(), MESSAGE_MAX) : '';
  const what =
    outcome.state === 'failed'
      ? `It failed: ${message || 'Argo gave no message'}.`
      : `It was deleted before it completed, so what it did is unknown${message ? ` (last message: ${message})` : ''}.`;
  return build('KubeSentinelRemediationFailed', subject, links, {
    summary:
      outcome.state === 'failed'
        ? `Remediation ${workflow} of ${target} failed`
        : `Remediation ${workflow} of ${target} was deleted before it completed`,
    description: [
      `Rule ${subject.rule} (${subject.priority}) created Workflow ${workflow} for ${target} after alert ${subject.sourceAlertname}.`,
      what,
      `The problem may still be there; cooldown key ${subject.cooldownKey}.`,
    ].join(' '),
  });
}

export function remediationExhausted(
  subject: EscalationSubject,
  outcome: ExhaustedOutcome,
  links: EscalationLinks = {},
): EscalationAlert {
  const newestFirst = [...outcome.attempts].sort((a, b) => b.at - a.at);
  const latest = newestFirst[0] ? parseRef(newestFirst[0].workflow) : undefined;
  const workflow = subject.workflow ?? latest;
  const target = targetText(subject);
  const window = formatDuration(outcome.attemptWindowMs);
  const count = outcome.attempts.length;
  const listed = newestFirst.slice(0, ATTEMPTS_LISTED).map(attemptText);
  const more = count > listed.length ? `; and ${count - listed.length} earlier` : '';
  return build('KubeSentinelRemediationExhausted', { ...subject, ...(workflow ? { workflow } : {}) }, links, {
    summary: `Kube Sentinel stopped remediating ${target}: ${count} ${count === 1 ? 'attempt' : 'attempts'} within ${window} did not fix it`,
    description: [
      `Alert ${subject.sourceAlertname} for ${target} matched rule ${subject.rule} (${subject.priority}) again,`,
      `but its attempt budget (${outcome.maxAttempts} per ${window} for cooldown key ${subject.cooldownKey}) is spent,`,
      'so no Workflow was created: a person has to look.',
      count > 0 ? `Attempts, newest first: ${listed.join('; ')}${more}.` : '',
    ]
      .filter(Boolean)
      .join(' '),
  });
}

export function approvalRequired(
  subject: EscalationSubject & { workflow: WorkflowRef },
  outcome: ApprovalOutcome,
  links: EscalationLinks = {},
): EscalationAlert {
  const { namespace, name } = subject.workflow;
  const workflow = refText(subject.workflow);
  const target = targetText(subject);
  const stopsAt = outcome.createdAt + outcome.approvalTimeoutMs;
  const ui = links.argoUiUrl ? ` (${workflowUrl(links.argoUiUrl, subject.workflow)})` : '';
  const deadline = Number.isFinite(stopsAt)
    ? `Unless approved by ${new Date(stopsAt).toISOString()} (approval timeout ${formatDuration(outcome.approvalTimeoutMs)}), Kube Sentinel stops it.`
    : 'Unless approved within the approval timeout, Kube Sentinel stops it.';
  return build('KubeSentinelApprovalRequired', subject, links, {
    summary: `Remediation ${workflow} of ${target} awaits approval`,
    description: [
      `Rule ${subject.rule} (${subject.priority}) created Workflow ${workflow} for ${target} after alert ${subject.sourceAlertname}, suspended until a person approves it.`,
      `Approve: argo resume -n ${namespace} ${name}, or Resume in the Argo UI${ui}. Refuse: argo stop -n ${namespace} ${name}.`,
      deadline,
    ].join(' '),
  });
}

function build(
  alertname: EscalationAlertname,
  subject: EscalationSubject,
  links: EscalationLinks,
  text: { summary: string; description: string },
): EscalationAlert {
  const candidates: Record<string, string | undefined> = {
    rule: subject.rule,
    priority: subject.priority,
    severity: SEVERITY[subject.priority],
    namespace: subject.target.namespace,
    pod: subject.target.pod,
    workload: subject.workload,
    workflow: subject.workflow?.name,
    workflow_namespace: subject.workflow?.namespace,
    source_alertname: subject.sourceAlertname,
    cluster: subject.cluster,
  };
  const labels: EscalationAlert['labels'] = { alertname };
  // Alertmanager treats an empty label as absent; leaving it out keeps the identity the same either way.
  for (const [name, value] of Object.entries(candidates)) {
    if (value) labels[name] = clip(value);
  }
  const annotations: Record<string, string> = {
    summary: clip(oneLine(text.summary)),
    description: clip(text.description, DESCRIPTION_MAX),
  };
  if (links.argoUiUrl && subject.workflow) annotations.workflow_url = workflowUrl(links.argoUiUrl, subject.workflow);
  if (subject.runbookUrl) annotations.runbook_url = subject.runbookUrl;
  return { labels, annotations };
}

function attemptText(attempt: AttemptReport): string {
  const state = attempt.state ?? 'state not recorded';
  const at = Number.isFinite(attempt.at) ? `, created ${new Date(attempt.at).toISOString()}` : '';
  const message = attempt.message?.trim() ? `: ${clip(oneLine(attempt.message.trim()), MESSAGE_MAX / 4)}` : '';
  return `${attempt.workflow} (${state}${at}${message})`;
}

function targetText(subject: EscalationSubject): string {
  const { namespace, pod } = subject.target;
  const where = [namespace, pod].filter(Boolean).join('/') || 'an unnamed target';
  return subject.workload && subject.workload !== pod ? `${where} (workload ${subject.workload})` : where;
}

function refText(workflow: WorkflowRef): string {
  return `${workflow.namespace}/${workflow.name}`;
}

/** `<namespace>/<name>` (with --clusters `<cluster>/<namespace>/<name>`) as attempts and remediations name a Workflow. */
function parseRef(text: string): WorkflowRef | undefined {
  const ref = workflowOfId(text);
  return ref?.namespace && ref.name ? ref : undefined;
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}
