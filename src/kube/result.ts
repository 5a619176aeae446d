import type { Workflow } from './workflow.js';

/**
 * Why a Kubernetes API call failed, reduced to what callers decide on: the HTTP status when the
 * API server answered, and whether trying again can help (as Alertmanager's notifiers return
 * `(retry bool, err)`): 5xx, 429, timeouts and broken connections can, other 4xx cannot.
 */
export interface KubeFailure {
  /** The HTTP status; absent when no answer came (`cause` says why). */
  status?: number;
  /** Without a status: the call timed out, or the connection failed. */
  cause?: 'timeout' | 'connection';
  retryable: boolean;
  /** One line for logs and decisions, built from the Status body: `500 InternalError etcd timeout`. */
  reason: string;
  /** How long the API server asked us to wait (429, 503). */
  retryAfterSeconds?: number;
  /** The system error code of a failed connection (ECONNREFUSED, ECONNRESET, …). */
  code?: string;
}

/** What became of one Workflow create. */
export type SubmitResult =
  | { kind: 'created'; status: 201; retryable: false }
  /** 409 AlreadyExists: a retry of a create that landed; counts as submitted. */
  | { kind: 'exists'; status: 409; retryable: false }
  /** Nothing was sent (dry-run, explain); `manifest` when the submitter keeps what it was given. */
  | { kind: 'not_sent'; retryable: false; manifest?: Workflow }
  /**
   * `mayHaveLanded`: the create was sent and no answer says what became of it (a timeout, a reset
   * connection, a gateway's 502/504): the Workflow may exist. Otherwise it certainly does not.
   */
  | ({ kind: 'failed'; mayHaveLanded: boolean } & KubeFailure);

export const CREATED: SubmitResult = { kind: 'created', status: 201, retryable: false };
export const EXISTS: SubmitResult = { kind: 'exists', status: 409, retryable: false };

interface KubeStatusBody {
  reason?: string;
  message?: string;
}

/** The body as the API server sent it: a string is parsed as JSON; undefined when it is not JSON. */
function asJson(body: unknown): unknown {
  if (typeof body !== 'string') return body;
  try {
    return JSON.parse(body);
  } catch {
    return undefined;
  }
}

function parseStatusBody(body: unknown): KubeStatusBody {
  const json = asJson(body);
  if (json === undefined && typeof body === 'string') return { message: body.split('\n')[0]?.slice(0, 300) };
  if (json && typeof json === 'object') {
    const { reason, message } = json as Record<string, unknown>;
    return {
      reason: typeof reason === 'string' ? reason : undefined,
      message: typeof message === 'string' ? message : undefined,
    };
  }
  return {};
}

const TRANSIENT_NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ENOTFOUND',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
]);

function networkCode(err: unknown): string | undefined {
  for (let cur: unknown = err, depth = 0; cur && typeof cur === 'object' && depth < 5; depth++) {
    const { code, errno, cause } = cur as { code?: unknown; errno?: unknown; cause?: unknown };
    if (typeof code === 'string') return code;
    if (typeof errno === 'string') return errno;
    cur = cause;
  }
  return undefined;
}

/**
 * A 409 whose Status says that this very object is already there: the retry of a create that
 * landed. A 409 from a proxy (an HTML page), a `Conflict`, or an AlreadyExists about another name
 * is not: nothing says our Workflow exists.
 */
export function isAlreadyExists(err: unknown, name: string): boolean {
  if ((err as { code?: unknown })?.code !== 409) return false;
  const body = statusObject((err as { body?: unknown }).body);
  if (body?.kind !== 'Status' || body.reason !== 'AlreadyExists') return false;
  const details = body.details as { name?: unknown } | undefined;
  return details?.name === name;
}

function statusObject(body: unknown): Record<string, unknown> | undefined {
  const json = asJson(body);
  return json && typeof json === 'object' && !Array.isArray(json) ? (json as Record<string, unknown>) : undefined;
}

/** Connection failures that happen before a request is on the wire: the API server never saw it. */
const NOT_SENT_CODES = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ENOTFOUND',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/**
 * Whether a create that failed this way may still have been stored. Only an answer the API server
 * (or a proxy before it) gave itself says no: a refused connection, or a status other than 502
 * and 504, the gateway errors that mean the request went on and its answer was lost.
 * A timeout is decided by the caller, who knows whether the request had been sent.
 */
export function mayHaveLanded(failure: KubeFailure): boolean {
  if (failure.status !== undefined) return failure.status === 502 || failure.status === 504;
  if (failure.cause === 'connection') return !(failure.code && NOT_SENT_CODES.has(failure.code));
  return true;
}

/**
 * Sorts an error from a Kubernetes API call (src/kube/http.ts, or client-node's ApiException) into
 * retryable (5xx, 429, timeouts, refused connections) or not (other 4xx). The reason is one line
 * built from the Status body, never a raw multi-line message.
 */
export function classifyKubeError(err: unknown): KubeFailure {
  const status = (err as { code?: unknown })?.code;
  if (typeof status === 'number') {
    const { reason, message } = parseStatusBody((err as { body?: unknown }).body);
    const text = [String(status), reason, message].filter(Boolean).join(' ');
    if (status === 429 || status >= 500) {
      const headers = (err as { headers?: Record<string, string> }).headers ?? {};
      const retryAfter = Number.parseInt(headers['retry-after'] ?? headers['Retry-After'] ?? '', 10);
      return {
        status,
        retryable: true,
        reason: text,
        ...(Number.isFinite(retryAfter) && retryAfter > 0 ? { retryAfterSeconds: retryAfter } : {}),
      };
    }
    return { status, retryable: false, reason: text };
  }
  const name = (err as { name?: unknown })?.name;
  if (name === 'AbortError' || name === 'TimeoutError') return { cause: 'timeout', retryable: true, reason: 'timeout' };
  const code = networkCode(err);
  if (code && (TRANSIENT_NETWORK_CODES.has(code) || code.startsWith('UND_ERR'))) {
    return { cause: 'connection', retryable: true, reason: `connection: ${code}`, code };
  }
  const message = err instanceof Error ? err.message : String(err);
  // Unknown failures (e.g. a FetchError without a code) are most likely network trouble: retry.
  return { cause: 'connection', retryable: true, reason: message.split('\n')[0]?.slice(0, 300) ?? 'unknown error' };
}
