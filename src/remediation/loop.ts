import type { Logger } from 'pino';
import type { Alert } from '../alert.js';
import type { KubeRequest, KubeWatch } from '../kube/http.js';
import { WorkflowInformer } from '../kube/informer.js';
import { AnnotationKey, keyHash, LabelKey, MANAGED_SELECTOR, type WatchedWorkflow } from '../kube/workflow.js';
import { listWorkflows, patchWorkflow } from '../kube/workflows.js';
import type { AttemptDeps } from '../pipeline/attempts.js';
import type { ClusterRecord, KeyedWorkflow } from '../pipeline/cluster-record.js';
import { cooldownKey, workloadOf } from '../pipeline/cooldown-key.js';
import type { Metrics } from '../pipeline/metrics.js';
import type { RuleSet } from '../rules/types.js';
import type { CooldownStore } from '../stores/cooldown-store.js';
import type { EscalationSubject, Escalations } from './escalations.js';
import { REMEDIATION_STATES, type RemediationState } from './model.js';
import { awaitsApproval, createdAt, observe, workflowId } from './state.js';

const isState = (state: string): state is RemediationState => (REMEDIATION_STATES as readonly string[]).includes(state);

import { escalationId, RemediationTracker } from './tracker.js';

export interface ClosedLoopDeps {
  kube: { request: KubeRequest; watch: KubeWatch };
  store: CooldownStore;
  escalations: Escalations;
  metrics: Metrics;
  logger: Logger;
  now: () => number;
  settings: { replica: string; auditMaxLen: number; escalationTtlMs: number };
  /** The namespaces the rules in force submit to (a reload may add some). */
  namespaces: () => readonly string[];
  /** Where a rule without a namespace submits to (--workflow-namespace). */
  workflowNamespace: string;
  /** How often every cached Workflow is looked at again (store retries, missed approval timeouts). */
  sweepEveryMs?: number;
  /** A LIST or a PATCH that has not answered by then is given up (the submit timeout). */
  apiTimeoutMs: number;
}

const SWEEP_EVERY_MS = 10_000;

/**
 * SPEC §9 on one replica: a watcher of Kube Sentinel's Workflows per namespace its rules submit
 * to, the tracker that records what became of each, approval timeouts, and the cluster as the
 * record the pipeline consults before it creates.
 */
export class ClosedLoop implements ClusterRecord {
  private readonly informers = new Map<string, WorkflowInformer>();
  private readonly tracker: RemediationTracker;
  /** Events of one Workflow are handled in order, one at a time. */
  private readonly queues = new Map<string, Promise<void>>();
  private readonly deadlines = new Map<string, NodeJS.Timeout>();
  /**
   * Workflows awaiting approval by the fingerprint of their source alert: a storm of resolved
   * alerts looks each one up here instead of scanning every cached Workflow.
   */
  private readonly awaiting = new Map<string, Map<string, WatchedWorkflow>>();
  private sweepTimer: NodeJS.Timeout | undefined;
  /** The sweep under way: one at a time, however often the timer fires. */
  private sweeping: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly deps: ClosedLoopDeps) {
    this.tracker = new RemediationTracker({
      ...deps,
      patch: (namespace, name, patch) =>
        patchWorkflow(deps.kube.request, namespace, name, patch, AbortSignal.timeout(deps.apiTimeoutMs)).then(
          () => undefined,
        ),
    });
  }

  /** Starts watching; called once the server listens, so that it never slows the cold start. */
  start(): void {
    this.watchNamespaces();
    const every = this.deps.sweepEveryMs ?? SWEEP_EVERY_MS;
    this.sweepTimer = setInterval(() => this.sweep().catch(() => undefined), every);
    this.sweepTimer.unref();
  }

  /** The rules were reloaded: namespaces they now submit to are watched too (none is dropped). */
  watchNamespaces(): void {
    if (this.stopped) return;
    for (const namespace of this.deps.namespaces()) {
      if (this.informers.has(namespace)) continue;
      const informer = new WorkflowInformer({
        request: this.deps.kube.request,
        watch: this.deps.kube.watch,
        namespace,
        labelSelector: MANAGED_SELECTOR,
        onEvent: (event) => this.enqueue(event.workflow, event.type === 'DELETED'),
        onHealth: (health) => {
          this.deps.metrics.workflowWatchHealthy.set({ namespace }, health.healthy ? 1 : 0);
          if (health.healthy) this.deps.logger.info({ namespace }, 'watching Workflows');
          else this.deps.logger.warn({ namespace, problem: health.problem }, 'Workflow watch failing; retrying');
        },
      });
      this.informers.set(namespace, informer);
      informer.start();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.sweepTimer);
    for (const timer of this.deadlines.values()) clearTimeout(timer);
    this.deadlines.clear();
    await Promise.all([...this.informers.values()].map((informer) => informer.stop()));
    await Promise.allSettled([...this.queues.values()]);
  }

  /** Every Workflow the watchers hold. */
  workflows(): WatchedWorkflow[] {
    return [...this.informers.values()].flatMap((informer) => informer.workflows());
  }

  async workflowsOf(namespace: string, hash: string): Promise<KeyedWorkflow[]> {
    const informer = this.informers.get(namespace);
    // A cache whose watch is failing may lack what another replica created since: asked then.
    const found =
      informer?.synced && informer.health.healthy
        ? informer.workflows().filter((workflow) => workflow.metadata.labels?.[LabelKey.KeyHash] === hash)
        : await this.listKey(namespace, hash);
    return found.map((workflow) => ({
      namespace: workflow.metadata.namespace,
      name: workflow.metadata.name,
      createdAt: createdAt(workflow) ?? this.deps.now(),
      state: observe(workflow, false).state,
    }));
  }

  /** For the pipeline: a spent budget fires KubeSentinelRemediationExhausted, once while it stays spent. */
  readonly exhausted: NonNullable<AttemptDeps['exhausted']> = async (draft, attempts) => {
    const latest = attempts.at(-1)?.workflow.split('/');
    const labels = draft.alert.labels;
    const subject: EscalationSubject = {
      rule: draft.rule.name,
      priority: draft.rule.priority,
      cooldownKey: draft.cooldownKey,
      target: { namespace: labels.namespace ?? '', pod: labels.pod ?? '' },
      workload: workloadOf(labels) ?? '',
      ...(latest?.length === 2 ? { workflow: { namespace: latest[0] ?? '', name: latest[1] ?? '' } } : {}),
      sourceAlertname: labels.alertname ?? '',
      ...(draft.rule.remediation.runbookUrl ? { runbookUrl: draft.rule.remediation.runbookUrl } : {}),
    };
    const { escalations } = this.deps;
    const { maxAttempts, attemptWindowMs } = draft.rule.remediation;
    const outcome = {
      attempts: attempts.map(({ workflow, at, state }) => ({
        workflow,
        at,
        ...(isState(state) ? { state } : {}),
      })),
      maxAttempts,
      attemptWindowMs,
    };
    await escalations.open(subject, escalationId.exhausted, escalations.exhausted(subject, outcome));
  };

  private async listKey(namespace: string, hash: string): Promise<WatchedWorkflow[]> {
    const selector = `${MANAGED_SELECTOR},${LabelKey.KeyHash}=${hash}`;
    const signal = AbortSignal.timeout(this.deps.apiTimeoutMs);
    return (await listWorkflows(this.deps.kube.request, namespace, selector, signal)).items;
  }

  /**
   * For the pipeline: a resolved alert stops its remediations awaiting approval (in the
   * background). This replica's watch may not have seen a Workflow another replica created a
   * moment ago: when the cache has none and the alert's rule asks for approval, its key's
   * Workflows are listed.
   */
  readonly sourceResolved = (alert: Alert, rules: RuleSet): void => {
    const cached = [...(this.awaiting.get(alert.fingerprint)?.values() ?? [])];
    const rule = cached.length > 0 ? null : rules.match(alert);
    if (cached.length === 0 && rule?.remediation.approval !== 'required') return;
    const found = async (): Promise<WatchedWorkflow[]> => {
      if (cached.length > 0 || !rule) return cached;
      const namespace = rule.remediation.params.namespace ?? this.deps.workflowNamespace;
      return this.listKey(namespace, keyHash(cooldownKey(alert, rule)));
    };
    found()
      .then((workflows) => this.tracker.sourceResolved(alert, workflows))
      .catch((err: unknown) => {
        this.deps.logger.error({ err }, 'could not stop the remediations of a resolved alert');
      });
  };

  /** One sweep over the caches, one at a time; also what tests call instead of waiting for the timer. */
  sweep(): Promise<void> {
    this.sweeping ??= this.tracker
      .sweep(this.workflows())
      .catch((err: unknown) => this.deps.logger.error({ err }, 'remediation sweep failed'))
      .finally(() => {
        this.sweeping = undefined;
      });
    return this.sweeping;
  }

  private enqueue(workflow: WatchedWorkflow, deleted: boolean): void {
    const id = workflowId(workflow);
    const previous = this.queues.get(id) ?? Promise.resolve();
    const next = previous
      .then(() => this.tracker.observe(workflow, deleted))
      .catch((err: unknown) => this.deps.logger.error({ err, workflow: id }, 'could not track a Workflow'))
      .finally(() => {
        if (this.queues.get(id) === next) this.queues.delete(id);
      });
    this.queues.set(id, next);
    this.indexAwaiting(workflow, deleted);
    this.scheduleApprovalDeadline(workflow, deleted);
  }

  private indexAwaiting(workflow: WatchedWorkflow, deleted: boolean): void {
    const fingerprint = workflow.metadata.annotations?.[AnnotationKey.Fingerprint];
    if (fingerprint === undefined) return;
    const id = workflowId(workflow);
    const byId = this.awaiting.get(fingerprint);
    if (!deleted && awaitsApproval(workflow)) {
      if (byId) byId.set(id, workflow);
      else this.awaiting.set(fingerprint, new Map([[id, workflow]]));
      return;
    }
    byId?.delete(id);
    if (byId?.size === 0) this.awaiting.delete(fingerprint);
  }

  /** A Workflow awaiting approval is looked at again the moment its approval_timeout is up. */
  private scheduleApprovalDeadline(workflow: WatchedWorkflow, deleted: boolean): void {
    const id = workflowId(workflow);
    if (deleted || !awaitsApproval(workflow) || this.deadlines.has(id) || this.stopped) return;
    const seconds = Number(workflow.metadata.annotations?.[AnnotationKey.ApprovalTimeout]);
    const created = createdAt(workflow);
    if (!Number.isFinite(seconds) || created === undefined) return;
    // setTimeout holds at most about 24.8 days; the sweep covers anything longer.
    const delay = Math.min(2 ** 31 - 1, Math.max(0, created + seconds * 1000 - this.deps.now()));
    const { namespace, name } = workflow.metadata;
    const timer = setTimeout(() => {
      this.deadlines.delete(id);
      // Only this Workflow, as the cache has it now: N approvals due at once are N patches.
      const current = this.informers.get(namespace)?.workflow(name);
      if (!current) return;
      this.tracker.expire(current).catch((err: unknown) => {
        this.deps.logger.error({ err, workflow: id }, 'could not stop a Workflow whose approval expired');
      });
    }, delay);
    timer.unref();
    this.deadlines.set(id, timer);
  }
}
