import { duration, relative, span } from './format.js';

/**
 * Building the page's elements. Text from the API only ever becomes text nodes and attribute
 * values, never markup: an alert's label cannot inject anything into the page.
 */

type Child = Node | string | null | undefined | false;

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Record<string, string | undefined> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== undefined) element.setAttribute(name, value);
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child);
  }
  return element;
}

/** A link that leaves the page: a new tab, without telling the target where it came from. */
export function externalLink(href: string, text: string): HTMLAnchorElement {
  return el('a', { href, target: '_blank', rel: 'noopener noreferrer' }, text);
}

export function code(text: string): HTMLElement {
  return el('code', {}, text);
}

export interface Column<T> {
  title: string;
  cell: (row: T) => Child;
  /** A column that holds numbers is aligned right. */
  numeric?: boolean;
  /** Names and times: kept on one line (the table scrolls sideways instead). */
  nowrap?: boolean;
  /** Free text (a message): wrapped within a readable width. */
  wide?: boolean;
}

/**
 * A table with a caption for screen readers, inside a region that scrolls sideways on a narrow
 * screen and can be scrolled by keyboard (it takes focus). On a phone's width the stylesheet
 * shows each row as a card, each cell labelled by its column's title (data-label).
 */
export function table<T>(caption: string, columns: Column<T>[], rows: readonly T[], rowClass?: (row: T) => string) {
  const head = el('tr', {}, ...columns.map((column) => el('th', { scope: 'col' }, column.title)));
  const body = rows.map((row) =>
    el(
      'tr',
      { class: rowClass?.(row) },
      ...columns.map((column) =>
        el(
          'td',
          {
            'data-label': column.title,
            class:
              [column.numeric ? 'num' : '', column.nowrap ? 'nowrap' : '', column.wide ? 'wide' : '']
                .filter(Boolean)
                .join(' ') || undefined,
          },
          column.cell(row),
        ),
      ),
    ),
  );
  return el(
    'div',
    { class: 'scroll', role: 'region', 'aria-label': caption, tabindex: '0' },
    el(
      'table',
      {},
      el('caption', { class: 'visually-hidden' }, caption),
      el('thead', {}, head),
      el('tbody', {}, ...body),
    ),
  );
}

/** What a section says when it has nothing to show: what it would show, and what to do next. */
export function empty(...children: Child[]): HTMLElement {
  return el('p', { class: 'empty' }, ...children);
}

/** A part of the page that could not be read this time; the rest still shows. */
export function failed(what: string, message: string): HTMLElement {
  return el('p', { class: 'error', role: 'alert' }, `Could not read ${what}: ${message}`);
}

/**
 * Times shown relative to now (`3m ago`, `in 2h`, `5m so far`) are kept current by tick(), in
 * place: a part is redrawn only when its data changes, so what a person has open, focused,
 * scrolled or selected in it stays as it was.
 */
export function when(iso: string | null | undefined): HTMLElement {
  return iso ? el('time', { datetime: iso, 'data-when': 'relative' }) : el('span', {}, '—');
}

/** How long a remediation ran, or has run so far. */
export function lasted(start: string, end: string | undefined): HTMLElement {
  return el('span', { 'data-when': 'duration', 'data-start': start, 'data-end': end });
}

/** How long something has waited: `5m`. */
export function waiting(since: string): HTMLElement {
  return el('time', { datetime: since, 'data-when': 'waiting' });
}

/** Sets the text of every relative time under root for `now`. */
export function tick(root: ParentNode, now: number): void {
  for (const element of root.querySelectorAll<HTMLElement>('[data-when]')) {
    const at = element.getAttribute('datetime') ?? '';
    const kind = element.dataset.when;
    element.textContent =
      kind === 'duration'
        ? duration(element.dataset.start ?? '', element.dataset.end, now)
        : kind === 'waiting'
          ? span(now - Date.parse(at))
          : relative(at, now);
  }
}
