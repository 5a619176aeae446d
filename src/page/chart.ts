/**
 * The chart of decisions by outcome per hour: stacked bars in SVG, drawn here (a few dozen lines
 * weigh less than any charting library). The legend names each outcome with its total, and the
 * same figures are a table under it: the colours are never the only way to read them.
 */
import type { ActivityAnswer } from './api.js';
import { el, table } from './dom.js';
import { CHART_OUTCOMES, outcomeTotals } from './format.js';

const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 720;
const HEIGHT = 160;

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attributes: Record<string, string | number>) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  return element;
}

/** The hour's start in the reader's time zone and format (a zone may be 30 or 45 minutes off UTC's hours). */
function hourOf(iso: string): string {
  return new Date(iso).toLocaleTimeString([], { hour: 'numeric', minute: '2-digit' });
}

/** An outcome's colour class: one of the chart's known outcomes, or the neutral one. */
function toneOf(outcome: string): string {
  return (CHART_OUTCOMES as readonly string[]).includes(outcome) ? `o-${outcome}` : 'o-other';
}

export function decisionChart(activity: ActivityAnswer): HTMLElement {
  const totals = outcomeTotals(activity.buckets);
  const order = totals.map(([outcome]) => outcome);
  const highest = Math.max(
    1,
    ...activity.buckets.map((bucket) => Object.values(bucket.outcomes).reduce((sum, count) => sum + count, 0)),
  );
  const slot = WIDTH / Math.max(1, activity.buckets.length);
  const summary = totals.map(([outcome, count]) => `${count} ${outcome.replaceAll('_', ' ')}`).join(', ');
  const chart = svg('svg', {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    // Bars only: they stretch to the box, which keeps its height at any width.
    preserveAspectRatio: 'none',
    role: 'img',
    'aria-label': `Decisions per hour over the last ${activity.hours} hours: ${summary}`,
    class: 'chart',
  });
  chart.append(svg('line', { x1: 0, x2: WIDTH, y1: HEIGHT, y2: HEIGHT, class: 'axis' }));
  activity.buckets.forEach((bucket, index) => {
    let top = HEIGHT;
    for (const outcome of order) {
      const count = bucket.outcomes[outcome] ?? 0;
      if (count === 0) continue;
      const height = (count / highest) * (HEIGHT - 8);
      top -= height;
      const bar = svg('rect', {
        x: index * slot + 2,
        y: top,
        width: Math.max(1, slot - 4),
        height,
        class: toneOf(outcome),
      });
      bar.append(svg('title', {}));
      bar.lastChild!.textContent = `${hourOf(bucket.start)}: ${count} ${outcome.replaceAll('_', ' ')}`;
      chart.append(bar);
    }
  });
  // An hour label every 3 hours (every 6 on a phone: the others are `minor`), and the current hour.
  const last = activity.buckets.length - 1;
  const ticks = el(
    'div',
    { class: 'ticks', 'aria-hidden': 'true' },
    ...activity.buckets.flatMap((bucket, index) => {
      const fromEnd = last - index;
      if (fromEnd % 3 !== 0) return [];
      const label = el('span', { class: fromEnd % 6 === 0 ? undefined : 'minor' }, hourOf(bucket.start));
      label.style.left = `${((index + 0.5) / activity.buckets.length) * 100}%`;
      return [label];
    }),
  );

  const legend = el(
    'ul',
    { class: 'legend', 'aria-label': 'Outcomes, with their totals' },
    ...totals.map(([outcome, count]) =>
      el(
        'li',
        {},
        el('span', { class: `swatch ${toneOf(outcome)}`, 'aria-hidden': 'true' }),
        `${outcome.replaceAll('_', ' ')}: ${count}`,
      ),
    ),
  );
  const hours = activity.buckets.filter((bucket) => Object.keys(bucket.outcomes).length > 0);
  const figures = el(
    'details',
    {},
    el('summary', {}, 'The figures as a table'),
    table(
      'Decisions per hour by outcome',
      [
        { title: 'Hour', cell: (bucket) => hourOf(bucket.start) },
        ...order.map((outcome) => ({
          title: outcome.replaceAll('_', ' '),
          cell: (bucket: (typeof hours)[number]) => String(bucket.outcomes[outcome] ?? 0),
          numeric: true,
        })),
      ],
      hours,
    ),
  );
  return el('div', { class: 'chart-box' }, chart, ticks, legend, figures);
}
