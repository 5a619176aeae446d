/**
 * Go-style durations (`500ms`, `30s`, `10m`, `1h30m`, `1.5h`), as Prometheus, Alertmanager and
 * Argo users write them. Only ms, s, m and h: a cooldown finer than a millisecond means nothing.
 */

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

// One `<number><unit>` component; the whole text must be a run of them with nothing in between.
const COMPONENT = /(\d+(?:\.\d*)?|\.\d+)([a-z]+)/y;

/** Milliseconds (rounded to whole ms), or null when the text is not a valid non-negative duration. */
export function parseDuration(text: string): number | null {
  if (text.length === 0) return null;
  let total = 0;
  let offset = 0;
  COMPONENT.lastIndex = 0;
  while (offset < text.length) {
    COMPONENT.lastIndex = offset;
    const component = COMPONENT.exec(text);
    if (component === null) return null;
    const unitMs = UNIT_MS[component[2] ?? ''];
    if (unitMs === undefined) return null;
    total += Number(component[1]) * unitMs;
    offset = COMPONENT.lastIndex;
  }
  return Number.isFinite(total) ? Math.round(total) : null;
}

/** The shortest text `parseDuration` reads back as the same value: 600000 → "10m", 5400000 → "1h30m". */
export function formatDuration(ms: number): string {
  if (ms < 0) return `-${formatDuration(-ms)}`;
  let rest = Math.round(ms);
  if (rest === 0) return '0s';
  let text = '';
  for (const [unit, unitMs] of [
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1_000],
    ['ms', 1],
  ] as const) {
    const count = Math.floor(rest / unitMs);
    if (count > 0) text += `${count}${unit}`;
    rest -= count * unitMs;
  }
  return text;
}
