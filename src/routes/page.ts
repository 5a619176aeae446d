/**
 * GET /: the page (SPEC §12), one HTML document built with the receiver (scripts/build-page.mjs),
 * its script and style inline. It is read once at start and compressed once; each answer is the
 * same bytes, so a browser revalidates it by ETag.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Type } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ErrorBody, sendError } from './errors.js';
import type { App } from './typebox.js';

export interface PageDocument {
  html: Buffer;
  gzip: Buffer;
  brotli: Buffer;
  /** Of the document; each encoding's bytes get their own tag (`-br`, `-gzip`), as RFC 9110 asks. */
  etag: string;
  /** Allows the two inline blocks by hash, requests to this origin, and nothing else. */
  policy: string;
}

/** The text of the document's first `<tag>…</tag>` block. */
function block(html: string, tag: 'script' | 'style'): string {
  const start = html.indexOf(`<${tag}>`);
  const end = html.indexOf(`</${tag}>`, start);
  if (start < 0 || end < 0) throw new Error(`the page has no <${tag}> block`);
  return html.slice(start + tag.length + 2, end);
}

function hashOf(text: string): string {
  return `'sha256-${createHash('sha256').update(text).digest('base64')}'`;
}

/** The built page, ready to serve; an Error naming the fix when it is missing or malformed. */
export function loadPage(path: string): PageDocument | Error {
  let html: Buffer;
  try {
    html = readFileSync(path);
  } catch (err) {
    return new Error(
      `the page is not built (${(err as NodeJS.ErrnoException).code ?? 'unreadable'}: ${path}): run npm run build`,
    );
  }
  const text = html.toString('utf8');
  try {
    const policy = [
      "default-src 'none'",
      `script-src ${hashOf(block(text, 'script'))}`,
      `style-src ${hashOf(block(text, 'style'))}`,
      "connect-src 'self'",
      'img-src data:',
      "base-uri 'none'",
      "form-action 'none'",
      "frame-ancestors 'none'",
    ].join('; ');
    return {
      html,
      // The build compresses them (scripts/build-page.mjs); compressing here instead would add tens
      // of milliseconds to every start.
      gzip: readFileSync(`${path}.gz`),
      brotli: readFileSync(`${path}.br`),
      etag: createHash('sha256').update(html).digest('base64url').slice(0, 27),
      policy,
    };
  } catch (err) {
    return new Error(`${path}: ${(err as Error).message}: run npm run build`);
  }
}

/** br, then gzip, when the client takes it (a `;q=0` refuses); identity otherwise. */
function encodingFor(acceptEncoding: string | undefined): 'br' | 'gzip' | undefined {
  const offered = new Map(
    (acceptEncoding ?? '').split(',').map((part) => {
      const [name = '', ...parameters] = part.trim().toLowerCase().split(';');
      const q = parameters.map((p) => /^\s*q=([0-9.]+)\s*$/.exec(p)?.[1]).find((value) => value !== undefined);
      return [name.trim(), q === undefined ? 1 : Number(q)] as const;
    }),
  );
  if ((offered.get('br') ?? 0) > 0) return 'br';
  if ((offered.get('gzip') ?? 0) > 0) return 'gzip';
  return undefined;
}

/**
 * Sends the page with `status`: 200 to a reader with credentials, 401 to one without (then the
 * page holds nothing but its sign-in form, and is never cached).
 */
export function sendPage(
  request: FastifyRequest,
  reply: FastifyReply,
  page: PageDocument,
  status: 200 | 401,
): FastifyReply {
  reply
    .code(status)
    .header('Content-Type', 'text/html; charset=utf-8')
    .header('Content-Security-Policy', page.policy)
    .header('X-Content-Type-Options', 'nosniff')
    .header('X-Frame-Options', 'DENY')
    .header('Referrer-Policy', 'no-referrer')
    .header('Vary', 'Accept-Encoding, Authorization');
  const encoding = encodingFor(request.headers['accept-encoding']);
  if (status === 401) {
    reply.header('Cache-Control', 'no-store');
  } else {
    const etag = `"${page.etag}${encoding ? `-${encoding}` : ''}"`;
    reply.header('Cache-Control', 'no-cache').header('ETag', etag);
    const tags = request.headers['if-none-match'];
    if (tags?.split(',').some((tag) => ['*', etag].includes(tag.trim().replace(/^W\//, '')))) {
      return reply.code(304).send();
    }
  }
  if (encoding) reply.header('Content-Encoding', encoding);
  return reply.send(encoding === 'br' ? page.brotli : encoding === 'gzip' ? page.gzip : page.html);
}

/** GET / (and HEAD /): the page, or a 503 naming the fix when this receiver was run without it. */
export function pageRoutes(app: App, page: PageDocument | Error): void {
  const Html = Type.String();
  const schema = { response: { 200: Html, 401: Html, 503: ErrorBody } };
  app.get('/', { schema }, async (request, reply) => {
    if (page instanceof Error) return sendError(reply, 'page_not_built', page.message);
    return sendPage(request, reply, page, 200);
  });
}
