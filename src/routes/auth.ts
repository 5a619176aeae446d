import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';

/** Probes, scrapers and the API document are open: they send no credentials. */
const OPEN_ROUTES = new Set(['/healthz', '/readyz', '/metrics', '/openapi.yaml']);

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** Bearer token check, compared in constant time (hashing first makes the lengths equal). */
export function registerAuth(app: FastifyInstance, token: string | undefined): void {
  if (!token) return;
  const expected = digest(`Bearer ${token}`);
  app.addHook('onRequest', async (request, reply) => {
    const path = request.url.split('?')[0] ?? '';
    if (OPEN_ROUTES.has(path)) return;
    const given = request.headers.authorization ?? '';
    if (!timingSafeEqual(digest(given), expected)) {
      return reply
        .code(401)
        .header('WWW-Authenticate', 'Bearer realm="kube-sentinel"')
        .send({ error: 'unauthorized', message: given ? 'wrong credentials' : 'missing Authorization: Bearer <token>' });
    }
  });
}
