import { type Static, Type } from '@sinclair/typebox';

/**
 * What became of a submitted Workflow (SPEC §9). The string is used unchanged in the audit trail,
 * GET /v1/remediations, metric labels and escalations.
 */
export const REMEDIATION_STATES = [
  'pending',
  'awaiting_approval',
  'running',
  'succeeded',
  'failed',
  'cancelled',
  'unknown',
] as const;

export const RemediationState = Type.Union(REMEDIATION_STATES.map((state) => Type.Literal(state)));
export type RemediationState = Static<typeof RemediationState>;

const STATES: ReadonlySet<string> = new Set(REMEDIATION_STATES);

export function isRemediationState(value: unknown): value is RemediationState {
  return typeof value === 'string' && STATES.has(value);
}

/** States a remediation never leaves. */
export const FINAL_STATES: ReadonlySet<RemediationState> = new Set(['succeeded', 'failed', 'cancelled', 'unknown']);

/**
 * How far along a state is: a state change is recorded only forward, so a replica whose watch
 * lags (it sees `running` after another recorded `failed`) never moves a remediation back.
 */
export const STATE_RANK: Readonly<Record<RemediationState, number>> = {
  pending: 0,
  awaiting_approval: 1,
  running: 2,
  succeeded: 3,
  failed: 3,
  cancelled: 3,
  unknown: 3,
};

/**
 * A remediation's identity, which the store keys it by: `<namespace>/<name>` of its Workflow, and
 * with --clusters `<cluster>/<namespace>/<name>`, so that two clusters' Workflows of the same
 * name are two remediations. Attempts are counted under it too.
 */
export function remediationId(namespace: string, name: string, cluster?: string): string {
  return cluster === undefined ? `${namespace}/${name}` : `${cluster}/${namespace}/${name}`;
}

/** The Workflow's namespace and name in a remediationId (with or without its cluster). */
export function workflowOfId(id: string): { namespace: string; name: string } | undefined {
  const parts = id.split('/');
  if (parts.length < 2 || parts.length > 3) return undefined;
  return { namespace: parts.at(-2) ?? '', name: parts.at(-1) ?? '' };
}

/** One remediation as GET /v1/remediations lists it; kept in the shared store for RETENTION_MS. */
export const Remediation = Type.Object({
  /** Its remediationId: `<namespace>/<name>` of the Workflow, `<cluster>/<namespace>/<name>` with --clusters. */
  workflow: Type.String(),
  /** With --clusters: the cluster the Workflow was created in. */
  cluster: Type.Optional(Type.String()),
  rule: Type.String(),
  cooldownKey: Type.String(),
  /** `namespace/pod` the remediation acts on. */
  target: Type.String(),
  state: RemediationState,
  submittedAt: Type.String({ format: 'date-time' }),
  finishedAt: Type.Optional(Type.String({ format: 'date-time' })),
  /** Argo's status.message, or why Kube Sentinel stopped it. */
  message: Type.Optional(Type.String()),
  /** Which attempt within the rule's attempt_window (1, 2, …). */
  attempt: Type.Optional(Type.Integer({ minimum: 1 })),
  /** Who approved a Workflow that awaited approval, when Argo names them. */
  approver: Type.Optional(Type.String()),
});
export type Remediation = Static<typeof Remediation>;

/** The audit-trail entry of one state change (beside the decisions in GET /v1/decisions). */
export const RemediationEntry = Type.Object({
  kind: Type.Literal('remediation'),
  workflow: Type.String(),
  cluster: Type.Optional(Type.String()),
  rule: Type.String(),
  cooldownKey: Type.String(),
  target: Type.String(),
  state: RemediationState,
  message: Type.Optional(Type.String()),
  approver: Type.Optional(Type.String()),
  durationSeconds: Type.Optional(Type.Number({ minimum: 0 })),
  at: Type.String({ format: 'date-time' }),
  replica: Type.String(),
});
export type RemediationEntry = Static<typeof RemediationEntry>;

/** Remediations are kept this long in the shared store (SPEC §9: 7 days). */
export const RETENTION_MS = 7 * 24 * 3600_000;

/** The alerts Kube Sentinel sends to the team's Alertmanager. */
export const ESCALATION_ALERTNAMES = [
  'KubeSentinelRemediationFailed',
  'KubeSentinelRemediationExhausted',
  'KubeSentinelApprovalRequired',
] as const;
export type EscalationAlertname = (typeof ESCALATION_ALERTNAMES)[number];

/** An escalation as posted to Alertmanager's /api/v2/alerts (times added when sent). */
export interface EscalationAlert {
  labels: Record<string, string> & { alertname: EscalationAlertname };
  annotations: Record<string, string>;
}

/** The audit-trail entry of one escalation fired or resolved (with or without an Alertmanager to send it to). */
export const EscalationEntry = Type.Object({
  kind: Type.Literal('escalation'),
  alertname: Type.Union(ESCALATION_ALERTNAMES.map((name) => Type.Literal(name))),
  status: Type.Union([Type.Literal('firing'), Type.Literal('resolved')]),
  cooldownKey: Type.String(),
  workflow: Type.Optional(Type.String()),
  labels: Type.Record(Type.String(), Type.String()),
  at: Type.String({ format: 'date-time' }),
  replica: Type.String(),
});
export type EscalationEntry = Static<typeof EscalationEntry>;

/** One attempt of a cooldown key: a Workflow created for it, and when. */
export interface Attempt {
  /** The remediationId of its Workflow. */
  workflow: string;
  /** Epoch milliseconds. */
  at: number;
}
