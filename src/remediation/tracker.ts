import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { KubeApiError } from '../kube/http.js';
import { AnnotationKey, LabelKey, type WatchedWorkflow } from '../kube/workflow.js';
import type { Metrics } from '../pipeline/metrics.js';
import { formatDuration } from '../rules/duration.js';
import type { CooldownStore } from '../stores/cooldown-store.js';
import { StoreUnavailableError } from '../stores/cooldown-store.js';
import type { EscalationSubject, Escalations } from './escalations.js';
import { FINAL_STATES, RETENTION_MS, type RemediationState } from './model.js';
import {
  approvalDeadline,
  approvalTimeoutMs,
  awaitsApproval,
  createdAt,
  needsApproval,
  type Observed,
  observe,
  remediationOf,
  workflowId,
} from './state.js';

export interface TrackerDeps {
  store: CooldownStore;
  escalations: Escalations;
  metrics: Metrics;
  logger: Logger;
  now: () => number;
  settings: { replica: string; auditMaxLen: number; escalationTtlMs: number };
  /** With --clusters: the cluster whose Workflows these are (each cluster has its own tracker). */
  cluster?: string;
  /** Merge-patches a Workflow (to stop it). */
  patch(namespace: string, name: string, patch: object): Promise<void>;
}

/** The escalation ids a cooldown key's firing escalations are kept under. */
export const escalationId = {
  failed: (workflow: string) => `failed:${workflow}`,
  approval: (workflow: string) => `approval:${workflow}`,
  exhausted: 'exhausted',
};

/**
 * Turns what the watcher sees into remediation records and escalations. Every replica watches
 * the same Workflows; the store's markers make each state change recorded, counted and escalated
 * by exactly one of them. What a replica has recorded (or seen recorded) is remembered per
 * Workflow, so the same state is not sent to the store again on every MODIFIED event.
 */
export class RemediationTracker {
  private readonly seen = new Map<string, RemediationState>();
  /**
   * The token of each state change this replica has tried to record and not yet heard back about:
   * a call whose reply was lost (the script ran, the client timed out) is retried with it, and the
   * store answers true again, so the change is counted and escalated by the replica that recorded it.
   */
  private readonly tokens = new Map<string, string>();
  /**
   * What is being done for each Workflow: its watch events, the sweep and a stop all go through
   * here one at a time, so one state is never recorded (and counted) twice by this replica.
   */
  private readonly queues = new Map<string, Promise<void>>();

  constructor(private readonly deps: TrackerDeps) {}

  /** One watch event. Resolves once the change is recorded (or found recorded); store failures are left for the next sweep. */
  observe(workflow: WatchedWorkflow, deleted: boolean): Promise<void> {
    return this.queued(workflowId(workflow), () => this.observeNow(workflow, deleted)).then(() => undefined);
  }

  /**
   * The store came back and may have come back empty (a Redis restarted without persistence):
   * each Workflow is recorded again in its state now, as the cache has it when its turn comes
   * (`current`), through the same markers, so a store that kept its data writes nothing again
   * and each state is recorded once across replicas. Oldest first, as they happened; a failure
   * that a later remediation of its key has since healed is recorded but not paged again, and
   * the age check of escalate() holds as on a relist. Resolves with how many this call recorded.
   */
  async replay(
    workflows: readonly WatchedWorkflow[],
    current: (workflow: WatchedWorkflow) => WatchedWorkflow | undefined,
  ): Promise<number> {
    const healed = healedFailures(workflows);
    const oldestFirst = workflows
      .map((workflow) => ({ workflow, created: createdAt(workflow) ?? 0 }))
      .sort((a, b) => a.created - b.created)
      .map(({ workflow }) => workflow);
    let recorded = 0;
    for (const workflow of oldestFirst) {
      const id = workflowId(workflow);
      const again = await this.queued(id, async () => {
        const latest = current(workflow);
        if (!latest) return false;
        // Not "seen" any more: a state the store cannot take now is left for the next sweep.
        this.seen.delete(id);
        return this.observeNow(latest, false, healed.has(id));
      }).catch((err: unknown) => {
        this.deps.logger.error({ err, workflow: id }, 'could not record a Workflow again');
        return false;
      });
      if (again) recorded += 1;
    }
    return recorded;
  }

  /** Runs `work` after what is queued for the Workflow `id`. */
  private queued<T>(id: string, work: () => Promise<T>): Promise<T> {
    const run = (this.queues.get(id) ?? Promise.resolve()).then(work);
    const tail: Promise<void> = run
      .then(() => undefined)
      .catch(() => undefined)
      .finally(() => {
        if (this.queues.get(id) === tail) this.queues.delete(id);
      });
    this.queues.set(id, tail);
    return run;
  }

  /** True when this call recorded the state change (false: found recorded, refused, or left for the sweep). */
  private async observeNow(workflow: WatchedWorkflow, deleted: boolean, healed = false): Promise<boolean> {
    const id = workflowId(workflow);
    const observed = observe(workflow, deleted);
    if (deleted) this.seen.delete(id);
    else if (this.seen.get(id) === observed.state) return false;
    try {
      const recorded = await this.record(workflow, observed, healed);
      if (!deleted) this.seen.set(id, observed.state);
      return recorded;
    } catch (err) {
      if (!(err instanceof StoreUnavailableError)) throw err;
      this.deps.metrics.storeErrors.inc({ operation: 'remediation' });
      this.deps.logger.warn({ err: err.message, workflow: id }, 'could not record a remediation state; retried');
      return false;
    }
  }

  /**
   * The periodic pass over the watcher's cache: states not yet recorded (the store was away) are
   * tried again, and Workflows whose approval timed out are stopped.
   */
  async sweep(workflows: readonly WatchedWorkflow[]): Promise<void> {
    for (const workflow of workflows) {
      if (await this.expire(workflow)) continue;
      await this.observe(workflow, false);
    }
    // Forget what the cache no longer holds (deleted while this replica was not watching).
    const present = new Set(workflows.map(workflowId));
    for (const id of this.seen.keys()) if (!present.has(id)) this.seen.delete(id);
    for (const attempt of this.tokens.keys()) {
      if (!present.has(attempt.slice(0, attempt.lastIndexOf(' ')))) this.tokens.delete(attempt);
    }
  }

  /** Stops a Workflow still awaiting approval once its approval_timeout is up; true when it did. */
  async expire(workflow: WatchedWorkflow): Promise<boolean> {
    const deadline = approvalDeadline(workflow);
    if (deadline === undefined || !awaitsApproval(workflow) || this.deps.now() < deadline) return false;
    const timeout = formatDuration(approvalTimeoutMs(workflow) ?? 0);
    return this.stop(workflow, `approval expired: not approved within ${timeout}`);
  }

  /** A source alert resolved: its remediations still awaiting approval are stopped. */
  async sourceResolved(fingerprint: string, workflows: readonly WatchedWorkflow[]): Promise<void> {
    for (const workflow of workflows) {
      if (workflow.metadata.annotations?.[AnnotationKey.Fingerprint] !== fingerprint) continue;
      if (!needsApproval(workflow) || !awaitsApproval(workflow)) continue;
      await this.stop(workflow, 'source alert resolved before approval');
    }
  }

  /**
   * Stops a Workflow (spec.shutdown: Stop) and marks why, so every replica reads it as
   * `cancelled`; records that at once rather than waiting for the watch to bring it back.
   *
   * Argo's controller does not act on spec.shutdown while spec.suspend is set
   * (argoproj/argo-workflows#17041): the same patch clears the suspend flag, and the controller,
   * seeing both at once, stops the Workflow without running its steps. The patch is conditional on
   * the resourceVersion it was decided on: a Workflow approved meanwhile is not stopped (409), and
   * is looked at again with its new state.
   */
  private async stop(workflow: WatchedWorkflow, reason: string): Promise<boolean> {
    const { namespace, name, resourceVersion } = workflow.metadata;
    try {
      await this.deps.patch(namespace, name, {
        metadata: { ...(resourceVersion ? { resourceVersion } : {}), annotations: { [AnnotationKey.Stopped]: reason } },
        spec: { suspend: null, shutdown: 'Stop' },
      });
    } catch (err) {
      const conflict = err instanceof KubeApiError && err.code === 409;
      // A conflict: it changed (approved?) since, and its next event decides. Otherwise tried again
      // at the next sweep (approval timeout) or left for the person (a resolved alert).
      this.deps.logger[conflict ? 'info' : 'warn'](
        { err: (err as Error).message, workflow: workflowId(workflow) },
        conflict ? 'a Workflow changed before it could be stopped; not stopped' : 'could not stop a Workflow',
      );
      return false;
    }
    this.deps.logger.info({ workflow: workflowId(workflow), reason }, 'stopped a Workflow awaiting approval');
    const stopped: WatchedWorkflow = {
      ...workflow,
      metadata: {
        ...workflow.metadata,
        annotations: { ...workflow.metadata.annotations, [AnnotationKey.Stopped]: reason },
      },
      spec: { shutdown: 'Stop' },
    };
    await this.observe(stopped, false);
    return true;
  }

  private async record(workflow: WatchedWorkflow, observed: Observed, healed: boolean): Promise<boolean> {
    const { deps } = this;
    const now = deps.now();
    const { cluster } = deps;
    const remediation = remediationOf(workflow, observed, now, cluster);
    const where = cluster === undefined ? {} : { cluster };
    const created = createdAt(workflow);
    const final = FINAL_STATES.has(observed.state);
    const durationSeconds =
      final && created !== undefined && remediation.finishedAt
        ? Math.max(0, (Date.parse(remediation.finishedAt) - created) / 1000)
        : undefined;
    const attempt = `${remediation.workflow} ${observed.state}`;
    const token = this.tokens.get(attempt) ?? `${deps.settings.replica}:${randomUUID()}`;
    this.tokens.set(attempt, token);
    const recorded = await deps.store.recordTransition(
      remediation,
      {
        kind: 'remediation',
        workflow: remediation.workflow,
        ...where,
        rule: remediation.rule,
        cooldownKey: remediation.cooldownKey,
        target: remediation.target,
        state: observed.state,
        ...(observed.message ? { message: observed.message } : {}),
        ...(observed.approver ? { approver: observed.approver } : {}),
        ...(durationSeconds === undefined ? {} : { durationSeconds }),
        at: new Date(now).toISOString(),
        replica: deps.settings.replica,
      },
      { retentionMs: RETENTION_MS, auditMaxLen: deps.settings.auditMaxLen, token },
    );
    this.tokens.delete(attempt);
    if (!recorded) return false;
    const level = observed.state === 'failed' || observed.state === 'unknown' ? 'warn' : 'info';
    deps.logger[level](
      {
        workflow: remediation.workflow,
        ...where,
        rule: remediation.rule,
        state: observed.state,
        message: observed.message,
      },
      'remediation',
    );
    if (final) {
      deps.metrics.remediations.inc({ rule: remediation.rule, state: observed.state, ...where });
      if (durationSeconds !== undefined)
        deps.metrics.remediationDuration.observe({ rule: remediation.rule, ...where }, durationSeconds);
    }
    await this.escalate(workflow, observed, remediation.finishedAt, healed);
    return true;
  }

  /**
   * What the state change means for the escalations of its cooldown key (SPEC §9). `healed`: a
   * later remediation of the key succeeded, so a failure (recorded again) is not paged again.
   */
  private async escalate(
    workflow: WatchedWorkflow,
    observed: Observed,
    finishedAt: string | undefined,
    healed: boolean,
  ): Promise<void> {
    const { escalations } = this.deps;
    const subject = subjectOf(workflow, this.deps.cluster);
    const id = workflowId(workflow);
    if (observed.state === 'awaiting_approval') {
      // It pages until the approval is decided, however long approval_timeout is.
      const deadline = approvalDeadline(workflow);
      const lastsMs = deadline === undefined ? undefined : Math.max(0, deadline - this.deps.now());
      await escalations.open(
        subject,
        escalationId.approval(id),
        escalations.approvalRequired(subject, workflow),
        lastsMs,
      );
      return;
    }
    // A store that lost its markers (restarted empty, or the in-memory store after a restart)
    // records old final states again when the watcher relists: what ended longer ago than an
    // escalation lasts is not paged again.
    const finished = Date.parse(finishedAt ?? '');
    if (!Number.isNaN(finished) && this.deps.now() - finished > this.deps.settings.escalationTtlMs) return;
    // Any other state ends the wait for approval: approved, stopped, finished or gone.
    if (needsApproval(workflow)) await escalations.close(subject, [escalationId.approval(id)]);
    if ((observed.state === 'failed' || observed.state === 'unknown') && !healed) {
      await escalations.open(subject, escalationId.failed(id), escalations.failed(subject, observed));
    } else if (observed.state === 'succeeded') {
      // The key healed: its failures and its spent budget are resolved; another Workflow of it
      // that still awaits approval still does.
      await escalations.close(subject, { prefixes: [escalationId.failed(''), escalationId.exhausted] });
    }
  }
}

/**
 * The failed Workflows among these whose cooldown key has a Workflow created later that
 * succeeded: that success resolved their escalation (SPEC §9), so a replay does not fire it again.
 */
function healedFailures(workflows: readonly WatchedWorkflow[]): Set<string> {
  const known = workflows.flatMap((workflow) => {
    const key = workflow.metadata.annotations?.[AnnotationKey.CooldownKey];
    const created = createdAt(workflow);
    if (key === undefined || created === undefined) return [];
    return [{ id: workflowId(workflow), key, created, state: observe(workflow, false).state }];
  });
  const lastSuccess = new Map<string, number>();
  for (const { key, created, state } of known) {
    if (state === 'succeeded') lastSuccess.set(key, Math.max(created, lastSuccess.get(key) ?? created));
  }
  return new Set(
    known
      .filter(({ key, created, state }) => state === 'failed' && (lastSuccess.get(key) ?? created) > created)
      .map(({ id }) => id),
  );
}

/** Who and what an escalation about this Workflow names, from what it was created with (and where it was watched). */
export function subjectOf(workflow: WatchedWorkflow, cluster?: string): EscalationSubject {
  const annotations = workflow.metadata.annotations ?? {};
  const [namespace = '', pod = ''] = (annotations[AnnotationKey.Target] ?? '').split('/');
  const priority = workflow.metadata.labels?.[LabelKey.Priority];
  return {
    rule: annotations[AnnotationKey.Rule] ?? workflow.metadata.labels?.[LabelKey.Rule] ?? '',
    priority: priority === 'P1' || priority === 'P2' || priority === 'P3' || priority === 'P4' ? priority : 'P3',
    cooldownKey: annotations[AnnotationKey.CooldownKey] ?? '',
    target: { namespace, pod },
    workload: annotations[AnnotationKey.Workload] ?? '',
    workflow: { namespace: workflow.metadata.namespace, name: workflow.metadata.name },
    sourceAlertname: annotations[AnnotationKey.AlertName] ?? '',
    ...(annotations[AnnotationKey.RunbookUrl] ? { runbookUrl: annotations[AnnotationKey.RunbookUrl] } : {}),
    ...(cluster === undefined ? {} : { cluster }),
  };
}
