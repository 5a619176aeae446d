import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';

/** Probes, scrapers and the API document are open: they send no credentials. */
const OPEN_ROUTES = new Set(['/healthz', '/readyz', '/metrics', '/openapi.yaml']);

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/**
 * Bearer token and/or basic auth, compared in constant time: hashing first makes the lengths
 * equal, and every accepted credential is compared, so the time says nothing about which one or
 * how much of it matched.
 */
export function registerAuth(app: FastifyInstance, credentials: { token?: string | undefined; basic?: string | undefined }): void {
  const accepted: Buffer[] = [];
  if (credentials.token) accepted.push(digest(`Bearer ${credentials.token}`));
  if (credentials.basic) accepted.push(digest(`Basic ${Buffer.from(credentials.basic).toString('base64')}`));
  if (accepted.length === 0) return;
  const schemes = [credentials.token ? 'Bearer <token>' : null, credentials.basic ? 'Basic <user:password>' : null].filter(Boolean).join(' or ');
  const challenge = credentials.token ? 'Bearer realm="kube-sentinel"' : 'Basic realm="kube-sentinel"';
  app.addHook('onRequest', async (request, reply) => {
    const path = request.url.split('?')[0] ?? '';
    if (OPEN_ROUTES.has(path)) return;
    const given = digest(request.headers.authorization ?? '');
    let ok = false;
    for (const expected of accepted) ok = timingSafeEqual(given, expected) || ok;
    if (!ok) {
      return reply
        .code(401)
        .header('WWW-Authenticate', challenge)
        .send({ error: 'unauthorized', message: request.headers.authorization ? 'wrong credentials' : `missing Authorization: ${schemes}` });
    }
  });
}
