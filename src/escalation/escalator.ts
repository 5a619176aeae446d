import { clip } from '../decision.js';
import type { EscalationAlert, EscalationEntry } from '../remediation/model.js';
import type { CooldownStore } from '../stores/cooldown-store.js';
import {
  answerText,
  describeFetchError,
  type Endpoint,
  endpointOf,
  identityOf,
  retryAfterOf,
  unrefSleep,
} from './http.js';

/**
 * Posts escalations to the team's Alertmanagers exactly as Prometheus posts its alerts (SPEC §9),
 * in the background: a decision never waits for an Alertmanager.
 */

/** sent: an Alertmanager accepted it; failed: every one refused it or it gave up; logged: no --escalation-url. */
export type EscalationResult = 'sent' | 'failed' | 'logged';
export type EscalationStatus = EscalationEntry['status'];

export interface EscalationContext {
  cooldownKey: string;
  /** `<namespace>/<name>` of the Workflow it is about, for the audit trail. */
  workflow?: string;
  /**
   * A firing escalation that must last longer than the ttl (an approval that waits for hours):
   * endsAt is now + the longer of the two.
   */
  lastsMs?: number;
}

/** The part of a pino logger the escalator uses. */
export interface EscalatorLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** kube_sentinel_escalations_total, or anything counted the same way. */
export interface EscalationCounter {
  inc(labels: { alertname: string; result: EscalationResult }): void;
}

export interface EscalatorOptions {
  /** Alertmanager base URLs, one per member of an HA set; empty: escalations are logged only. */
  urls: readonly string[];
  /** A firing escalation ends this long after it was sent (endsAt); sends are retried within it. */
  ttlMs: number;
  now?: () => number;
  logger: EscalatorLogger;
  metric: EscalationCounter;
  store: Pick<CooldownStore, 'appendDecision'>;
  replica: string;
  auditMaxLen: number;
  fetch?: typeof globalThis.fetch;
  /** Each POST is abandoned (and retried) after this; default 5 s. */
  requestTimeoutMs?: number;
  /** Delay before the first retry and the most between two; doubled per retry, with jitter. Default 500 ms .. 30 s. */
  backoff?: { firstMs: number; maxMs: number };
  /** In [0, 1): the jitter. */
  random?: () => number;
  /** Waits ms, or less when signal aborts. Real, unref'd timers by default. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** close() waits this long for requests in flight before it aborts them; default 2 s. */
  closeTimeoutMs?: number;
}

/** One fire or resolve on its way; the promise never rejects. */
export interface EscalationSend {
  readonly result: Promise<EscalationResult>;
}

export interface Escalator {
  /** Sends the alert firing until now + ttl. Returns at once. */
  fire(alert: EscalationAlert, context: EscalationContext): EscalationSend;
  /** Sends the alert ended now. Returns at once. */
  resolve(alert: EscalationAlert, context: EscalationContext): EscalationSend;
  /** Stops every retry, waits briefly for requests in flight, and sends nothing more. */
  close(): Promise<void>;
}

/** One fire or resolve of one alert identity, delivered to every endpoint. */
interface Delivery {
  /** Aborted, with the reason, when a newer send of the same labels or close() takes over: no retry starts after. */
  stop: AbortController;
  /** The request in flight per endpoint URL: a newer send waits for it, so each Alertmanager sees the sends in order. */
  inFlight: Map<string, Promise<void>>;
}

type EndpointOutcome = 'accepted' | 'refused' | 'expired' | 'superseded' | 'closed';

type Answer =
  | { accepted: true }
  | { accepted: false; retryable: boolean; problem: string; status?: number; retryAfterMs?: number };

const DEFAULTS = {
  requestTimeoutMs: 5000,
  backoff: { firstMs: 500, maxMs: 30_000 },
  closeTimeoutMs: 2000,
};
const ANSWER_LOGGED_MAX = 512;

export function createEscalator(options: EscalatorOptions): Escalator {
  if (!(Number.isFinite(options.ttlMs) && options.ttlMs > 0)) {
    throw new Error(`escalation ttl must be a positive duration, got ${options.ttlMs} ms`);
  }
  const endpoints = options.urls.map(endpointOf);
  const now = options.now ?? Date.now;
  const doFetch = options.fetch ?? globalThis.fetch;
  const requestTimeoutMs = options.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs;
  const backoff = options.backoff ?? DEFAULTS.backoff;
  const random = options.random ?? Math.random;
  const sleep = options.sleep ?? unrefSleep;
  const { logger, metric, store } = options;

  /** The newest delivery per alert identity (its sorted labels): last writer wins. */
  const latest = new Map<string, Delivery>();
  /** Everything still running, for close(). */
  const running = new Set<Promise<unknown>>();
  /** Aborts requests still in flight once close() has waited long enough. */
  const abandon = new AbortController();
  let closed = false;

  function track(promise: Promise<unknown>): void {
    running.add(promise);
    promise.finally(() => running.delete(promise)).catch(() => {});
  }

  function send(status: EscalationStatus, alert: EscalationAlert, context: EscalationContext): EscalationSend {
    const at = now();
    const ttlMs = status === 'firing' ? Math.max(options.ttlMs, context.lastsMs ?? 0) : options.ttlMs;
    const alertname = alert.labels.alertname;
    const about = { alertname, status, cooldownKey: context.cooldownKey, labels: alert.labels };
    track(audit(status, alert, context, at));
    if (closed) {
      logger.error({ ...about, annotations: alert.annotations }, 'escalation not sent: the escalator is closed');
      metric.inc({ alertname, result: 'failed' });
      return { result: Promise.resolve('failed') };
    }
    if (endpoints.length === 0) {
      logger.warn(
        { ...about, annotations: alert.annotations },
        `escalation ${status} (logged only: no --escalation-url is set)`,
      );
      metric.inc({ alertname, result: 'logged' });
      return { result: Promise.resolve('logged') };
    }

    const postable: Record<string, unknown> = {
      labels: alert.labels,
      annotations: alert.annotations,
      // As Prometheus resolves: endsAt = now; Alertmanager keeps the start it already has.
      ...(status === 'firing' ? { startsAt: new Date(at).toISOString() } : {}),
      endsAt: new Date(status === 'firing' ? at + ttlMs : at).toISOString(),
    };
    if (alert.annotations.workflow_url) postable.generatorURL = alert.annotations.workflow_url;
    const body = JSON.stringify([postable]);

    const identity = identityOf(alert.labels);
    const previous = latest.get(identity);
    previous?.stop.abort('superseded');
    const delivery: Delivery = { stop: new AbortController(), inFlight: new Map() };
    latest.set(identity, delivery);
    const deadline = at + ttlMs;

    let counted = false;
    const accepted = () => {
      if (counted) return;
      counted = true;
      metric.inc({ alertname, result: 'sent' });
    };
    const outcomes = endpoints.map((endpoint) =>
      deliver(endpoint, body, delivery, previous, deadline, about).then((outcome) => {
        if (outcome === 'accepted') accepted();
        return outcome;
      }),
    );
    const result = Promise.all(outcomes)
      .then((ends): EscalationResult => {
        const byEndpoint = Object.fromEntries(endpoints.map((endpoint, i) => [endpoint.name, ends[i]]));
        if (counted) {
          logger.info({ ...about, endpoints: byEndpoint }, `escalation ${status} sent`);
          return 'sent';
        }
        metric.inc({ alertname, result: 'failed' });
        const log = { ...about, annotations: alert.annotations, endpoints: byEndpoint };
        if (ends.every((end) => end === 'superseded')) {
          // The newer send of the same alert carries the current state, and counts its own result.
          logger.warn(
            log,
            `escalation ${status} superseded by a newer send of the same alert before any Alertmanager accepted it`,
          );
        } else {
          logger.error(log, `escalation ${status} not delivered to any Alertmanager`);
        }
        return 'failed';
      })
      // Callers need not await the result: it must never reject.
      .catch((err: unknown): EscalationResult => {
        logger.error({ ...about, err }, `escalation ${status} could not be sent`);
        if (!counted) metric.inc({ alertname, result: 'failed' });
        return counted ? 'sent' : 'failed';
      })
      .finally(() => {
        if (latest.get(identity) === delivery) latest.delete(identity);
      });
    track(result);
    return { result };
  }

  /** Posts to one endpoint until it is accepted, refused, superseded, closed or past the deadline. */
  async function deliver(
    endpoint: Endpoint,
    body: string,
    delivery: Delivery,
    previous: Delivery | undefined,
    deadline: number,
    about: object,
  ): Promise<EndpointOutcome> {
    // An older send's request to this Alertmanager lands first, so it can never undo this one. Held
    // as ours meanwhile: a send newer still waits for it too.
    const older = previous?.inFlight.get(endpoint.url);
    if (older !== undefined) {
      delivery.inFlight.set(endpoint.url, older);
      await older;
    }
    for (let attempt = 1; ; attempt++) {
      if (delivery.stop.signal.aborted) return delivery.stop.signal.reason === 'closed' ? 'closed' : 'superseded';
      const request = post(endpoint, body);
      const settled = request.then(() => {});
      delivery.inFlight.set(endpoint.url, settled);
      const answer = await request;
      delivery.inFlight.delete(endpoint.url);
      if (answer.accepted) return 'accepted';
      if (abandon.signal.aborted) return 'closed';
      const log = { ...about, alertmanager: endpoint.name, attempt, status: answer.status, answer: answer.problem };
      if (!answer.retryable) {
        logger.error(log, 'Alertmanager refused the escalation; not retried');
        return 'refused';
      }
      const base = Math.min(backoff.maxMs, backoff.firstMs * 2 ** (attempt - 1));
      const delay = Math.max(base / 2 + (random() * base) / 2, answer.retryAfterMs ?? 0);
      if (now() + delay >= deadline) {
        logger.error(log, 'could not send the escalation within its ttl; giving up');
        return 'expired';
      }
      if (attempt === 1) {
        logger.warn(
          { ...log, until: new Date(deadline).toISOString() },
          'could not send the escalation; retrying with backoff',
        );
      }
      await sleep(delay, delivery.stop.signal);
    }
  }

  async function post(endpoint: Endpoint, body: string): Promise<Answer> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (endpoint.authorization) headers.authorization = endpoint.authorization;
    try {
      const signal = AbortSignal.any([AbortSignal.timeout(requestTimeoutMs), abandon.signal]);
      const response = await doFetch(endpoint.url, { method: 'POST', headers, body, signal });
      const text = await response.text();
      if (response.ok) return { accepted: true };
      const status = response.status;
      const retryAfterMs = retryAfterOf(response.headers.get('retry-after'));
      return {
        accepted: false,
        // As Alertmanager's own notifiers: 5xx and 429 may pass, any other 4xx will not.
        retryable: status >= 500 || status === 429,
        problem: clip(answerText(text) || response.statusText || `HTTP ${status}`, ANSWER_LOGGED_MAX),
        status,
        ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
      };
    } catch (err) {
      return { accepted: false, retryable: true, problem: describeFetchError(err, requestTimeoutMs) };
    }
  }

  async function audit(
    status: EscalationStatus,
    alert: EscalationAlert,
    context: EscalationContext,
    at: number,
  ): Promise<void> {
    const entry: EscalationEntry = {
      kind: 'escalation',
      alertname: alert.labels.alertname,
      status,
      cooldownKey: context.cooldownKey,
      ...(context.workflow ? { workflow: context.workflow } : {}),
      labels: { ...alert.labels },
      at: new Date(at).toISOString(),
      replica: options.replica,
    };
    try {
      await store.appendDecision(entry, options.auditMaxLen);
    } catch (err) {
      logger.error(
        { err, alertname: entry.alertname, status, cooldownKey: entry.cooldownKey },
        'could not record the escalation in the audit trail',
      );
    }
  }

  return {
    fire: (alert, context) => send('firing', alert, context),
    resolve: (alert, context) => send('resolved', alert, context),
    async close() {
      if (closed) return;
      closed = true;
      for (const delivery of latest.values()) delivery.stop.abort('closed');
      const done = Promise.allSettled([...running]);
      let timer: NodeJS.Timeout | undefined;
      const waited = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, options.closeTimeoutMs ?? DEFAULTS.closeTimeoutMs);
      });
      await Promise.race([done, waited]);
      clearTimeout(timer);
      abandon.abort();
    },
  };
}
