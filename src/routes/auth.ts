import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { atMostEvery } from '../throttle.js';
import { sendError } from './errors.js';

export interface Credentials {
  token?: string | undefined;
  /** `user:password` */
  basic?: string | undefined;
}

/** Where refusals are reported: a log line (rate-limited) and a counter by route. */
export interface RefusalReporting {
  logger: { warn(obj: object, msg: string): void };
  unauthorized: { inc(labels: { route: string }): void };
  now: () => number;
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/**
 * `Authorization: <scheme> <credentials>` with the scheme in lower case: RFC 7235 makes the scheme
 * case-insensitive and separates it from the credentials by one or more spaces. The credentials
 * themselves (a token, base64) are compared as given.
 */
function normalized(header: string): string {
  const match = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) +(.*)$/.exec(header.trim());
  return match ? `${match[1]!.toLowerCase()} ${match[2]}` : header;
}

/**
 * Whether an Authorization header carries one of the configured credentials, compared in constant
 * time: hashing first makes the lengths equal, and every accepted credential is compared, so the
 * time says nothing about which one or how much of it matched. Null when none are configured.
 */
export function credentialCheck(credentials: Credentials): ((authorization: string | undefined) => boolean) | null {
  const accepted: Buffer[] = [];
  if (credentials.token) accepted.push(digest(`bearer ${credentials.token}`));
  if (credentials.basic) accepted.push(digest(`basic ${Buffer.from(credentials.basic).toString('base64')}`));
  if (accepted.length === 0) return null;
  return (authorization) => {
    const given = digest(normalized(authorization ?? ''));
    let ok = false;
    for (const expected of accepted) ok = timingSafeEqual(given, expected) || ok;
    return ok;
  };
}

/** A wrong token on the sending side must be visible here, but one line per refusal would flood the log. */
const REFUSAL_LOG_INTERVAL_MS = 10_000;

/** What is said about a refused request: never the credential, at most the scheme it used. */
function refusalFields(request: FastifyRequest): Record<string, unknown> {
  const header = request.headers.authorization;
  const scheme = header?.trim().split(' ')[0] ?? '';
  return {
    route: request.routeOptions.url ?? request.url.split('?')[0],
    method: request.method,
    remoteAddress: request.ip,
    problem: header ? 'wrong credentials' : 'missing Authorization header',
    ...(header && /^[A-Za-z][A-Za-z0-9-]{0,19}$/.test(scheme) ? { scheme } : {}),
    ...(request.headers['user-agent'] ? { userAgent: request.headers['user-agent'].slice(0, 100) } : {}),
  };
}

/** How a scope answers a refused request, when not with the API's JSON error. */
export interface RefusalOptions {
  /**
   * A browser's page: basic auth is offered first (a browser asks for a user and password only
   * when Basic is the challenge), the bearer token after it.
   */
  forBrowsers?: boolean;
  /**
   * A request without any Authorization header is refused without a count or a log line: a
   * browser opening the page asks that way first, every time. Wrong credentials still count.
   */
  quietWhenAnonymous?: boolean;
  /** Sends the refusal (the status and WWW-Authenticate are set already); the JSON error otherwise. */
  send?: (request: FastifyRequest, reply: FastifyReply) => FastifyReply;
}

/**
 * Every route of `scope` asks for the bearer token and/or basic auth. Without credentials
 * configured, the scope is open. A refusal is counted by route and logged, at most one line per
 * 10 s with the number of refusals left out since the last one.
 */
export function requireCredentials(
  scope: FastifyInstance,
  credentials: Credentials,
  report: RefusalReporting,
  options: RefusalOptions = {},
): void {
  const check = credentialCheck(credentials);
  if (!check) return;
  const schemes = [credentials.token ? 'Bearer <token>' : null, credentials.basic ? 'Basic <user:password>' : null]
    .filter(Boolean)
    .join(' or ');
  const bearer = credentials.token ? 'Bearer realm="kube-sentinel"' : null;
  const basic = credentials.basic ? 'Basic realm="kube-sentinel"' : null;
  const challenge = (options.forBrowsers ? [basic, bearer] : [bearer ?? basic]).filter(Boolean).join(', ');
  const logDue = atMostEvery(REFUSAL_LOG_INTERVAL_MS, report.now);
  scope.addHook('onRequest', async (request, reply) => {
    if (check(request.headers.authorization)) return;
    if (!(options.quietWhenAnonymous && request.headers.authorization === undefined)) {
      const fields = refusalFields(request);
      report.unauthorized.inc({ route: String(fields.route) });
      const suppressed = logDue();
      if (suppressed !== undefined) {
        report.logger.warn(
          { ...fields, suppressedSinceLastLog: suppressed },
          'request refused with 401: missing or wrong credentials',
        );
      }
    }
    reply.header('WWW-Authenticate', challenge);
    if (options.send) return options.send(request, reply);
    return sendError(
      reply,
      'unauthorized',
      request.headers.authorization ? 'wrong credentials' : `missing Authorization: ${schemes}`,
    );
  });
}
