/** Where an alert came in: the Alertmanager webhook, or the v2 API that Prometheus and the Loki ruler post to. */
export type AlertSource = 'alertmanager' | 'api_v2';

export type AlertStatus = 'firing' | 'resolved';

/** One alert, normalised from either intake shape. Concrete from receive to record. */
export interface Alert {
  source: AlertSource;
  status: AlertStatus;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt?: string;
  endsAt?: string;
  generatorURL?: string;
  /** Alertmanager's fingerprint: the one sent in the webhook, else FNV-1a 64 of the sorted labels (16 hex digits). */
  fingerprint: string;
}
