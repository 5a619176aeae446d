import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { sendError } from './errors.js';

export interface Credentials {
  token?: string | undefined;
  /** `user:password` */
  basic?: string | undefined;
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/**
 * Every route of `scope` asks for the bearer token and/or basic auth, compared in constant time:
 * hashing first makes the lengths equal, and every accepted credential is compared, so the time
 * says nothing about which one or how much of it matched. Without credentials configured, the
 * scope is open.
 */
export function requireCredentials(scope: FastifyInstance, credentials: Credentials): void {
  const accepted: Buffer[] = [];
  if (credentials.token) accepted.push(digest(`Bearer ${credentials.token}`));
  if (credentials.basic) accepted.push(digest(`Basic ${Buffer.from(credentials.basic).toString('base64')}`));
  if (accepted.length === 0) return;
  const schemes = [credentials.token ? 'Bearer <token>' : null, credentials.basic ? 'Basic <user:password>' : null]
    .filter(Boolean)
    .join(' or ');
  const challenge = credentials.token ? 'Bearer realm="kube-sentinel"' : 'Basic realm="kube-sentinel"';
  scope.addHook('onRequest', async (request, reply) => {
    const given = digest(request.headers.authorization ?? '');
    let ok = false;
    for (const expected of accepted) ok = timingSafeEqual(given, expected) || ok;
    if (!ok) {
      reply.header('WWW-Authenticate', challenge);
      return sendError(
        reply,
        'unauthorized',
        request.headers.authorization ? 'wrong credentials' : `missing Authorization: ${schemes}`,
      );
    }
  });
}
