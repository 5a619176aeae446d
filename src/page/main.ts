/**
 * The page (SPEC §12): reads the API every few seconds while it is on screen and redraws what
 * changed. Read-only: it never sends anything but GETs.
 */
import { readSnapshot, SignInNeeded, type Snapshot, signOut, token } from './api.js';
import { tick } from './dom.js';
import { decisions as latestDecisions, notices } from './overview.js';
import * as draw from './sections.js';

const REFRESH_MS = 10_000;

function byId<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`the page has no #${id}`);
  return found as T;
}

/**
 * What each part last drew from: a part whose data did not change keeps its elements, and with
 * them the focus, an opened table of figures, a sideways scroll or a selection in it. Its times
 * are kept current in place (tick). A signature starting with `!` was drawn from a failed read.
 */
const drawnFrom = new Map<string, string>();

type Drawn = HTMLElement | HTMLElement[] | null;

/** What a person had open, scrolled or focused in a part, put back after it is drawn anew. */
function keepState(body: Element, redraw: () => void): void {
  const opened = [...body.querySelectorAll('details')].map((details) => details.open);
  const scrolled = [...body.querySelectorAll('.scroll')].map((region) => region.scrollLeft);
  const active = document.activeElement;
  const focused = active && body.contains(active) ? `${active.tagName}|${active.textContent}` : null;
  redraw();
  for (const [index, details] of [...body.querySelectorAll('details')].entries())
    details.open ||= opened[index] ?? false;
  for (const [index, region] of [...body.querySelectorAll('.scroll')].entries())
    region.scrollLeft = scrolled[index] ?? 0;
  if (focused === null) return;
  const again = [...body.querySelectorAll<HTMLElement>('a, button, summary, [tabindex]')].find(
    (element) => `${element.tagName}|${element.textContent}` === focused,
  );
  again?.focus();
}

/**
 * Draws a part from `parts` (what it is drawn from). A part whose read failed after it had been
 * drawn keeps what it showed, marked as old (`problems` collects why); one never drawn shows the
 * failure.
 */
function show(section: string, parts: unknown[], drawPart: () => Drawn, problems: Set<string>): void {
  const container = byId(section);
  const failure = parts.find((part): part is string => typeof part === 'string');
  const before = drawnFrom.get(section);
  if (failure !== undefined && before !== undefined && !before.startsWith('!')) {
    problems.add(failure);
    container.classList.add('stale');
    return;
  }
  container.classList.remove('stale');
  const signature = `${failure === undefined ? '' : '!'}${JSON.stringify(parts)}`;
  if (before === signature) return;
  drawnFrom.set(section, signature);
  const content = drawPart();
  container.hidden = content === null;
  const body = container.querySelector('.body');
  if (!body) return;
  keepState(body, () =>
    body.replaceChildren(...(content === null ? [] : Array.isArray(content) ? content : [content])),
  );
}

function showReadiness(readiness: Snapshot['readiness']): void {
  const status = byId('readiness');
  const ready = typeof readiness !== 'string' && readiness.status === 'ready';
  const reasons =
    typeof readiness === 'string' ? [readiness] : [...(readiness.reasons ?? []), ...(readiness.warnings ?? [])];
  const text = ready ? '✓ Ready' : '✗ Not ready';
  const detail = reasons.join('; ');
  // A live region: a screen reader hears a change of readiness, not every refresh.
  if (status.dataset.text === `${text}${detail}`) return;
  status.dataset.text = `${text}${detail}`;
  status.className = `badge ${ready ? (reasons.length > 0 ? 'wait' : 'good') : 'bad'}`;
  status.textContent = detail ? `${text}: ${detail}` : text;
}

function render(snapshot: Snapshot, now: number): void {
  showReadiness(snapshot.readiness);
  const { remediations, approvals, escalations, pauses, cooldowns, rules, activity, decisions, status } = snapshot;
  const problems = new Set<string>();
  show(
    'notices',
    [status, pauses, activity],
    () => {
      const shown = notices(snapshot);
      return shown.length > 0 ? shown : null;
    },
    problems,
  );
  show('approvals', [approvals], () => draw.approvals(approvals), problems);
  show(
    'remediations',
    [remediations, approvals, typeof status === 'string' ? null : status.mode],
    () => draw.remediations(remediations, approvals, status),
    problems,
  );
  show('escalations', [escalations], () => draw.escalations(escalations), problems);
  show('pauses', [pauses], () => draw.pauses(pauses), problems);
  show('cooldowns', [cooldowns], () => draw.cooldowns(cooldowns), problems);
  show('rules', [rules, activity], () => draw.rules(rules, activity), problems);
  show('decisions', [decisions], () => latestDecisions(decisions), problems);
  show('activity', [activity], () => draw.activity(activity), problems);
  const banner = byId('problems');
  const text =
    problems.size === 0
      ? ''
      : `Could not read everything at ${new Date(now).toLocaleTimeString()}: ${[...problems].join('; ')}. The parts marked as old show what was read before.`;
  if (banner.textContent !== text) banner.textContent = text;
  banner.hidden = text === '';
}

/** When the page last showed what the receiver said; kept when a later read fails. */
let shownAt: number | undefined;

function signIn(schemes: string[]): void {
  byId('content').hidden = true;
  byId('notices').hidden = true;
  byId('problems').hidden = true;
  const form = byId('sign-in');
  form.hidden = false;
  const bearer = schemes.includes('Bearer') || schemes.length === 0;
  byId('token-field').hidden = !bearer;
  const basic = ' With a user and password (basic auth) instead, reload the page and give them when the browser asks.';
  byId('sign-in-hint').textContent = bearer
    ? token.get()
      ? 'That token was refused. Type the bearer token again; it is kept for this tab only.'
      : `Type the receiver's bearer token; it is kept for this tab only.${basic}`
    : 'This receiver takes a user and password: reload the page and give them when the browser asks.';
  byId('last-update').textContent = 'Signed out.';
  byId('sign-out').hidden = true;
  byId('readiness').textContent = 'Sign in to see the receiver';
  delete byId('readiness').dataset.text;
  drawnFrom.clear();
  clearTimeout(timer);
  if (bearer) byId<HTMLInputElement>('token').focus();
}

let inFlight = false;
let timer: ReturnType<typeof setTimeout> | undefined;

async function load(): Promise<void> {
  if (inFlight) return;
  inFlight = true;
  clearTimeout(timer);
  try {
    const snapshot = await readSnapshot();
    byId('sign-in').hidden = true;
    byId('content').hidden = false;
    byId('sign-out').hidden = token.get() === null;
    const now = Date.now();
    render(snapshot, now);
    tick(document.body, now);
    shownAt = now;
    byId('last-update').textContent =
      `Updated ${new Date(now).toLocaleTimeString()}; refreshes every ${REFRESH_MS / 1000} s.`;
    document.body.dataset.loaded = 'true';
    // When the data was first on screen, for the bench (bench/page.ts): epoch ms, as performance.timeOrigin.
    document.body.dataset.loadedAt ??= String(performance.timeOrigin + performance.now());
  } catch (err) {
    if (err instanceof SignInNeeded) {
      signIn(err.schemes);
      return; // nothing to refresh until someone signs in
    }
    // What is on screen stays, marked as old: a person must not take it for the present.
    const since = shownAt === undefined ? '' : ` Showing what it said at ${new Date(shownAt).toLocaleTimeString()}.`;
    byId('last-update').textContent = `Could not reach the receiver (${(err as Error).message}); trying again.${since}`;
    const readiness = byId('readiness');
    readiness.className = 'badge bad';
    readiness.textContent = '✗ Not answering';
    delete readiness.dataset.text;
    tick(document.body, Date.now());
  } finally {
    inFlight = false;
    // How many reads have ended, which ever way: what waits for the next one (a test) watches it.
    document.body.dataset.reads = String(Number(document.body.dataset.reads ?? 0) + 1);
  }
  schedule();
}

/** Reads and redraws now; load catches what fails, so nothing is left unhandled. */
function refresh(): void {
  load().catch((err: unknown) => {
    byId('last-update').textContent = `Could not draw the page: ${(err as Error).message}`;
  });
}

/** Only while the page is on screen: a tab left in the background does not keep polling. */
function schedule(): void {
  clearTimeout(timer);
  if (document.visibilityState === 'visible') timer = setTimeout(refresh, REFRESH_MS);
}

byId<HTMLFormElement>('sign-in').addEventListener('submit', (event) => {
  event.preventDefault();
  const typed = byId<HTMLInputElement>('token').value.trim();
  if (!typed) return;
  token.set(typed);
  byId<HTMLInputElement>('token').value = '';
  refresh();
});
byId('refresh').addEventListener('click', () => refresh());
byId('sign-out').addEventListener('click', () => {
  signOut();
  signIn([]);
});
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && byId('sign-in').hidden) refresh();
  else clearTimeout(timer);
});
refresh();
