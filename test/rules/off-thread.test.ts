/**
 * A hot reload never stalls the server: while the biggest rules file allowed is parsed and
 * validated, the event loop keeps turning, so /healthz and ingest keep answering. What is
 * measured is how late a timer runs, not time slept.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { MAX_ALIASES } from '../../src/rules/aliases.js';
import type { LoadResult } from '../../src/rules/load.js';
import { MAX_RULES_FILE_BYTES } from '../../src/rules/sources.js';
import { watchRules } from '../../src/rules/watch.js';

// Measured at 0.1-0.2 s on a loaded 2-core machine; parsing in the event loop blocked it 2.4-10 s.
const MAX_STALL_MS = 1_000;

const tempDirs: string[] = [];
after(async () => {
  for (const dir of tempDirs) await rm(dir, { recursive: true, force: true });
});

const rule = (name: string, version: string) =>
  `  - {name: ${name}, match: {pattern: ${name}-${version}}, priority: P1, remediation: {action: trigger-argo-workflow, params: {workflow_template: t}}}\n`;

/** As many small rules as fit in the largest file allowed: the most YAML one file can make us parse. */
function largestFile(version: string): string {
  let text = 'rules:\n';
  for (let i = 0; ; i++) {
    const next = rule(`r${i}`, version);
    if (text.length + next.length > MAX_RULES_FILE_BYTES) return text;
    text += next;
  }
}

/**
 * The longest the event loop went without a turn, seen by a timer due every 5 ms: how long a
 * /healthz request arriving at the worst moment would have waited. (perf_hooks'
 * monitorEventLoopDelay reported 47 ms across a 2.6 s block here, so it is not used.)
 */
function observeEventLoop(): { stop(): number } {
  const period = 5;
  let last = performance.now();
  let longest = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last - period);
    last = now;
  }, period);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(longest, performance.now() - last - period);
    },
  };
}

/** Replaces the rules file once the watcher is ready; the longest event-loop delay until the reload. */
async function reloadMeasured(before: string, after: string): Promise<{ result: LoadResult; stallMs: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'kube-sentinel-stall-'));
  tempDirs.push(dir);
  const file = join(dir, 'rules.yaml');
  await writeFile(file, before);
  let delivered: (result: LoadResult) => void = () => {};
  const reloaded = new Promise<LoadResult>((resolve) => {
    delivered = resolve;
  });
  const watcher = watchRules(file, { debounceMs: 20, checkEveryMs: 0, onReload: (result) => delivered(result) });
  try {
    await watcher.ready;
    const delay = observeEventLoop();
    await writeFile(file, after);
    const result = await reloaded;
    return { result, stallMs: delay.stop() };
  } finally {
    watcher.close();
  }
}

describe('a hot reload', () => {
  it(`of the largest file allowed (${MAX_RULES_FILE_BYTES} bytes of rules) keeps the event loop turning`, async () => {
    const { result, stallMs } = await reloadMeasured(largestFile('v1'), largestFile('v2'));
    assert.ok(result.ok, result.ok ? '' : result.errors.slice(0, 3).join('\n'));
    assert.ok(result.ruleSet.rules.length > 5_000);
    assert.equal(
      result.ruleSet.match({
        source: 'alertmanager',
        status: 'firing',
        labels: { alertname: 'r7-v2' },
        annotations: {},
        fingerprint: '0123456789abcdef',
      })?.name,
      'r7',
    );
    assert.ok(stallMs < MAX_STALL_MS, `the event loop stalled ${Math.round(stallMs)} ms`);
  });

  it('of 10,000 aliases is refused with file:line without stalling the event loop', async () => {
    const aliases = `rules:\n${rule('shared', 'v1').replace('  - {', '  - &r {')}${'  - *r\n'.repeat(10_000)}`;
    const { result, stallMs } = await reloadMeasured(`rules:\n${rule('one', 'v1')}`, aliases);
    assert.equal(result.ok, false);
    assert.match(
      result.ok ? '' : (result.errors[0] ?? ''),
      new RegExp(`rules\\.yaml:${MAX_ALIASES + 3}: more than ${MAX_ALIASES} aliases`),
    );
    assert.ok(stallMs < MAX_STALL_MS, `the event loop stalled ${Math.round(stallMs)} ms`);
  });
});
