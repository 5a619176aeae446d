/**
 * GET /: the page, behind the API's credentials (SPEC §12). Built here from src/page with the
 * build's own script, so that these tests need no `npm run build`.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { buildPage } from '../../scripts/build-page.mjs';
import { testApp } from '../support/app.js';

const basic = (credentials: string) => `Basic ${Buffer.from(credentials).toString('base64')}`;
let pagePath = '';
let html = '';

before(async () => {
  pagePath = join(mkdtempSync(join(tmpdir(), 'ks-page-')), 'page.html');
  html = await buildPage(pagePath);
});

/** The sha256 source expression of the document's inline `<tag>` block, as a CSP names it. */
function inlineHash(tag: 'script' | 'style'): string {
  const text = html.slice(html.indexOf(`<${tag}>`) + tag.length + 2, html.indexOf(`</${tag}>`));
  return `'sha256-${createHash('sha256').update(text).digest('base64')}'`;
}

describe('GET /', () => {
  describe('with credentials configured', () => {
    it('answers the page to the bearer token and to basic auth alike', async () => {
      const { app } = await testApp({ config: { authToken: 't0ken', basicAuth: 'sre:pw' }, pagePath });
      for (const authorization of ['Bearer t0ken', basic('sre:pw')]) {
        const res = await app.inject({ url: '/', headers: { authorization } });
        assert.equal(res.statusCode, 200, authorization);
        assert.equal(res.headers['content-type'], 'text/html; charset=utf-8');
        assert.equal(res.body, html);
      }
    });

    it('answers 401 without credentials: the sign-in form, never cached, basic auth offered first to a browser', async () => {
      const { app } = await testApp({ config: { authToken: 't0ken', basicAuth: 'sre:pw' }, pagePath });
      for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: basic('sre:wrong') }]) {
        const res = await app.inject({ url: '/', headers });
        assert.equal(res.statusCode, 401);
        assert.equal(res.headers['www-authenticate'], 'Basic realm="kube-sentinel", Bearer realm="kube-sentinel"');
        assert.equal(res.headers['cache-control'], 'no-store');
        assert.equal(res.headers.etag, undefined);
        assert.match(res.body, /<form id="sign-in"/);
      }
    });

    it('keeps the API answering 401 with its JSON error and one challenge, the bearer token', async () => {
      const { app } = await testApp({ config: { authToken: 't0ken', basicAuth: 'sre:pw' }, pagePath });
      for (const url of ['/v1/remediations', '/v1/rules', '/v1/pauses', '/v1/cooldowns', '/v1/decisions']) {
        const res = await app.inject({ url });
        assert.equal(res.statusCode, 401, url);
        assert.equal(res.headers['www-authenticate'], 'Bearer realm="kube-sentinel"', url);
        assert.equal(res.json().error, 'unauthorized', url);
      }
    });

    it('challenges with Bearer alone when only a token is configured: the page shows its token field', async () => {
      const { app } = await testApp({ config: { authToken: 't0ken' }, pagePath });
      const res = await app.inject({ url: '/' });
      assert.equal(res.statusCode, 401);
      assert.equal(res.headers['www-authenticate'], 'Bearer realm="kube-sentinel"');
      assert.match(res.body, /<label for="token">Bearer token<\/label>/);
    });
  });

  it('counts and logs a refusal of wrong credentials, not the browser that asks without any first', async () => {
    const { app, logs } = await testApp({ config: { authToken: 't0ken' }, pagePath });
    const refusals = async () => {
      const metrics = (await app.inject({ url: '/metrics' })).body;
      return Number(/kube_sentinel_http_unauthorized_total\{route="\/"\} (\d+)/.exec(metrics)?.[1] ?? 0);
    };
    assert.equal((await app.inject({ url: '/' })).statusCode, 401);
    assert.equal(await refusals(), 0);
    assert.equal(logs().filter((line) => String(line.msg).startsWith('request refused')).length, 0);
    assert.equal((await app.inject({ url: '/', headers: { authorization: 'Bearer wrong' } })).statusCode, 401);
    assert.equal(await refusals(), 1);
    assert.equal(logs().filter((line) => String(line.msg).startsWith('request refused')).length, 1);
  });

  it('is open when no credentials are configured, like the rest of the API', async () => {
    const { app } = await testApp({ pagePath });
    const res = await app.inject({ url: '/' });
    assert.equal(res.statusCode, 200);
    assert.equal(res.body, html);
  });

  it('allows its own inline script and style by hash, requests to its origin, and nothing else', async () => {
    const { app } = await testApp({ pagePath });
    const res = await app.inject({ url: '/' });
    const policy = String(res.headers['content-security-policy']).split('; ');
    assert.deepEqual(policy, [
      "default-src 'none'",
      `script-src ${inlineHash('script')}`,
      `style-src ${inlineHash('style')}`,
      "connect-src 'self'",
      'img-src data:',
      "base-uri 'none'",
      "form-action 'none'",
      "frame-ancestors 'none'",
    ]);
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.equal(res.headers['x-frame-options'], 'DENY');
    assert.equal(res.headers['referrer-policy'], 'no-referrer');
  });

  it('references nothing outside itself: no src or href leaves the document', () => {
    const references = [...html.matchAll(/\b(?:src|href)="([^"]*)"/g)].map((match) => match[1]);
    assert.ok(references.length > 0);
    for (const reference of references) assert.match(reference ?? '', /^(#|data:)/, reference);
    // The one URL in it is SVG's namespace, a name that is never fetched.
    const urls = [...html.matchAll(/https?:\/\/[^"'`\s)]*/g)].map((match) => match[0]);
    assert.deepEqual([...new Set(urls)], ['http://www.w3.org/2000/svg']);
  });

  it('is compressed with brotli or gzip as the browser accepts, the same document either way', async () => {
    const { app } = await testApp({ pagePath });
    const br = await app.inject({ url: '/', headers: { 'accept-encoding': 'gzip, deflate, br' } });
    assert.equal(br.headers['content-encoding'], 'br');
    assert.equal(brotliDecompressSync(br.rawPayload).toString(), html);
    assert.ok(br.rawPayload.length < html.length / 2, `${br.rawPayload.length} of ${html.length}`);
    const gzip = await app.inject({ url: '/', headers: { 'accept-encoding': 'gzip, br;q=0' } });
    assert.equal(gzip.headers['content-encoding'], 'gzip');
    assert.equal(gunzipSync(gzip.rawPayload).toString(), html);
    const plain = await app.inject({ url: '/', headers: { 'accept-encoding': 'identity' } });
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.equal(plain.body, html);
    assert.match(String(plain.headers.vary), /Accept-Encoding/);
  });

  it('answers 304 to a browser that holds the same page (If-None-Match), and revalidates each time', async () => {
    const { app } = await testApp({ pagePath });
    const first = await app.inject({ url: '/' });
    assert.equal(first.headers['cache-control'], 'no-cache');
    const etag = String(first.headers.etag);
    const again = await app.inject({ url: '/', headers: { 'if-none-match': etag } });
    assert.equal(again.statusCode, 304);
    assert.equal(again.body, '');
    const other = await app.inject({ url: '/', headers: { 'if-none-match': '"another"' } });
    assert.equal(other.statusCode, 200);
    assert.equal((await app.inject({ url: '/', headers: { 'if-none-match': '*' } })).statusCode, 304);
  });

  it('tags each encoding of the page apart (RFC 9110): a cached gzip body is not taken for brotli', async () => {
    const { app } = await testApp({ pagePath });
    const tagOf = async (encoding: string) =>
      String((await app.inject({ url: '/', headers: { 'accept-encoding': encoding } })).headers.etag);
    const tags = [await tagOf('identity'), await tagOf('gzip'), await tagOf('br')];
    assert.equal(new Set(tags).size, 3, tags.join(' '));
    const stale = await app.inject({ url: '/', headers: { 'accept-encoding': 'br', 'if-none-match': tags[1] ?? '' } });
    assert.equal(stale.statusCode, 200);
    const fresh = await app.inject({ url: '/', headers: { 'accept-encoding': 'br', 'if-none-match': tags[2] ?? '' } });
    assert.equal(fresh.statusCode, 304);
  });

  it('answers 503 naming the fix when the receiver was run without building the page', async () => {
    const { app, logs } = await testApp({ pagePath: join(tmpdir(), 'ks-no-such-page', 'page.html') });
    const res = await app.inject({ url: '/' });
    assert.equal(res.statusCode, 503);
    assert.equal(res.json().error, 'page_not_built');
    assert.match(res.json().message, /run npm run build/);
    assert.ok(logs().some((line) => String(line.msg).includes('the page is not built')));
  });
});
