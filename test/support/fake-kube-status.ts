/**
 * How the fake Kubernetes API answers errors, as the API server does: a `Status` body with its
 * reason, message and details, and the injected failures tests ask for.
 */

/** The identity the receiver runs as in the chart; it appears in Forbidden messages. */
export const SERVICE_ACCOUNT_USER = 'system:serviceaccount:kube-sentinel:kube-sentinel';

export type StatusReason =
  | 'BadRequest'
  | 'Unauthorized'
  | 'Forbidden'
  | 'NotFound'
  | 'MethodNotAllowed'
  | 'AlreadyExists'
  | 'Conflict'
  | 'Gone'
  | 'Expired'
  | 'RequestEntityTooLarge'
  | 'UnsupportedMediaType'
  | 'Invalid'
  | 'TooManyRequests'
  | 'InternalError'
  | 'ServiceUnavailable'
  | 'Timeout';

export interface StatusCause {
  reason: string;
  message: string;
  field: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

/** The body of every error answer, as the API server sends it. */
export interface Status {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure';
  message: string;
  reason: StatusReason;
  details: StatusDetails;
  code: number;
}

export interface InjectedFailure {
  status: number;
  /** Defaults from the status: 429 TooManyRequests, 500 InternalError, 503 ServiceUnavailable, … */
  reason?: StatusReason;
  message?: string;
  /** Sent as the Retry-After header and as details.retryAfterSeconds. */
  retryAfterSeconds?: number;
  /** Answered as text/html instead of a Status, as a proxy in front of the API server does. */
  html?: string;
}

const DEFAULT_REASON: Record<number, StatusReason> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  409: 'AlreadyExists',
  413: 'RequestEntityTooLarge',
  415: 'UnsupportedMediaType',
  422: 'Invalid',
  429: 'TooManyRequests',
  500: 'InternalError',
  503: 'ServiceUnavailable',
  504: 'Timeout',
};

export function defaultReason(code: number): StatusReason {
  return DEFAULT_REASON[code] ?? (code >= 500 ? 'InternalError' : 'BadRequest');
}

export function status(
  code: number,
  message: string,
  details: StatusDetails = {},
  reason = defaultReason(code),
): Status {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, details, code };
}

export const DEFAULT_MESSAGE: Partial<Record<StatusReason, string>> = {
  TooManyRequests: 'Too many requests, please try again later.',
  InternalError: 'Internal error occurred: injected by the fake Kubernetes API',
  ServiceUnavailable: 'the server is currently unable to handle the request',
  Timeout: 'Timeout: request did not complete within requested timeout - context deadline exceeded',
  Conflict:
    'Operation cannot be fulfilled: the object has been modified; please apply your changes to the latest version and try again',
};

/** What a route answers: a JSON body (a Status for errors), or an HTML page as a proxy sends. */
export type Answer = { code: number; body: unknown; headers?: Record<string, string>; html?: string };

export const json = (code: number, body: unknown): Answer => ({ code, body });

export function statusAnswer(body: Status): Answer {
  const headers: Record<string, string> = {};
  if (body.details.retryAfterSeconds !== undefined) headers['Retry-After'] = String(body.details.retryAfterSeconds);
  return { code: body.code, body, headers };
}
