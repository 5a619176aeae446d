import type { Alert } from '../alert.js';
import type { KubeRequest, KubeWatch } from '../kube/http.js';
import { WorkflowInformer } from '../kube/informer.js';
import { AnnotationKey, keyHash, LabelKey, MANAGED_SELECTOR, type WatchedWorkflow } from '../kube/workflow.js';
import { listWorkflows, patchWorkflow } from '../kube/workflows.js';
import type { AttemptDeps } from '../pipeline/attempts.js';
import type { ClusterRecord, KeyedWorkflow } from '../pipeline/cluster-record.js';
import { cooldownKey, workloadOf } from '../pipeline/cooldown-key.js';
import type { RuleSet } from '../rules/types.js';
import type { EscalationSubject } from './escalations.js';
import { workflowOfId } from './model.js';
import { approvalDeadline, awaitsApproval, createdAt, observe, workflowId } from './state.js';
import { escalationId, RemediationTracker, type TrackerDeps } from './tracker.js';

/** What the tracker needs, but the patching: the loop does that through the API. */
export interface ClosedLoopDeps extends Omit<TrackerDeps, 'patch'> {
  kube: { request: KubeRequest; watch: KubeWatch };
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
const RESOLVED_KEPT = 10_000;
const LOOKUPS_AT_ONCE = 4;

/** Whether a rule set asks for approval anywhere, worked out once per set (a reload builds a new one). */
const approvalRules = new WeakMap<RuleSet, boolean>();
function hasApprovalRule(rules: RuleSet): boolean {
  let found = approvalRules.get(rules);
  if (found === undefined) {
    found = rules.rules.some((rule) => rule.enabled && rule.remediation.approval === 'required');
    approvalRules.set(rules, found);
  }
  return found;
}

/**
 * SPEC §9 on one replica: a watcher of Kube Sentinel's Workflows per namespace its rules submit
 * to, the tracker that records what became of each, approval timeouts, and the cluster as the
 * record the pipeline consults before it creates.
 */
export class ClosedLoop implements ClusterRecord {
  private readonly informers = new Map<string, WorkflowInformer>();
  private readonly tracker: RemediationTracker;
  /** Work started in the background (events, stops, lookups): stop() waits for it. */
  private readonly background = new Set<Promise<unknown>>();
  private readonly deadlines = new Map<string, NodeJS.Timeout>();
  /**
   * Source alerts of approval rules that resolved, by fingerprint, until their approval timeout:
   * a Workflow of one that this replica's watch brings later (created a moment ago on another
   * replica, or changed when the first stop met a conflict) is stopped then. Bounded: the oldest
   * are forgotten past RESOLVED_KEPT.
   */
  private readonly resolved = new Map<string, number>();
  /** LISTs for resolved alerts under way; past LOOKUPS_AT_ONCE the remembered fingerprint must do. */
  private lookups = 0;
  /**
   * Workflows awaiting approval by the fingerprint of their source alert: a storm of resolved
   * alerts looks each one up here instead of scanning every cached Workflow.
   */
  private readonly awaiting = new Map<string, Map<string, WatchedWorkflow>>();
  private sweepTimer: NodeJS.Timeout | undefined;
  /** The sweep under way: one at a time, however often the timer fires. */
  private sweeping: Promise<void> | undefined;
  /** The replay under way, and whether another was asked for meanwhile (one more covers them all). */
  private replaying: Promise<void> | undefined;
  private replayAgain = false;
  private stopListening: (() => void) | undefined;
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
    // The store says null each time its subscription is up: it may have come back empty. Not
    // awaited: the replay runs beside the serve path. The null of the store's first connection
    // is usually heard before this starts; when it is not, the replay finds the caches empty, or
    // (the list done already) each state's marker set: a round trip per Workflow, nothing written.
    this.stopListening = this.deps.store.onCooldownEnded((key) => {
      if (key === null) this.replay().catch(() => undefined);
    });
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
          const { cluster } = this.deps;
          const where = cluster === undefined ? {} : { cluster };
          this.deps.metrics.workflowWatchHealthy.set(
            { workflow_namespace: namespace, ...where },
            health.healthy ? 1 : 0,
          );
          if (health.healthy) this.deps.logger.info({ namespace, ...where }, 'watching Workflows');
          else
            this.deps.logger.warn({ namespace, ...where, problem: health.problem }, 'Workflow watch failing; retrying');
        },
      });
      this.informers.set(namespace, informer);
      informer.start();
    }
  }

  /** Stops watching, and waits for what is under way (a state being recorded, a stop, a sweep) so that its escalation is sent before the escalator closes. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.stopListening?.();
    clearInterval(this.sweepTimer);
    for (const timer of this.deadlines.values()) clearTimeout(timer);
    this.deadlines.clear();
    await Promise.all([...this.informers.values()].map((informer) => informer.stop()));
    await Promise.allSettled([...this.background, this.sweeping, this.replaying]);
  }

  /** What /readyz warns about: the namespaces whose watch is failing, and why (and in which cluster, with --clusters). */
  watchProblems(): string[] {
    const { cluster } = this.deps;
    return [...this.informers.values()]
      .map((informer) => informer.health)
      .filter((health) => !health.healthy)
      .map((health) => health.problem ?? 'Workflow watch failing')
      .map((problem) => (cluster === undefined ? problem : `cluster ${cluster}: ${problem}`));
  }

  /** Runs `work` in the background, logging its failure, and lets stop() wait for it. */
  private track(work: Promise<unknown>, what: string, workflow?: string): void {
    // tracked() never rejects: it logs.
    this.tracked(work, what, workflow).catch(() => undefined);
  }

  /** As track(), and resolves when the work is done. */
  private tracked(work: Promise<unknown>, what: string, workflow?: string): Promise<void> {
    const tracked: Promise<void> = work
      .then(() => undefined)
      .catch((err: unknown) => this.deps.logger.error({ err, ...(workflow ? { workflow } : {}) }, what))
      .finally(() => this.background.delete(tracked));
    this.background.add(tracked);
    return tracked;
  }

  /** Every Workflow the watchers hold. */
  workflows(): WatchedWorkflow[] {
    return [...this.informers.values()].flatMap((informer) => informer.workflows());
  }

  /** This loop's cluster is the only one it knows: a ClusterLoops asks the loop of the cluster named. */
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
    const latest = workflowOfId(attempts.at(-1)?.workflow ?? '');
    const labels = draft.alert.labels;
    const subject: EscalationSubject = {
      rule: draft.rule.name,
      priority: draft.rule.priority,
      cooldownKey: draft.cooldownKey,
      target: { namespace: labels.namespace ?? '', pod: labels.pod ?? '' },
      workload: workloadOf(labels) ?? '',
      ...(latest ? { workflow: latest } : {}),
      sourceAlertname: labels.alertname ?? '',
      ...(draft.rule.remediation.runbookUrl ? { runbookUrl: draft.rule.remediation.runbookUrl } : {}),
      ...(draft.cluster === undefined ? {} : { cluster: draft.cluster }),
    };
    const { escalations } = this.deps;
    const { maxAttempts, attemptWindowMs } = draft.rule.remediation;
    const outcome = {
      attempts: attempts.map(({ workflow, at, state }) => ({
        workflow,
        at,
        ...(state === 'submitted' ? {} : { state }),
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
   * background). The fingerprint of a resolved alert of an approval rule is remembered until its
   * approval timeout, so a Workflow of it this replica's watch brings later is stopped then. While
   * the namespace's watch is not to be trusted (not synced, or failing), the key's Workflows are
   * listed instead, a few lookups at a time.
   */
  readonly sourceResolved = (alert: Alert, rules: RuleSet): void => {
    if (this.stopped) return;
    const cached = [...(this.awaiting.get(alert.fingerprint)?.values() ?? [])];
    if (cached.length > 0) {
      this.track(this.tracker.sourceResolved(alert.fingerprint, cached), 'could not stop a resolved alert’s Workflow');
      return;
    }
    // Matched again only where it can matter: most rule sets have no approval rule.
    if (!hasApprovalRule(rules)) return;
    const rule = rules.match(alert);
    if (rule?.remediation.approval !== 'required') return;
    this.resolved.delete(alert.fingerprint);
    this.resolved.set(alert.fingerprint, this.deps.now() + rule.remediation.approvalTimeoutMs);
    if (this.resolved.size > RESOLVED_KEPT) this.resolved.delete(this.resolved.keys().next().value ?? '');
    const namespace = rule.remediation.params.namespace ?? this.deps.workflowNamespace;
    const informer = this.informers.get(namespace);
    if ((informer?.synced && informer.health.healthy) || this.lookups >= LOOKUPS_AT_ONCE) return;
    this.lookups += 1;
    const lookup = this.listKey(namespace, keyHash(cooldownKey(alert, rule, this.deps.cluster)))
      .then((workflows) => this.tracker.sourceResolved(alert.fingerprint, workflows))
      .finally(() => {
        this.lookups -= 1;
      });
    this.track(lookup, 'could not stop a resolved alert’s Workflow');
  };

  /** The fingerprint resolved (and not so long ago that its approval would have timed out anyway). */
  private resolvedSource(workflow: WatchedWorkflow): string | undefined {
    const fingerprint = workflow.metadata.annotations?.[AnnotationKey.Fingerprint];
    if (fingerprint === undefined) return undefined;
    const until = this.resolved.get(fingerprint);
    if (until === undefined) return undefined;
    if (until > this.deps.now()) return fingerprint;
    this.resolved.delete(fingerprint);
    return undefined;
  }

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

  /**
   * Records again what the watchers hold (the store came back, maybe empty: SPEC §9 has the
   * cluster as the record, Redis only coordinates), without waiting for a relist. One at a time:
   * asked for while one runs, one more runs after it, for all that asked. Never rejects.
   */
  replay(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.replaying !== undefined) {
      this.replayAgain = true;
      return this.replaying;
    }
    const run = async (): Promise<void> => {
      do {
        this.replayAgain = false;
        await this.replayOnce();
      } while (this.replayAgain && !this.stopped);
    };
    this.replaying = run().finally(() => {
      this.replaying = undefined;
    });
    return this.replaying;
  }

  private async replayOnce(): Promise<void> {
    const { cluster, logger } = this.deps;
    const where = cluster === undefined ? {} : { cluster };
    const workflows = this.workflows();
    try {
      const recorded = await this.tracker.replay(workflows, ({ metadata }) =>
        this.stopped ? undefined : this.informers.get(metadata.namespace)?.workflow(metadata.name),
      );
      logger.info(
        { ...where, workflows: workflows.length, recorded },
        'the store is back: recorded again the Workflows the watchers hold (recorded: those it had lost)',
      );
    } catch (err) {
      logger.error({ err, ...where }, 'could not record the watched Workflows again');
    }
  }

  /**
   * Resolves once the event is recorded: the informer waits for it before the next, so a burst of
   * thousands of new Workflows is recorded one after another, its events held back in the watch's
   * connection, not thousands of store calls and their closures in memory at once.
   */
  private enqueue(workflow: WatchedWorkflow, deleted: boolean): Promise<void> {
    const id = workflowId(workflow);
    // The tracker handles one Workflow's events in order, one at a time.
    const recorded = this.tracked(this.tracker.observe(workflow, deleted), 'could not track a Workflow', id);
    this.indexAwaiting(workflow, deleted);
    this.scheduleApprovalDeadline(workflow, deleted);
    const fingerprint = deleted || !awaitsApproval(workflow) ? undefined : this.resolvedSource(workflow);
    if (fingerprint !== undefined) {
      this.track(
        this.tracker.sourceResolved(fingerprint, [workflow]),
        'could not stop a resolved alert’s Workflow',
        id,
      );
    }
    return recorded;
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
    if (deleted || !awaitsApproval(workflow)) {
      // Approved, stopped or gone: nothing to wait for.
      clearTimeout(this.deadlines.get(id));
      this.deadlines.delete(id);
      return;
    }
    if (this.deadlines.has(id) || this.stopped) return;
    const deadline = approvalDeadline(workflow);
    if (deadline === undefined) return;
    // setTimeout holds at most about 24.8 days; the sweep covers anything longer.
    const delay = Math.min(2 ** 31 - 1, Math.max(0, deadline - this.deps.now()));
    const { namespace, name } = workflow.metadata;
    const timer = setTimeout(() => {
      this.deadlines.delete(id);
      // Only this Workflow, as the cache has it now: N approvals due at once are N patches.
      const current = this.informers.get(namespace)?.workflow(name);
      if (!current) return;
      this.track(this.tracker.expire(current), 'could not stop a Workflow whose approval expired', id);
    }, delay);
    timer.unref();
    this.deadlines.set(id, timer);
  }
}
