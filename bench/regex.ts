/**
 * Why re2js: the rule pattern engine must give RE2 semantics (what Prometheus, Loki and
 * Alertmanager users write) in linear time, since alert text comes from logs anyone can write to.
 * This measures re2js against V8's backtracking RegExp (the baseline, in the same run) on the
 * default rules' patterns over realistic alert text, and on ReDoS bait.
 *
 *   npx tsx bench/regex.ts
 */
import { compilePattern } from '../src/rules/regex.js';

const PATTERNS = [
  '(?i)database connection failed|connection pool exhausted|too many connections',
  '(?i)OOMKilled|out of memory|oom[- ]?kill',
  '(?i)connection refused|no route to host|i/o timeout|connection reset by peer',
  'ImagePullBackOff|ErrImagePull|(?i)failed to pull image',
  '(?i)CrashLoopBackOff|crash[ -]?looping',
];

const TEXTS = [
  'KubePodCrashLooping',
  'Pod shop/checkout-7d9f8b6c5-x2x9k (checkout) is in waiting state (reason: "CrashLoopBackOff").',
  'Container cart in shop/cart-5c8d7f9b4-x7kq2 was OOMKilled',
  '37 error lines in the last 5 minutes (threshold > 20).',
  'https://runbooks.example.com/kube-sentinel/container-error-log-burst',
  'critical',
];

/** V8 has no inline (?i) in the middle of a pattern: the closest JS equivalent is a case-insensitive whole. */
function v8(source: string): (text: string) => boolean {
  const flags = source.includes('(?i)') ? 'i' : '';
  const re = new RegExp(source.replaceAll('(?i)', ''), flags);
  return (text) => re.test(text);
}

function re2(source: string): (text: string) => boolean {
  const compiled = compilePattern(source);
  if (!compiled.ok) throw new Error(compiled.error);
  return (text) => compiled.test(text);
}

function opsPerSecond(matchers: ((text: string) => boolean)[], durationMs = 1000): number {
  let ops = 0;
  let sink = 0;
  const end = performance.now() + durationMs;
  while (performance.now() < end) {
    for (let i = 0; i < 1000; i++) {
      const text = TEXTS[i % TEXTS.length]!;
      for (const m of matchers) if (m(text)) sink++;
      ops++;
    }
  }
  if (sink < 0) console.log(sink);
  return (ops / durationMs) * 1000;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function timeMs(fn: () => void): number {
  const start = performance.now();
  fn();
  return performance.now() - start;
}

const v8Matchers = PATTERNS.map(v8);
const re2Matchers = PATTERNS.map(re2);
opsPerSecond(v8Matchers, 300); // warm-up
opsPerSecond(re2Matchers, 300);
const runs = 5;
const baseline = median(Array.from({ length: runs }, () => opsPerSecond(v8Matchers)));
const candidate = median(Array.from({ length: runs }, () => opsPerSecond(re2Matchers)));

console.log('alert texts matched against the 5 default patterns (median of 5 runs of 1 s)');
console.log(`  V8 RegExp (baseline)  ${Math.round(baseline).toLocaleString()} texts/s`);
console.log(
  `  re2js                 ${Math.round(candidate).toLocaleString()} texts/s  (${(candidate / baseline).toFixed(2)}× baseline)`,
);
console.log(`  per text, re2js       ${(1e6 / candidate).toFixed(2)} µs for all 5 patterns`);

console.log('\nReDoS bait: (a+)+$ against "a"×N + "!"');
const evil = '(a+)+$';
for (const n of [20, 22, 24]) {
  const text = `${'a'.repeat(n)}!`;
  const v8Ms = timeMs(() => new RegExp(evil).test(text));
  const re2Ms = timeMs(() => re2(evil)(text));
  console.log(
    `  N=${String(n).padEnd(6)} V8 ${v8Ms.toFixed(1).padStart(8)} ms   re2js ${re2Ms.toFixed(2).padStart(6)} ms`,
  );
}
const big = `${'a'.repeat(50_000)}!`;
console.log(`  N=50000  V8 (not run: exponential, ~2^N)   re2js ${timeMs(() => re2(evil)(big)).toFixed(1)} ms`);
