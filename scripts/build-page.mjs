/**
 * The page (GET /, SPEC §12) as one HTML document: src/page/main.ts bundled and minified for
 * browsers, and src/page/style.css, both inline. One response carries everything, and nothing is
 * fetched from anywhere else: the page works air-gapped, and its Content-Security-Policy allows
 * exactly these two inline blocks (by hash, src/routes/page.ts) and requests to its own origin.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const PAGE = join(ROOT, 'src', 'page');

/** Browsers of the last few years: what an on-call laptop or phone runs. */
const BROWSERS = ['chrome109', 'edge109', 'firefox115', 'safari15.6'];

async function bundle(entry, loader) {
  const result = await build({
    entryPoints: [join(PAGE, entry)],
    bundle: true,
    write: false,
    minify: true,
    format: loader === 'css' ? undefined : 'iife',
    platform: 'browser',
    target: BROWSERS,
    legalComments: 'none',
    charset: 'utf8',
    logLevel: 'warning',
  });
  return result.outputFiles[0].text.trim();
}

/** Builds the page; writes it to outFile when given, with its brotli (.br) and gzip (.gz) forms. Answers the HTML. */
export async function buildPage(outFile) {
  const [script, style] = await Promise.all([bundle('main.ts'), bundle('style.css', 'css')]);
  // The inline blocks end at their closing tags: neither may contain one (esbuild escapes them in strings).
  if (/<\/script/i.test(script)) throw new Error('the page script contains "</script"');
  if (/<\/style/i.test(style)) throw new Error('the page style contains "</style"');
  const template = readFileSync(join(PAGE, 'index.html'), 'utf8');
  const html = template.replace('/*STYLE*/', () => style).replace('/*SCRIPT*/', () => script);
  if (outFile) {
    writeFileSync(outFile, html);
    // Compressed here, once, rather than at every start of the receiver (brotli at its best
    // quality takes tens of milliseconds, which a scale-from-zero start would wait for).
    writeFileSync(`${outFile}.br`, brotliCompressSync(html, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }));
    writeFileSync(`${outFile}.gz`, gzipSync(html, { level: 9 }));
  }
  return html;
}
