/** How the escalator reaches an Alertmanager over HTTP: its endpoints, answers and waits. */

/** One Alertmanager of the set. */
export interface Endpoint {
  /** `…/api/v2/alerts`, without credentials. */
  url: string;
  /** For logs: the base URL without credentials. */
  name: string;
  authorization?: string;
}

/** The base URL as configured (credentials allowed, as Prometheus allows them) → where to POST. */
export function endpointOf(raw: string): Endpoint {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`escalation URL ${withoutCredentials(raw)} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`escalation URL ${withoutCredentials(raw)} is not an http(s) URL`);
  }
  // fetch refuses URLs with credentials: they become a basic Authorization header.
  const authorization =
    url.username || url.password
      ? `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}`
      : undefined;
  url.username = '';
  url.password = '';
  const base = url.pathname.replace(/\/+$/, '').replace(/\/api\/v2\/alerts$/, '');
  url.pathname = base;
  const name = url.href.replace(/\/+$/, '');
  url.pathname = `${base}/api/v2/alerts`;
  return { url: url.href, name, ...(authorization ? { authorization } : {}) };
}

function withoutCredentials(raw: string): string {
  return JSON.stringify(raw.replace(/\/\/[^/@\s]*@/, '//'));
}

/** An alert's identity in Alertmanager is its label set, whatever the order. */
export function identityOf(labels: Record<string, string>): string {
  return JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Alertmanager answers an error as a JSON string: the text inside, without the quoting. */
export function answerText(body: string): string {
  const text = body.trim();
  if (!text.startsWith('"')) return text;
  try {
    const inner: unknown = JSON.parse(text);
    return typeof inner === 'string' ? inner.trim() : text;
  } catch {
    return text;
  }
}

export function retryAfterOf(header: string | null): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(header);
  return Number.isFinite(date) ? Math.max(0, date - Date.now()) : undefined;
}

export function describeFetchError(err: unknown, timeoutMs: number): string {
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) {
    return err.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : 'request aborted';
  }
  const cause = err instanceof Error && err.cause instanceof Error ? err.cause : undefined;
  const code = cause && 'code' in cause && typeof cause.code === 'string' ? cause.code : undefined;
  return code ?? (cause ?? (err instanceof Error ? err : undefined))?.message ?? String(err);
}

export function unrefSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    // A retry waiting for an Alertmanager never keeps a finished process alive; close() ends it anyway.
    const timer = setTimeout(done, ms);
    timer.unref();
    signal.addEventListener('abort', done, { once: true });
  });
}
