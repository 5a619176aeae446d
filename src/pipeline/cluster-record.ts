import type { RemediationState } from '../remediation/model.js';

/** A Workflow of one cooldown key, as the cluster knows it. */
export interface KeyedWorkflow {
  namespace: string;
  name: string;
  /** Epoch milliseconds of metadata.creationTimestamp. */
  createdAt: number;
  state: RemediationState;
}

/**
 * The cluster as the record of what was done (SPEC §9): the Workflows Kube Sentinel created for a
 * cooldown key, found by their key-hash label, so that a cooldown or an attempt Redis forgot is
 * still honoured.
 */
export interface ClusterRecord {
  /**
   * The Workflows labelled with this key hash in `namespace`: from the watcher's cache once it has
   * synced, else from one labelled LIST; with --clusters, in the named cluster. Rejects when the
   * API server cannot answer.
   */
  workflowsOf(namespace: string, keyHash: string, cluster?: string): Promise<KeyedWorkflow[]>;
}
