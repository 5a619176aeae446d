import type { FastifyError, FastifyInstance } from 'fastify';

/** The JSON error body of every non-2xx answer: a code, a one-line message, and the field when one is to blame. */
export interface HttpError {
  error: string;
  message: string;
  field?: string;
}

/** Maps fastify's errors to clear 4xx answers; anything else is a 500 that is logged, never a crash. */
export function registerErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (err.validation) {
      const first = err.validation[0];
      const path = first?.instancePath ?? '';
      const missing = (first?.params as { missingProperty?: string } | undefined)?.missingProperty;
      const field = `${err.validationContext ?? 'body'}${path.replaceAll('/', '.')}${missing ? `.${missing}` : ''}`;
      const body: HttpError = { error: 'invalid_request', message: `${field} ${first?.message ?? 'is invalid'}`, field };
      return reply.code(400).send(body);
    }
    switch (err.code) {
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return reply.code(413).send({ error: 'body_too_large', message: err.message } satisfies HttpError);
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return reply.code(415).send({ error: 'unsupported_media_type', message: 'send Content-Type: application/json' } satisfies HttpError);
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      case 'FST_ERR_CTP_INVALID_JSON_BODY':
      case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
        return reply.code(400).send({ error: 'invalid_json', message: err.message, field: 'body' } satisfies HttpError);
    }
    const status = err.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      // JSON.parse's own errors (bad syntax, too deeply nested) arrive here with a 400 status.
      return reply.code(status).send({ error: 'bad_request', message: err.message.split('\n')[0] ?? 'bad request' } satisfies HttpError);
    }
    request.log.error({ err }, 'unexpected error');
    return reply.code(500).send({ error: 'internal', message: 'internal error' } satisfies HttpError);
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ error: 'not_found', message: `no route ${request.method} ${request.url.split('?')[0]}` } satisfies HttpError),
  );
}
