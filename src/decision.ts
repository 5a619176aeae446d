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

/**
 * One entry of the audit trail (GET /v1/decisions): the decision, when and by which replica.
 * Repeats of a non-acting decision are folded into it (SPEC §11): `at` is then the first time,
 * `lastAt` the latest, `count` how many, and the rest is the latest repeat's.
 */
export const DecisionRecord = Type.Composite([
  Type.Omit(Decision, ['manifest']),
  Type.Object({
    at: Type.String({ format: 'date-time' }),
    replica: Type.String(),
    count: Type.Optional(Type.Integer({ minimum: 2 })),
    lastAt: Type.Optional(Type.String({ format: 'date-time' })),
  }),
]);
export type DecisionRecord = Static<typeof DecisionRecord>;

/**
 * Decisions that act on nothing: Prometheus resends a firing alert every minute, and each resend
 * of one of these says again what its entry says already. Actions (submitted, failed, escalated,
 * awaiting_approval, …) and the `retry` a sender will redeliver are always their own entries.
 */
const FOLDED_OUTCOMES: ReadonlySet<Outcome> = new Set<Outcome>([
  'cooldown',
  'rate_limited',
  'no_match',
  'resolved',
  'excluded',
  'paused',
]);

/**
 * What a repeat must share with the entry it is folded into, for an entry of the audit trail
 * that may be folded; undefined for one that is always its own entry (an action, a remediation's
 * or an escalation's entry). The time and the replica may differ: an HA pair's two deliveries fold.
 */
export function foldingKey(entry: AuditEntry): string | undefined {
  if ('kind' in entry || !FOLDED_OUTCOMES.has(entry.outcome)) return undefined;
  const { fingerprint, alertname, status, rule, priority, outcome, reason, cooldownKey, workflow, cluster } = entry;
  return JSON.stringify([
    fingerprint,
    alertname,
    status,
    rule,
    priority,
    outcome,
    reason ?? null,
    cooldownKey ?? null,
    workflow?.namespace ?? null,
    workflow?.name ?? null,
    cluster ?? null,
  ]);
}

/** The entry `latest` repeats `count` times since `firstAt`, as GET /v1/decisions shows it. */
export function folded(latest: DecisionRecord, count: number, firstAt: string): DecisionRecord {
  if (count < 2) return latest;
  return { ...latest, at: firstAt, lastAt: latest.at, count };
}

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
