/**
 * Loading rules for a hot reload without stalling the server: the YAML is parsed and validated
 * in a worker thread (load-worker.ts), and what must be built here, where matching runs (compiled
 * patterns are functions, which do not cross threads), is built in slices between which the event
 * loop serves requests. A 1 MiB rules file took seconds of blocked event loop before.
 */
import { Worker } from 'node:worker_threads';
import type { LoadResult } from './load.js';
import type { PortableRule, WorkerInput, WorkerOutput } from './load-worker.js';
import { matcherOf } from './matchers.js';
import { ruleSetSteps } from './rule-set.js';
import { runInSlices, type Steps } from './slices.js';
import type { RuleSource } from './sources.js';
import type { LabelMatcher, Rule } from './types.js';

export interface OffThreadOptions {
  /** A validation still running after this long is stopped and the reload fails. */
  timeoutMs?: number;
  /** The longest the event loop waits while the rule set is compiled here. */
  sliceMs?: number;
}

const DEFAULT_TIMEOUT_MS = 60_000;
// Parsing 4 MiB of YAML (the most one load may hold) takes a few hundred MB at most.
const WORKER_HEAP_MB = 512;

// In dist/, the worker is its own bundle beside the others (scripts/build.mjs).
const fromSource = import.meta.url.endsWith('.ts');
const WORKER_ENTRY = new URL(fromSource ? './load-worker.ts' : './load-worker.js', import.meta.url);

function startWorker(input: WorkerInput): Worker {
  const options = { workerData: input, resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB } };
  if (!fromSource) return new Worker(WORKER_ENTRY, options);
  // From source (the tests run TypeScript through tsx), the worker registers tsx itself: Node 20
  // does not give a worker the parent's --import hooks.
  const entry = JSON.stringify(WORKER_ENTRY.href);
  return new Worker(`import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${entry}); });`, {
    ...options,
    eval: true,
  });
}

/** What the worker thread found in SOURCES; a failure of the thread itself is a failed load. */
function checkInWorker(path: string, sources: readonly RuleSource[], timeoutMs: number): Promise<WorkerOutput> {
  return new Promise((resolve) => {
    const worker = startWorker({ path, sources });
    let settled = false;
    const settle = (output: WorkerOutput) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      worker.terminate().catch(() => {});
      resolve(output);
    };
    const fail = (why: string) => settle({ ok: false, errors: [`${path}: reload failed: ${why}`] });
    const timer = setTimeout(() => fail(`validating took longer than ${timeoutMs / 1000} s`), timeoutMs);
    worker.once('message', settle);
    worker.once('error', (err) => fail(err.message));
    worker.once('exit', (code) => fail(`the validating thread exited (code ${code}) without an answer`));
  });
}

/** The rules read from their JSON chunks, label matchers compiled again, a chunk or a rule per step. */
function* rulesFrom(chunks: readonly string[]): Steps<Rule[]> {
  const compiled: Rule[] = [];
  for (const chunk of chunks) {
    const rules = JSON.parse(chunk) as PortableRule[];
    yield;
    for (const rule of rules) {
      const labels: LabelMatcher[] = [];
      for (const { name, op, value } of rule.match.labels) {
        const matcher = matcherOf(name, op, value);
        // The worker compiled the very same matcher; failing here would be a bug, not a bad file.
        if ('error' in matcher) throw new Error(`${rule.source.file}:${rule.source.line}: ${matcher.error}`);
        labels.push(matcher);
      }
      compiled.push({ ...rule, match: { ...rule.match, labels } });
      yield;
    }
  }
  return compiled;
}

/** Loads already-read sources as loadRuleSources does, parsing in a worker thread and building in slices. */
export async function loadOffThread(
  path: string,
  sources: readonly RuleSource[],
  options: OffThreadOptions = {},
): Promise<LoadResult> {
  const checked = await checkInWorker(path, sources, options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  if (!checked.ok) return checked;
  const ruleSet = await runInSlices(
    (function* () {
      const rules = yield* rulesFrom(checked.ruleChunks);
      return yield* ruleSetSteps(rules, checked.excludedNamespaces, checked.files);
    })(),
    options.sliceMs,
  );
  return { ok: true, ruleSet, warnings: checked.warnings };
}
