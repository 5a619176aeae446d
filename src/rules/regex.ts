/**
 * The regular-expression engine for rule patterns and label matchers.
 *
 * Alert text comes from logs that anyone can influence, so matching must run in linear time:
 * RE2 semantics, as Go, Prometheus, Loki and Alertmanager use. `re2js` is a pure-JS port of RE2,
 * chosen over the native `re2` binding so that installs and the Docker image need no compiler
 * toolchain. It rejects Perl-only syntax (backreferences, lookaround) at compile time.
 */
import { RE2JS, RE2Set } from 're2js';
import type { Steps } from './slices.js';

export type CompiledPattern = { ok: true; test(text: string): boolean } | { ok: false; error: string };

function compile(source: string): CompiledPattern {
  let compiled: RE2JS;
  try {
    compiled = RE2JS.compile(source);
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  }
  return { ok: true, test: (text: string) => compiled.test(text) };
}

/** Unanchored: true when the pattern finds a match anywhere in the text (rule `pattern`). */
export function compilePattern(source: string): CompiledPattern {
  return compile(source);
}

/** Fully anchored like Alertmanager's `^(?:...)$`: the whole text must match (label matchers). */
export function compileAnchored(source: string): CompiledPattern {
  // Compile the source alone first so that error messages quote what the user wrote, not our wrapper.
  const alone = compile(source);
  if (!alone.ok) return alone;
  return compile(`^(?:${source})$`);
}

/** Which patterns of a set find a match in a text, by their index in the set. */
export interface PatternSet {
  matching(text: string): number[];
}

/**
 * Many unanchored patterns compiled into one automaton (RE2's Set): one pass over a text says
 * which of them find a match, so matching cost grows with the text, not with the number of rules.
 * Null when the set cannot be built (the callers then test each pattern on its own). Yields after
 * each pattern is added (parsing them is most of the cost), so a reload can pause between them.
 */
export function* patternSetSteps(sources: readonly string[]): Steps<PatternSet | null> {
  if (sources.length === 0) return null;
  try {
    const set = new RE2Set(RE2Set.UNANCHORED);
    for (const source of sources) {
      set.add(source);
      yield;
    }
    set.compile();
    return { matching: (text: string) => set.match(text) };
  } catch {
    return null;
  }
}
