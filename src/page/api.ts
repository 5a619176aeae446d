/**
 * The page's reading of the receiver's API: same origin only, with the credentials the browser
 * holds (basic auth it was given) or the bearer token typed into the page, kept for the tab.
 */
import type { Pause } from '../pause.js';
import type { Remediation } from '../remediation/model.js';

export type ShownRemediation = Remediation & { workflowUrl?: string };

export interface Readiness {
  status: 'ready' | 'unavailable';
  reasons?: string[];
  warnings?: string[];
}

export interface ShownEscalation {
  id: string;
  cooldownKey: string;
  alertname: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  openedAt?: string;
  expiresAt: string;
}

export interface ShownCooldown {
  key: string;
  workflow: string;
  state: 'pending' | 'committed';
  claimedAt: string;
  expiresAt: string;
  dryRun?: boolean;
}

export interface ShownRule {
  name: string;
  priority: string;
  enabled: boolean;
  template: string | null;
  workflow_name: string | null;
  cooldown: string;
  approval: 'none' | 'required';
  source: string;
}

export interface RuleActivity {
  rule: string;
  lastMatchAt: string | null;
  matches: number;
  remediations: Record<string, number>;
  successRate: number | null;
}

export interface ActivityAnswer {
  hours: number;
  bucketSeconds: number;
  buckets: { start: string; outcomes: Record<string, number> }[];
  rules: RuleActivity[];
}

export interface Status {
  replica: string;
  mode: 'cluster' | 'dry-run';
  store: 'memory' | 'redis';
}

/** An entry of the audit trail: a decision (no `kind`), or a remediation's or escalation's. */
export interface ShownDecision {
  kind?: string;
  alertname?: string;
  outcome?: string;
  rule?: string | null;
  reason?: string;
  cooldownKey?: string;
  workflow?: { namespace: string; name: string } | string;
  at: string;
  lastAt?: string;
  count?: number;
}

/** What one refresh read; a part that failed holds its error's text instead. */
export interface Snapshot {
  status: Status | string;
  readiness: Readiness | string;
  remediations: ShownRemediation[] | string;
  /** Read on their own: however many remediations came after it, an approval is never cut off the page. */
  approvals: ShownRemediation[] | string;
  escalations: ShownEscalation[] | string;
  pauses: Pause[] | string;
  cooldowns: ShownCooldown[] | string;
  rules: { rules: ShownRule[]; excluded_namespaces: string[] } | string;
  activity: ActivityAnswer | string;
  decisions: ShownDecision[] | string;
}

/** The API refused the credentials (or there were none): the page asks for them. */
export class SignInNeeded extends Error {
  constructor(readonly schemes: string[]) {
    super('sign-in needed');
  }
}

const TOKEN_KEY = 'kube-sentinel.token';

/** sessionStorage: the token lives as long as the tab, never in a cookie or on disk for longer. */
export const token = {
  get(): string | null {
    try {
      return sessionStorage.getItem(TOKEN_KEY);
    } catch {
      return null;
    }
  },
  set(value: string | null): void {
    try {
      if (value === null) sessionStorage.removeItem(TOKEN_KEY);
      else sessionStorage.setItem(TOKEN_KEY, value);
    } catch {
      // Storage refused (a private window's quota): the token lasts until the page is left.
    }
  },
};

/** The schemes a 401 offers (`Basic`, `Bearer`), from its WWW-Authenticate header. */
function schemesOf(response: Response): string[] {
  const header = response.headers.get('www-authenticate') ?? '';
  return [...header.matchAll(/(?:^|,)\s*([A-Za-z]+) realm=/g)].map((match) => match[1] ?? '');
}

/** A read that gets no answer in this long fails (a dropped port-forward, a laptop that slept): the next refresh tries again. */
const READ_TIMEOUT_MS = 8000;

/** How many remediations the page lists; the approvals are read whole besides. */
export const LISTED_REMEDIATIONS = 200;

/**
 * Paths are relative to the page: behind an ingress that serves the receiver under a prefix
 * (`/kube-sentinel/`), the page reads `/kube-sentinel/v1/...`, and the token goes nowhere else.
 */
async function read<T>(path: string): Promise<T> {
  const bearer = token.get();
  const abort = new AbortController();
  const timer = setTimeout(
    () => abort.abort(new Error(`no answer within ${READ_TIMEOUT_MS / 1000} s`)),
    READ_TIMEOUT_MS,
  );
  const response = await fetch(path, {
    headers: { Accept: 'application/json', ...(bearer ? { Authorization: `Bearer ${bearer}` } : {}) },
    cache: 'no-store',
    signal: abort.signal,
  }).finally(() => clearTimeout(timer));
  if (response.status === 401) throw new SignInNeeded(schemesOf(response));
  const body = (await response.json().catch(() => null)) as (T & { message?: string; reasons?: string[] }) | null;
  // /readyz answers 503 with its reasons: that is an answer to show, not a failure to read.
  if (response.ok || (path === 'readyz' && body !== null)) return body as T;
  throw new Error(body?.message ?? `${path} answered ${response.status}`);
}

/** How many entries the cooldown and escalation lists show; the page says when there are more. */
export const LISTED = 200;

/** Each part of the page and the read that fetches it. */
const READS: { [K in keyof Snapshot]: () => Promise<Exclude<Snapshot[K], string>> } = {
  status: () => read<Status>('v1/status'),
  readiness: () => read<Readiness>('readyz'),
  remediations: () =>
    read<{ remediations: ShownRemediation[] }>(`v1/remediations?limit=${LISTED_REMEDIATIONS}`).then(
      (answer) => answer.remediations,
    ),
  approvals: () =>
    read<{ remediations: ShownRemediation[] }>('v1/remediations?state=awaiting_approval&limit=1000').then(
      (answer) => answer.remediations,
    ),
  escalations: () =>
    read<{ escalations: ShownEscalation[] }>(`v1/escalations?limit=${LISTED}`).then((answer) => answer.escalations),
  pauses: () => read<{ pauses: Pause[] }>('v1/pauses').then((answer) => answer.pauses),
  cooldowns: () =>
    read<{ cooldowns: ShownCooldown[] }>(`v1/cooldowns?limit=${LISTED}`).then((answer) => answer.cooldowns),
  rules: () => read<Exclude<Snapshot['rules'], string>>('v1/rules'),
  activity: () => read<ActivityAnswer>('v1/activity?hours=24'),
  decisions: () => read<{ decisions: ShownDecision[] }>('v1/decisions?limit=100').then((answer) => answer.decisions),
};

/** Whether the last read was let in: until then one read asks first, so a refusal is one 401, not ten. */
let admitted = false;

/** The status of the page's own document: 401 when the browser sent no credentials for it. */
function documentStatus(): number | undefined {
  const [navigation] = performance.getEntriesByType('navigation') as (PerformanceEntry & { responseStatus?: number })[];
  return navigation?.responseStatus;
}

/** Forgets the typed token: the page asks for credentials again, without a read that would be refused. */
export function signOut(): void {
  token.set(null);
  admitted = false;
}

/**
 * Reads everything the page shows at once. A part that fails is shown as failed beside the others;
 * only a refusal of the credentials fails the whole (SignInNeeded), and so does a receiver that
 * answers nothing at all.
 */
export async function readSnapshot(): Promise<Snapshot> {
  if (!admitted) {
    const document = documentStatus();
    // The document itself was refused and no token is typed: every read would be refused too.
    if (token.get() === null && document === 401) throw new SignInNeeded([]);
    // A typed token, or a browser that does not say how its document was answered: one read
    // tries the credentials before all the others do. A document answered 200 had them already.
    if (token.get() !== null || document !== 200) {
      try {
        await read('v1/status');
      } catch (err) {
        if (err instanceof SignInNeeded) throw err;
      }
    }
  }
  const names = Object.keys(READS) as (keyof Snapshot)[];
  const parts = await Promise.allSettled(names.map((name) => READS[name]()));
  const refusal = parts.find(
    (part): part is PromiseRejectedResult => part.status === 'rejected' && part.reason instanceof SignInNeeded,
  );
  admitted = !refusal;
  if (refusal) throw refusal.reason;
  const [first] = parts;
  if (parts.every((part) => part.status === 'rejected') && first?.status === 'rejected') throw first.reason;
  const snapshot: Record<string, unknown> = {};
  for (const [index, part] of parts.entries()) {
    snapshot[names[index] as string] =
      part.status === 'fulfilled' ? part.value : String((part.reason as Error).message ?? part.reason);
  }
  return snapshot as unknown as Snapshot;
}
