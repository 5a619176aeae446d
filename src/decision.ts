import { type Static, Type } from '@sinclair/typebox';
import { type Alert, AlertStatus } from './alert.js';
import type { Workflow } from './kube/workflow.js';
import { EscalationEntry, RemediationEntry } from './remediation/model.js';

export const Priority = Type.Union([Type.Literal('P1'), Type.Literal('P2'), Type.Literal('P3'), Type.Literal('P4')]);
export type Priority = Static<typeof Priority>;

/**
 * Every outcome of a decision. The string is used unchanged in the HTTP response, the decision
 * log line, the metrics labels and the audit trail.
 */
export const ALL_OUTCOMES = [
  'submitted',
  'dry_run',
  'cooldown',
  'no_match',
  'resolved',
  'excluded',
  'invalid_target',
  'rate_limited',
  'failed',
  'retry',
  'awaiting_approval',
  'escalated',
  'paused',
] as const;

export const Outcome = Type.Union(ALL_OUTCOMES.map((outcome) => Type.Literal(outcome)));
export type Outcome = Static<typeof Outcome>;

const WorkflowRef = Type.Object({ namespace: Type.String(), name: Type.String() });

/** The answer for one alert, as it appears in the HTTP response, the log line and the audit trail. */
export const Decision = Type.Object({
  fingerprint: Type.String(),
  alertname: Type.String(),
  status: AlertStatus,
  rule: Type.Union([Type.String(), Type.Null()]),
  priority: Type.Union([Priority, Type.Null()]),
  outcome: Outcome,
  reason: Type.Optional(Type.String()),
  cooldownKey: Type.Optional(Type.String()),
  workflow: Type.Optional(WorkflowRef),
  /** With --clusters: the cluster the alert was routed to. */
  cluster: Type.Optional(Type.String()),
  /** Explain only: the Workflow that would be submitted. */
  manifest: Type.Optional(Type.Unsafe<Workflow>({ type: 'object', additionalProperties: true })),
});

/**
 * A decision inside the receiver: `retryAfterSeconds`, when the backend said how long to wait,
 * feeds the answer's Retry-After header and is not part of the documented answer.
 */
export type Decision = Static<typeof Decision> & { retryAfterSeconds?: number };

/** One entry of the audit trail (GET /v1/decisions): the decision, when and by which replica. */
export const DecisionRecord = Type.Composite([
  Type.Omit(Decision, ['manifest']),
  Type.Object({ at: Type.String({ format: 'date-time' }), replica: Type.String() }),
]);
export type DecisionRecord = Static<typeof DecisionRecord>;

/**
 * One entry of the shared audit trail, newest first in GET /v1/decisions: a decision (no `kind`),
 * a remediation's state change, or an escalation fired or resolved.
 */
export const AuditEntry = Type.Union([DecisionRecord, RemediationEntry, EscalationEntry]);
export type AuditEntry = DecisionRecord | RemediationEntry | EscalationEntry;

/** Text taken from alert labels goes into responses, logs and the audit trail: bounded there. */
export const LABEL_TEXT_MAX = 256;

export function clip(text: string, max = LABEL_TEXT_MAX): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

export function decide(
  alert: Alert,
  rule: { name: string; priority: Priority } | null,
  outcome: Outcome,
  extra: Pick<Decision, 'reason' | 'cooldownKey' | 'workflow' | 'retryAfterSeconds' | 'manifest'> = {},
): Decision {
  return {
    fingerprint: alert.fingerprint,
    alertname: clip(alert.labels.alertname ?? ''),
    status: alert.status,
    rule: rule?.name ?? null,
    priority: rule?.priority ?? null,
    outcome,
    ...extra,
  };
}
