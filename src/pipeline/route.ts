import type { Alert } from '../alert.js';
import { own } from '../alert.js';
import { decide } from '../decision.js';
import type { Matched, Stage } from './stage.js';

/**
 * Which cluster an alert's Workflow goes to (SPEC §10, --clusters): the value of one alert label,
 * or the default cluster when the alert does not carry it.
 */
export interface ClusterRouting {
  /** The alert label that names the cluster (`cluster` by default). */
  label: string;
  /** Where an alert without the label goes. */
  defaultCluster: string;
  /** Every configured cluster, in the file's order. */
  names: readonly string[];
}

/**
 * The cluster an alert asks for: its label's value, or the default when the label is absent or
 * empty (an empty label counts as absent, as it does in Alertmanager). It may name no configured
 * cluster: isKnownCluster says.
 */
export function clusterOf(alert: Alert, routing: ClusterRouting): string {
  return own(alert.labels, routing.label) || routing.defaultCluster;
}

export function isKnownCluster(cluster: string, routing: ClusterRouting): boolean {
  return routing.names.includes(cluster);
}

/**
 * An alert asking for a cluster nobody configured is `invalid_target`, before anything is claimed:
 * it never holds a cooldown, and nothing is created anywhere. Without --clusters every alert
 * passes (there is one cluster).
 */
export function routeToCluster(routing: ClusterRouting | undefined): Stage<Matched, Matched> {
  if (!routing) return (draft) => draft;
  return (draft) => {
    const cluster = draft.cluster ?? clusterOf(draft.alert, routing);
    if (isKnownCluster(cluster, routing)) return { ...draft, cluster };
    return decide(draft.alert, draft.rule, 'invalid_target', {
      reason: `label "${routing.label}" names cluster ${JSON.stringify(clip(cluster))}, which is not configured (clusters: ${routing.names.join(', ')})`,
    });
  };
}

const QUOTED_MAX = 80;

function clip(value: string): string {
  return value.length > QUOTED_MAX ? `${value.slice(0, QUOTED_MAX)}…` : value;
}
