import type { Alert } from '../alert.js';
import type { AttemptDeps } from '../pipeline/attempts.js';
import type { ClusterRecord, KeyedWorkflow } from '../pipeline/cluster-record.js';
import { type ClusterRouting, clusterOf } from '../pipeline/route.js';
import type { RuleSet } from '../rules/types.js';
import type { ClosedLoop } from './loop.js';

/** What the server and the pipeline use of a closed loop: one cluster's, or every cluster's (ClusterLoops). */
export type Loop = Pick<
  ClosedLoop,
  'start' | 'stop' | 'watchNamespaces' | 'watchProblems' | 'workflowsOf' | 'exhausted' | 'sourceResolved'
>;

/**
 * SPEC §10 with --clusters: one closed loop per cluster, each with its watchers (one per
 * namespace), its tracker and its API client; the pipeline's questions go to the loop of the
 * cluster the alert was routed to.
 */
export class ClusterLoops implements ClusterRecord, Loop {
  constructor(
    private readonly loops: ReadonlyMap<string, ClosedLoop>,
    private readonly routing: ClusterRouting,
  ) {}

  start(): void {
    for (const loop of this.loops.values()) loop.start();
  }

  watchNamespaces(): void {
    for (const loop of this.loops.values()) loop.watchNamespaces();
  }

  async stop(): Promise<void> {
    await Promise.all([...this.loops.values()].map((loop) => loop.stop()));
  }

  /** Each one names its cluster. */
  watchProblems(): string[] {
    return [...this.loops.values()].flatMap((loop) => loop.watchProblems());
  }

  async workflowsOf(namespace: string, keyHash: string, cluster?: string): Promise<KeyedWorkflow[]> {
    return this.loopOf(cluster).workflowsOf(namespace, keyHash);
  }

  readonly exhausted: NonNullable<AttemptDeps['exhausted']> = (draft, attempts) =>
    this.loopOf(draft.cluster).exhausted(draft, attempts);

  /** An alert for a cluster not configured had no Workflow anywhere: nothing to stop. */
  readonly sourceResolved = (alert: Alert, rules: RuleSet): void => {
    this.loops.get(clusterOf(alert, this.routing))?.sourceResolved(alert, rules);
  };

  /** The routing stage refuses any other cluster before this is asked. */
  private loopOf(cluster: string | undefined): ClosedLoop {
    const loop = this.loops.get(cluster ?? this.routing.defaultCluster);
    if (!loop) throw new Error(`cluster ${JSON.stringify(cluster)} is not configured`);
    return loop;
  }
}
