/**
 * The page (GET /, SPEC §12): what it weighs on the wire, and how soon a browser shows it.
 *
 *   npm run bench:page     # about 30 s: builds, then 10 timed rounds in Debian's headless Chromium
 *
 * Weight: the bytes the receiver sends for GET / (one document, script and style inline) raw, and
 * compressed as it serves them (brotli, gzip), with the script's and the style's share.
 * First render, each round in a fresh browser context (nothing cached): first contentful paint of
 * the page, and the time until its data is drawn (all ten API reads answered and drawn:
 * `body[data-loaded]`), both from navigation start; beside them the first contentful paint of a
 * baseline, a one-line HTML page served by node's own http server on the same loopback in the
 * same run, so the ratio says what the page costs over the least a browser does.
 */
import { createServer } from 'node:http';
import { loadavg } from 'node:os';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { buildPage } from '../scripts/build-page.mjs';
import { launchChromium } from '../test/support/browser.js';
import { startReceiver } from '../test/support/receiver.js';
import { median, round, table } from './stats.js';

const ROUNDS = 10;
const TOKEN = 'bench-token';

function bytes(text: string): { raw: number; gzip: number; brotli: number } {
  const buffer = Buffer.from(text);
  return {
    raw: buffer.length,
    gzip: gzipSync(buffer, { level: 9 }).length,
    brotli: brotliCompressSync(buffer, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length,
  };
}

const html = await buildPage('dist/page.html');
const inline = (tag: string) => html.slice(html.indexOf(`<${tag}>`) + tag.length + 2, html.indexOf(`</${tag}>`));
const weights = { page: bytes(html), script: bytes(inline('script')), style: bytes(inline('style')) };

// The receiver as `npm start` runs it (dry run, memory store, the default rules), with a few
// alerts decided so that every table and the chart have rows to draw.
const receiver = await startReceiver(['--port', '0', '--rules', 'rules/'], { KUBE_SENTINEL_AUTH_TOKEN: TOKEN });
const alerts = Array.from({ length: 40 }, (_, i) => ({
  labels: { alertname: 'KubePodCrashLooping', namespace: `ns-${i % 5}`, pod: `api-${i}-7d9f8b6c5-x2x9k` },
  annotations: { description: i % 2 ? 'CrashLoopBackOff' : 'OOMKilled' },
}));
const sent = await fetch(`${receiver.url}/api/v2/alerts`, {
  method: 'POST',
  headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
  body: JSON.stringify(alerts),
});
if (sent.status !== 200) throw new Error(`the alerts were answered ${sent.status}`);
const served = await fetch(`${receiver.url}/`, {
  headers: { authorization: `Bearer ${TOKEN}`, 'accept-encoding': 'br' },
});
const onTheWire = Number(served.headers.get('content-length'));

const baseline = createServer((_request, response) => {
  response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
  response.end('<!doctype html><html lang="en"><title>baseline</title><h1>Kube Sentinel</h1></html>');
});
await new Promise<void>((resolve) => baseline.listen(0, '127.0.0.1', resolve));
const baselineUrl = `http://127.0.0.1:${(baseline.address() as { port: number }).port}/`;

const browser = await launchChromium();
const paint = () =>
  performance.getEntriesByName('first-contentful-paint')[0]?.startTime ??
  new Promise<number>((resolve) =>
    new PerformanceObserver((list) => resolve(list.getEntries()[0]?.startTime ?? Number.NaN)).observe({
      type: 'paint',
      buffered: true,
    }),
  );
const rounds = { pagePaint: [] as number[], pageData: [] as number[], baselinePaint: [] as number[] };
try {
  for (let round = 0; round <= ROUNDS; round++) {
    const context = await browser.newContext({ extraHTTPHeaders: { authorization: `Bearer ${TOKEN}` } });
    const page = await context.newPage();
    await page.goto(baselineUrl);
    const baselinePaint = await page.evaluate(paint);
    await page.goto(`${receiver.url}/`);
    await page.waitForSelector('body[data-loaded="true"]');
    const pagePaint = await page.evaluate(paint);
    const pageData = await page.evaluate(() => {
      const start = performance.timeOrigin;
      return Number(document.body.dataset.loadedAt ?? Number.NaN) - start;
    });
    await context.close();
    if (round === 0) continue; // the first round warms the disk cache and the browser
    rounds.baselinePaint.push(baselinePaint);
    rounds.pagePaint.push(pagePaint);
    rounds.pageData.push(pageData);
  }
} finally {
  await browser.close();
  baseline.close();
  await receiver.stop();
}

const ms = (value: number) => `${round(value, 1)} ms`;
const kb = (value: number) => `${round(value / 1024, 1)} KiB`;
console.log(
  `load average ${loadavg()
    .map((l) => round(l, 2))
    .join(' ')}; ${ROUNDS} rounds, medians\n`,
);
console.log(
  table([
    ['GET /', 'raw', 'gzip', 'brotli (as served)'],
    ...(['page', 'script', 'style'] as const).map((part) => [
      part === 'page' ? 'the document (HTML + JS + CSS)' : `its ${part}`,
      kb(weights[part].raw),
      kb(weights[part].gzip),
      kb(weights[part].brotli),
    ]),
  ]),
);
console.log(`\nbytes on the wire for GET / with Accept-Encoding: br: ${onTheWire}\n`);
const basePaint = median(rounds.baselinePaint);
console.log(
  table([
    ['first render', 'median', 'vs baseline paint'],
    ['baseline: one-line page, first contentful paint', ms(basePaint), '1.00×'],
    [
      'the page: first contentful paint',
      ms(median(rounds.pagePaint)),
      `${round(median(rounds.pagePaint) / basePaint)}×`,
    ],
    [
      'the page: data drawn (10 API reads at once)',
      ms(median(rounds.pageData)),
      `${round(median(rounds.pageData) / basePaint)}×`,
    ],
  ]),
);
