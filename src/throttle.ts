/**
 * A log line at most once per interval, for events that can come thousands of times a second
 * (connection errors, refused requests, dropped connections). Each call is one event; the answer
 * is how many events were left out since the last line when this one is to be logged, or
 * undefined when it is to be left out itself.
 */
export function atMostEvery(intervalMs: number, now: () => number): () => number | undefined {
  let lastAt = Number.NEGATIVE_INFINITY;
  let skipped = 0;
  return () => {
    const at = now();
    if (at - lastAt < intervalMs) {
      skipped += 1;
      return undefined;
    }
    lastAt = at;
    const leftOut = skipped;
    skipped = 0;
    return leftOut;
  };
}
