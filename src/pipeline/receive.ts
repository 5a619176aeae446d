import { FormatRegistry, type Static, Type } from '@sinclair/typebox';
import { type Alert, type AlertSource, AlertStatus } from '../alert.js';
import { fingerprintOf } from './fingerprint.js';

// Unknown fields are allowed everywhere (newer Alertmanagers add fields such as
// notification_reason and routeLabels); only what Kube Sentinel reads is typed.

const LabelSet = Type.Record(Type.String(), Type.String());

export const WebhookAlert = Type.Object({
  status: AlertStatus,
  labels: LabelSet,
  annotations: Type.Optional(LabelSet),
  startsAt: Type.Optional(Type.String()),
  endsAt: Type.Optional(Type.String()),
  generatorURL: Type.Optional(Type.String()),
  fingerprint: Type.Optional(Type.String()),
});

export const WebhookBody = Type.Object({
  version: Type.Optional(Type.Literal('4')),
  status: Type.Optional(AlertStatus),
  receiver: Type.Optional(Type.String()),
  groupKey: Type.Optional(Type.String()),
  alerts: Type.Array(WebhookAlert, { maxItems: 10_000 }),
});
export type WebhookBody = Static<typeof WebhookBody>;

export const PostableAlert = Type.Object({
  labels: Type.Record(Type.String(), Type.String(), { minProperties: 1 }),
  annotations: Type.Optional(LabelSet),
  startsAt: Type.Optional(Type.String({ format: 'date-time' })),
  endsAt: Type.Optional(Type.String({ format: 'date-time' })),
  generatorURL: Type.Optional(Type.String()),
});

export const PostableAlerts = Type.Array(PostableAlert, { maxItems: 10_000 });
export type PostableAlerts = Static<typeof PostableAlerts>;

/**
 * One alert on its own, for `POST /v1/explain` and `explain --alert`: what a person copies out of
 * a webhook (it has a status) or writes by hand (no status: resolved when endsAt has passed, as
 * in the v2 API). An object with `alerts` is a webhook message, never one alert.
 */
export const OneAlert = Type.Object({
  status: Type.Optional(AlertStatus),
  labels: Type.Record(Type.String(), Type.String(), { minProperties: 1 }),
  annotations: Type.Optional(LabelSet),
  startsAt: Type.Optional(Type.String({ format: 'date-time' })),
  endsAt: Type.Optional(Type.String({ format: 'date-time' })),
  generatorURL: Type.Optional(Type.String()),
  fingerprint: Type.Optional(Type.String()),
  alerts: Type.Optional(Type.Never()),
});
export type OneAlert = Static<typeof OneAlert>;

/** `POST /v1/explain` takes either payload shape, or one alert. */
export const ExplainBody = Type.Union([WebhookBody, PostableAlerts, OneAlert]);
export type ExplainBody = Static<typeof ExplainBody>;

const ZERO_TIME = '0001-01-01T00:00:00Z';

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

export function alertsFromWebhook(body: WebhookBody): Alert[] {
  return body.alerts.map((a) => ({
    source: 'alertmanager' as AlertSource,
    status: a.status,
    labels: a.labels,
    annotations: a.annotations ?? {},
    ...optional('startsAt', a.startsAt),
    ...optional('endsAt', a.endsAt),
    ...optional('generatorURL', a.generatorURL),
    fingerprint: a.fingerprint && /^[0-9a-f]{16}$/.test(a.fingerprint) ? a.fingerprint : fingerprintOf(a.labels),
  }));
}

/**
 * The v2 API has no status: an alert is resolved when endsAt is set and not in the future,
 * as Alertmanager decides it (Alert.Resolved()).
 */
export function alertsFromPostable(body: PostableAlerts, now: number): Alert[] {
  return body.map((a) => {
    const ends = a.endsAt && a.endsAt !== ZERO_TIME ? epochMs(a.endsAt) : Number.NaN;
    return {
      source: 'api_v2' as AlertSource,
      status: Number.isFinite(ends) && ends <= now ? 'resolved' : 'firing',
      labels: a.labels,
      annotations: a.annotations ?? {},
      ...optional('startsAt', a.startsAt),
      ...optional('endsAt', a.endsAt),
      ...optional('generatorURL', a.generatorURL),
      fingerprint: fingerprintOf(a.labels),
    };
  });
}

function isWebhookBody(body: WebhookBody | OneAlert): body is WebhookBody {
  return Object.hasOwn(body, 'alerts');
}

/** One alert: with a status as in a webhook, without one as in the v2 API. */
function alertsFromOne(alert: OneAlert, now: number): Alert[] {
  const { status, alerts: _, ...fields } = alert;
  return status === undefined
    ? alertsFromPostable([fields], now)
    : alertsFromWebhook({ alerts: [{ ...fields, status }] });
}

export function alertsFromEither(body: ExplainBody, now: number): Alert[] {
  if (Array.isArray(body)) return alertsFromPostable(body, now);
  return isWebhookBody(body) ? alertsFromWebhook(body) : alertsFromOne(body, now);
}

/** RFC 3339 date-time, as Alertmanager's API takes it (Go's time.RFC3339Nano): a zone is required. */
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$/;

/** Epoch ms of a date-time; Date.parse refuses the lower-case `t` and `z` RFC 3339 allows. */
function epochMs(value: string): number {
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? Date.parse(value.toUpperCase()) : ms;
}

export function isDateTime(value: string): boolean {
  return RFC3339.test(value) && !Number.isNaN(epochMs(value));
}

// TypeBox checks formats through its registry, for the routes and for the CLI (explain --alert).
if (!FormatRegistry.Has('date-time')) FormatRegistry.Set('date-time', isDateTime);
