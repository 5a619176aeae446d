import type { Priority, Rule } from '../rules/types.js';
import type { Alert, AlertStatus } from './alert.js';
import type { Outcome } from './outcome.js';

/** The answer for one alert, as it appears in the HTTP response, the log line and the audit trail. */
export interface Decision {
  fingerprint: string;
  alertname: string;
  status: AlertStatus;
  rule: string | null;
  priority: Priority | null;
  outcome: Outcome;
  reason?: string;
  cooldownKey?: string;
  workflow?: { namespace: string; name: string };
  /** Seconds after which a `retry` is worth trying, when the backend said so. */
  retryAfterSeconds?: number;
}

/** Text taken from alert labels goes into responses, logs and the audit trail: bounded there. */
export const LABEL_TEXT_MAX = 256;

export function clip(text: string, max = LABEL_TEXT_MAX): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

export function decide(
  alert: Alert,
  rule: Rule | null,
  outcome: Outcome,
  extra: Pick<Decision, 'reason' | 'cooldownKey' | 'workflow' | 'retryAfterSeconds'> = {},
): Decision {
  return {
    fingerprint: alert.fingerprint,
    alertname: clip(alert.labels.alertname ?? ''),
    status: alert.status,
    rule: rule?.name ?? null,
    priority: rule?.priority ?? null,
    outcome,
    ...extra,
  };
}
