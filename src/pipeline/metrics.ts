import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/**
 * Every kube_sentinel_* series (SPEC §7), on a registry of its own so that apps never share
 * counters. The submission, remediation and watch series have a `cluster` label, set only with
 * --clusters: without, it is left out, and the series are exactly those from before it existed.
 */
export function createMetrics(options: { defaults?: boolean } = {}) {
  const registry = new Registry();
  if (options.defaults !== false) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    alertsReceived: new Counter({
      name: 'kube_sentinel_alerts_received_total',
      help: 'Alerts received, by intake source and alert status.',
      labelNames: ['source', 'status'] as const,
      registers,
    }),
    decisions: new Counter({
      name: 'kube_sentinel_decisions_total',
      help: 'Decisions made, by rule ("" for none) and outcome.',
      labelNames: ['rule', 'outcome'] as const,
      registers,
    }),
    submissions: new Counter({
      name: 'kube_sentinel_submissions_total',
      help: 'Workflow creates sent to the Kubernetes API, by template (or inline workflow name), result and HTTP code (timeout, connection when none).',
      labelNames: ['template', 'result', 'code', 'cluster'] as const,
      registers,
    }),
    submitDuration: new Histogram({
      name: 'kube_sentinel_submit_duration_seconds',
      help: 'Time for one Workflow create against the Kubernetes API.',
      labelNames: ['result', 'cluster'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    storeErrors: new Counter({
      name: 'kube_sentinel_cooldown_store_errors_total',
      help: 'Cooldown store operations that failed (the store did not answer).',
      labelNames: ['operation'] as const,
      registers,
    }),
    rulesLoaded: new Gauge({
      name: 'kube_sentinel_rules_loaded',
      help: 'Rules currently loaded (enabled and disabled).',
      registers,
    }),
    lastReloadSuccess: new Gauge({
      name: 'kube_sentinel_rules_last_reload_success',
      help: '1 when the last rules reload succeeded, 0 when it failed and the previous rules stayed in force.',
      registers,
    }),
    rulesWatchHealthy: new Gauge({
      name: 'kube_sentinel_rules_watch_healthy',
      help: '1 while the rules directory is watched for changes, 0 when the watch failed (the rules are still compared every 5 s).',
      registers,
    }),
    reloads: new Counter({
      name: 'kube_sentinel_rules_reloads_total',
      help: 'Rule reloads, by result (success or failure).',
      labelNames: ['result'] as const,
      registers,
    }),
    unauthorized: new Counter({
      name: 'kube_sentinel_http_unauthorized_total',
      help: 'Requests refused with 401 (missing or wrong credentials), by route.',
      labelNames: ['route'] as const,
      registers,
    }),
    remediations: new Counter({
      name: 'kube_sentinel_remediations_total',
      help: 'Remediations that reached a final state (succeeded, failed, cancelled, unknown), by rule; counted once across replicas.',
      labelNames: ['rule', 'state', 'cluster'] as const,
      registers,
    }),
    remediationDuration: new Histogram({
      name: 'kube_sentinel_remediation_duration_seconds',
      help: 'From a Workflow created to its final state, by rule; observed once across replicas.',
      labelNames: ['rule', 'cluster'] as const,
      buckets: [5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200],
      registers,
    }),
    escalations: new Counter({
      name: 'kube_sentinel_escalations_total',
      help: 'Escalation alerts fired or resolved, by alertname and result (sent, failed: gave up within the ttl, logged: no --escalation-url).',
      labelNames: ['alertname', 'result'] as const,
      registers,
    }),
    workflowWatchHealthy: new Gauge({
      name: 'kube_sentinel_workflow_watch_healthy',
      help: "1 while the Workflows of a namespace are watched (listed and synced), 0 while the watch is failing. The label is workflow_namespace: namespace is the scrape target's own.",
      labelNames: ['workflow_namespace', 'cluster'] as const,
      registers,
    }),
    localCooldowns: new Counter({
      name: 'kube_sentinel_cooldowns_answered_locally_total',
      help: "Alerts answered cooldown from this replica's memory of committed cooldowns, without a round trip to the store.",
      registers,
    }),
    dryRun: new Gauge({
      name: 'kube_sentinel_dry_run',
      help: '1 when Kube Sentinel decides and renders but submits nothing.',
      registers,
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
