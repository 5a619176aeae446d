/**
 * The worker thread of a hot reload (off-thread.ts): parses and validates the rules it is given
 * and posts back what checkRuleSources found. YAML costs about a second per MiB to parse; here it
 * costs the server's event loop nothing. Label matchers go back as their parts, since functions do
 * not cross threads, and the rules as JSON text, a few hundred at a time: structured clone would
 * rebuild them all in one go on the receiving side (250 ms for 8,000 rules), where the text is
 * parsed chunk by chunk, between which the event loop turns.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { checkRuleSources } from './load.js';
import type { Rule } from './types.js';

export interface WorkerInput {
  path: string;
  sources: readonly { file: string; bytes: Uint8Array }[];
}

/** A rule without functions: its label matchers as name, operator and value. */
export type PortableRule = Omit<Rule, 'match'> & {
  match: Omit<Rule['match'], 'labels'> & { labels: Pick<Rule['match']['labels'][number], 'name' | 'op' | 'value'>[] };
};

export type WorkerOutput =
  | {
      ok: true;
      /** JSON text of PortableRule[], RULES_PER_CHUNK rules each, in order. */
      ruleChunks: string[];
      excludedNamespaces: string[] | null;
      files: string[];
      warnings: string[];
    }
  | { ok: false; errors: string[] };

const RULES_PER_CHUNK = 250;

if (parentPort !== null) {
  const { path, sources } = workerData as WorkerInput;
  const checked = checkRuleSources(
    path,
    sources.map(({ file, bytes }) => ({ file, bytes: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) })),
  );
  if (!checked.ok) parentPort.postMessage(checked satisfies WorkerOutput);
  else {
    const { rules, ...rest } = checked;
    const ruleChunks: string[] = [];
    for (let start = 0; start < rules.length; start += RULES_PER_CHUNK)
      // JSON leaves out the matchers' functions: what is sent is a PortableRule.
      ruleChunks.push(JSON.stringify(rules.slice(start, start + RULES_PER_CHUNK)));
    parentPort.postMessage({ ...rest, ruleChunks } satisfies WorkerOutput);
  }
}
