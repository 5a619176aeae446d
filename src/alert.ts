import { type Static, Type } from '@sinclair/typebox';

/** Where an alert came in: the Alertmanager webhook, or the v2 API that Prometheus and the Loki ruler post to. */
export type AlertSource = 'alertmanager' | 'api_v2';

export const AlertStatus = Type.Union([Type.Literal('firing'), Type.Literal('resolved')]);
export type AlertStatus = Static<typeof AlertStatus>;

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

/** Prometheus' label name grammar, which alert labels and annotations follow. */
export const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** A label or annotation value, or undefined: own properties only, so `constructor` is never a label. */
export function own(values: Record<string, string>, name: string): string | undefined {
  return Object.hasOwn(values, name) ? values[name] : undefined;
}
