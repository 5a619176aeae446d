import type { Logger } from 'pino';
import type { Alert } from '../alert.js';
import { clip, type Decision } from '../decision.js';
import type { CooldownStore } from '../stores/cooldown-store.js';
import { STORE_UNAVAILABLE } from './guard.js';
import type { Metrics } from './metrics.js';

export interface RecordDeps {
  store: CooldownStore;
  metrics: Metrics;
  logger: Logger;
  now: () => number;
  settings: { replica: string; auditMaxLen: number };
}

/**
 * How a pipeline records: ingest decisions are counted, logged and go to the shared audit trail;
 * explain ones (audit: false) leave no trace but a debug line.
 */
export interface RecordOptions {
  audit: boolean;
}

/**
 * One `decision` log line, one metric and an entry in the shared audit trail per ingest decision.
 * A failing audit write is logged and counted, never turned into a failed decision: the
 * remediation already happened. Explain has no side effects: nothing counted or appended, and its
 * debug line is no `decision` (what counts decisions in the logs sees only ingest's).
 */
export function recorder(deps: RecordDeps, options: RecordOptions): (alert: Alert, decision: Decision) => void {
  return (alert, decision) => {
    const line = {
      rule: decision.rule,
      action: decision.rule ? 'trigger-argo-workflow' : null,
      outcome: decision.outcome,
      workflow: decision.workflow?.name ?? null,
      namespace: alert.labels.namespace === undefined ? null : clip(alert.labels.namespace),
      pod: alert.labels.pod === undefined ? null : clip(alert.labels.pod),
      fingerprint: decision.fingerprint,
      alertname: decision.alertname,
      ...(decision.cluster === undefined ? {} : { cluster: decision.cluster }),
      ...(decision.reason ? { reason: decision.reason } : {}),
    };
    if (!options.audit) {
      deps.logger.debug(line, 'explain');
      return;
    }
    deps.metrics.decisions.inc({ rule: decision.rule ?? '', outcome: decision.outcome });
    const level = decision.outcome === 'failed' ? 'error' : decision.outcome === 'retry' ? 'warn' : 'info';
    deps.logger[level](line, 'decision');
    if (decision.reason === STORE_UNAVAILABLE) return;
    // Not awaited: the answer to Alertmanager need not wait for a second round trip to Redis. The
    // write is queued on the same connection (closing the store waits for it).
    deps.store
      .appendDecision(
        { ...documented(decision), at: new Date(deps.now()).toISOString(), replica: deps.settings.replica },
        deps.settings.auditMaxLen,
      )
      .catch((err: unknown) => {
        deps.metrics.storeErrors.inc({ operation: 'audit' });
        deps.logger.warn({ err: (err as Error).message }, 'could not append to the audit trail');
      });
  };
}

/** The decision as the API documents it: without what only feeds a header, or only explain shows. */
function documented(decision: Decision): Decision {
  if (decision.retryAfterSeconds === undefined && decision.manifest === undefined) return decision;
  const { retryAfterSeconds: _, manifest: __, ...answer } = decision;
  return answer;
}
