import { type Static, Type } from '@sinclair/typebox';
import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';

/** Every HTTP error the receiver answers, by code, with its status. */
export const HTTP_ERRORS = {
  /** A field of the body or query string is wrong; `field` names it. */
  invalid_request: 400,
  /** The body is not JSON. */
  invalid_json: 400,
  bad_request: 400,
  unauthorized: 401,
  not_found: 404,
  /** Doing it would go past a limit (MAX_PAUSES pauses in force). */
  limit_reached: 409,
  body_too_large: 413,
  unsupported_media_type: 415,
  internal: 500,
  /** The store holding what was asked for did not answer; try again. */
  store_unavailable: 503,
  /** The page was not built with this receiver (`npm run build` builds it). */
  page_not_built: 503,
  /** Too many alerts in flight (--max-alerts-in-flight): nothing was done; try again after Retry-After. */
  overloaded: 503,
} as const;

export type HttpErrorCode = keyof typeof HTTP_ERRORS;

/** The JSON body of every error answer: a code, a one-line message, and the field when one is to blame. */
export const ErrorBody = Type.Object({
  error: Type.Union(Object.keys(HTTP_ERRORS).map((code) => Type.Literal(code as HttpErrorCode))),
  message: Type.String(),
  field: Type.Optional(Type.String()),
});
export type ErrorBody = Static<typeof ErrorBody>;

export function sendError(reply: FastifyReply, error: HttpErrorCode, message: string, field?: string): FastifyReply {
  const body: ErrorBody = field === undefined ? { error, message } : { error, message, field };
  return reply.code(HTTP_ERRORS[error]).send(body);
}

/** When a client may ask again after the store did not answer. */
const STORE_RETRY_AFTER_SECONDS = 5;

/** 503 store_unavailable with Retry-After: the store holding what was asked for did not answer. */
export function sendStoreUnavailable(reply: FastifyReply, err: unknown): FastifyReply {
  reply.header('Retry-After', String(STORE_RETRY_AFTER_SECONDS));
  return sendError(reply, 'store_unavailable', (err as Error).message);
}

/** Bounds what is echoed of a client's header. */
const ECHOED_HEADER_MAX = 100;

/**
 * The 415 message names the fix. `curl -d` sends application/x-www-form-urlencoded unless told
 * otherwise, the usual way to get here.
 */
export function unsupportedMediaType(contentType: string | undefined): string {
  const given =
    contentType === undefined
      ? 'a body without Content-Type'
      : `Content-Type ${contentType.slice(0, ECHOED_HEADER_MAX)}`;
  return `${given} is not accepted: send Content-Type: application/json (with curl: -H 'content-type: application/json')`;
}

/** Maps fastify's errors to clear 4xx answers; anything else is a 500 that is logged, never a crash. */
export function registerErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (err.validation) {
      const first = err.validation[0];
      const path = first?.instancePath ?? '';
      const missing = (first?.params as { missingProperty?: string } | undefined)?.missingProperty;
      const field = `${err.validationContext ?? 'body'}${path.replaceAll('/', '.')}${missing ? `.${missing}` : ''}`;
      return sendError(reply, 'invalid_request', `${field} ${first?.message ?? 'is invalid'}`, field);
    }
    switch (err.code) {
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return sendError(reply, 'body_too_large', err.message);
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return sendError(reply, 'unsupported_media_type', unsupportedMediaType(request.headers['content-type']));
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      case 'FST_ERR_CTP_INVALID_JSON_BODY':
      case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
        return sendError(reply, 'invalid_json', err.message, 'body');
    }
    const status = err.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      // JSON.parse's own errors (bad syntax, too deeply nested) arrive here with a 400 status.
      return reply
        .code(status)
        .send({ error: 'bad_request', message: err.message.split('\n')[0] ?? 'bad request' } satisfies ErrorBody);
    }
    request.log.error({ err }, 'unexpected error');
    return sendError(reply, 'internal', 'internal error');
  });
  app.setNotFoundHandler((request, reply) =>
    sendError(reply, 'not_found', `no route ${request.method} ${request.url.split('?')[0]}`),
  );
}
