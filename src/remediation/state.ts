import { AnnotationKey, ArgoLabel, FAILED_PHASES, LabelKey, type WatchedWorkflow } from '../kube/workflow.js';
import { FINAL_STATES, type Remediation, type RemediationState, remediationId } from './model.js';

/** What a Workflow's remediation is now, read from the Workflow alone. */
export interface Observed {
  state: RemediationState;
  message?: string;
  approver?: string;
}

/** Created for a rule with `approval: required` (it carries its approval timeout). */
export function needsApproval(workflow: WatchedWorkflow): boolean {
  return workflow.metadata.annotations?.[AnnotationKey.ApprovalTimeout] !== undefined;
}

/** The approval_timeout a Workflow was created with (ms); undefined when it never needed approval. */
export function approvalTimeoutMs(workflow: WatchedWorkflow): number | undefined {
  const seconds = Number(workflow.metadata.annotations?.[AnnotationKey.ApprovalTimeout]);
  return needsApproval(workflow) && Number.isFinite(seconds) ? seconds * 1000 : undefined;
}

/** Epoch ms at which a Workflow awaiting approval is stopped; undefined for one that never needed approval. */
export function approvalDeadline(workflow: WatchedWorkflow): number | undefined {
  const timeout = approvalTimeoutMs(workflow);
  const created = createdAt(workflow);
  return timeout === undefined || created === undefined ? undefined : created + timeout;
}

/** Still suspended, waiting for a person, and neither finished nor stopped. */
export function awaitsApproval(workflow: WatchedWorkflow): boolean {
  return (
    workflow.spec?.suspend === true &&
    !isFinished(workflow) &&
    workflow.metadata.annotations?.[AnnotationKey.Stopped] === undefined
  );
}

/** Argo marked it finished (the label, or a final phase). */
export function isFinished(workflow: WatchedWorkflow): boolean {
  const phase = workflow.status?.phase;
  return (
    workflow.metadata.labels?.[ArgoLabel.Completed] === 'true' ||
    phase === 'Succeeded' ||
    (phase !== undefined && FAILED_PHASES.has(phase))
  );
}

/**
 * The state of a Workflow's remediation (SPEC §9). Stopped by Kube Sentinel (its annotation says
 * why) is `cancelled`, whatever Argo makes of the stop afterwards; a Workflow deleted before it
 * finished is `unknown`. A Workflow that waited for approval and no longer does is `running`,
 * approved by whoever Argo names, even before its controller has moved it on.
 */
export function observe(workflow: WatchedWorkflow, deleted: boolean): Observed {
  const stopped = workflow.metadata.annotations?.[AnnotationKey.Stopped];
  if (stopped !== undefined) return { state: 'cancelled', message: stopped };
  const phase = workflow.status?.phase ?? workflow.metadata.labels?.[ArgoLabel.Phase];
  const message = workflow.status?.message;
  if (phase === 'Succeeded') return { state: 'succeeded', ...(message ? { message } : {}) };
  if (phase !== undefined && FAILED_PHASES.has(phase)) {
    return { state: 'failed', message: failureOf(workflow, phase) };
  }
  if (deleted) return { state: 'unknown', message: 'the Workflow was deleted before it finished' };
  if (workflow.spec?.suspend === true) return { state: 'awaiting_approval' };
  if (needsApproval(workflow)) {
    const approver = workflow.metadata.labels?.[ArgoLabel.Actor];
    return { state: 'running', ...(approver ? { approver } : {}) };
  }
  if (phase === 'Running') return { state: 'running' };
  return { state: 'pending' };
}

/**
 * Why a Workflow failed: Argo's message, and the step that failed with its own message when
 * Argo's does not hold it already (for steps, Argo only says `child '…' failed`; the step says
 * what the API refused, e.g. an eviction a PodDisruptionBudget forbids).
 */
function failureOf(workflow: WatchedWorkflow, phase: string): string {
  const message = workflow.status?.message ?? '';
  const step = workflow.status?.failedStep;
  if (!step) return message || `Argo reported the Workflow ${phase}`;
  // The step's message, without the ellipsis that cut it short.
  const stepMessage = step.slice(step.indexOf(': ') + 2).replace(/…$/, '');
  if (message.includes(stepMessage)) return message;
  return message ? `${message}; ${step}` : step;
}

/** `<namespace>/<name>` */
export function workflowId(workflow: WatchedWorkflow): string {
  return `${workflow.metadata.namespace}/${workflow.metadata.name}`;
}

/** Epoch ms of creation, or undefined when the API server did not say. */
export function createdAt(workflow: WatchedWorkflow): number | undefined {
  const at = Date.parse(workflow.metadata.creationTimestamp ?? '');
  return Number.isNaN(at) ? undefined : at;
}

/**
 * The remediation a Workflow stands for, in the state observed (the record GET /v1/remediations
 * lists); with --clusters, of the cluster it was watched in.
 */
export function remediationOf(
  workflow: WatchedWorkflow,
  observed: Observed,
  now: number,
  cluster?: string,
): Remediation {
  const annotations = workflow.metadata.annotations ?? {};
  const created = createdAt(workflow) ?? now;
  const attempt = Number(annotations[AnnotationKey.Attempt]);
  const final = FINAL_STATES.has(observed.state);
  const finishedAt = final ? (workflow.status?.finishedAt ?? new Date(now).toISOString()) : undefined;
  return {
    workflow: remediationId(workflow.metadata.namespace, workflow.metadata.name, cluster),
    ...(cluster === undefined ? {} : { cluster }),
    rule: annotations[AnnotationKey.Rule] ?? workflow.metadata.labels?.[LabelKey.Rule] ?? '',
    cooldownKey: annotations[AnnotationKey.CooldownKey] ?? '',
    target: annotations[AnnotationKey.Target] ?? '',
    state: observed.state,
    submittedAt: new Date(created).toISOString(),
    ...(finishedAt ? { finishedAt } : {}),
    ...(observed.message ? { message: observed.message } : {}),
    ...(Number.isInteger(attempt) && attempt >= 1 ? { attempt } : {}),
    ...(observed.approver ? { approver: observed.approver } : {}),
  };
}
