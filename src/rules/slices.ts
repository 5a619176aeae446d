/**
 * Long computations written as generators that yield between small steps, so the same code runs
 * all at once (at start-up, in the CLI) or in slices between which the event loop serves requests
 * (a hot reload in `serve`).
 */
import { setImmediate as nextTurn } from 'node:timers/promises';

export type Steps<T> = Generator<void, T, void>;

/** Runs STEPS to the end without letting anything else run. */
export function runAll<T>(steps: Steps<T>): T {
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
  }
}

/** Runs STEPS, giving the event loop a turn whenever SLICE_MS have passed since the last one. */
export async function runInSlices<T>(
  steps: Steps<T>,
  sliceMs = 10,
  now: () => number = performance.now.bind(performance),
): Promise<T> {
  let sliceStart = now();
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
    if (now() - sliceStart >= sliceMs) {
      await nextTurn();
      sliceStart = now();
    }
  }
}
