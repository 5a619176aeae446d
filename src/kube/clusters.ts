import type { WorkflowSubmitter } from './client.js';
import type { OptOuts } from './opt-out.js';
import { AnnotationKey } from './workflow.js';

/**
 * --clusters: one submitter per cluster, chosen by the Workflow's own cluster annotation (the
 * pipeline wrote it when it routed the alert), so submission still sees only the finished object.
 * A Workflow naming no configured cluster is refused before anything is sent; the pipeline's
 * routing never builds one.
 */
export function clusterSubmitter(submitters: ReadonlyMap<string, WorkflowSubmitter>): WorkflowSubmitter {
  const all = [...submitters.values()];
  return {
    mode: all.every((submitter) => submitter.mode === 'dry-run') ? 'dry-run' : 'cluster',
    target: [...submitters].map(([name, submitter]) => `${name}=${submitter.target}`).join(', '),
    warnings: [...submitters].flatMap(([name, submitter]) =>
      (submitter.warnings ?? []).map((warning) => `cluster ${name}: ${warning}`),
    ),
    async create(workflow, timeoutMs) {
      const cluster = workflow.metadata.annotations[AnnotationKey.Cluster];
      const submitter = cluster === undefined ? undefined : submitters.get(cluster);
      if (!submitter) {
        const reason = `the Workflow names cluster ${JSON.stringify(cluster ?? '')}, which is not configured`;
        return { kind: 'failed', retryable: false, reason, mayHaveLanded: false };
      }
      return submitter.create(workflow, timeoutMs);
    },
  };
}

/**
 * --clusters: each cluster's opt-outs read from that cluster, the one the alert was routed to
 * (the routing stage refuses any other before this is asked: one not configured is a bug, and rejects).
 */
export function clusterOptOuts(byCluster: ReadonlyMap<string, OptOuts>): OptOuts {
  return {
    async check(target, cluster) {
      const optOuts = cluster === undefined ? undefined : byCluster.get(cluster);
      if (!optOuts) throw new Error(`cluster ${JSON.stringify(cluster)} is not configured`);
      return optOuts.check(target);
    },
  };
}
