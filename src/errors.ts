/**
 * Errors declared in one place: each has a code, the HTTP status it maps to, and whether
 * a retry can help (recoverable), as Alertmanager's notify errors do.
 */

/** A bad setting: the CLI prints the message on one line and exits 2. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Problems with the rules: `file:line: message` lines. */
export class RulesError extends Error {
  override readonly name = 'RulesError';
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
  }
}

/** What the Kubernetes API said to a create, reduced to what the pipeline decides on. */
export type SubmitResult =
  | { kind: 'created' }
  /** 409 AlreadyExists: a retry of a create that landed; counts as submitted. */
  | { kind: 'exists' }
  | { kind: 'transient'; reason: string; retryAfterSeconds?: number }
  | { kind: 'permanent'; reason: string; status: number };

interface KubeStatusBody {
  reason?: string;
  message?: string;
}

function parseStatusBody(body: unknown): KubeStatusBody {
  if (typeof body === 'string') {
    try {
      return parseStatusBody(JSON.parse(body));
    } catch {
      return { message: body.split('\n')[0]?.slice(0, 300) };
    }
  }
  if (body && typeof body === 'object') {
    const { reason, message } = body as Record<string, unknown>;
    return {
      reason: typeof reason === 'string' ? reason : undefined,
      message: typeof message === 'string' ? message : undefined,
    };
  }
  return {};
}

const TRANSIENT_NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ENOTFOUND',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
]);

function networkCode(err: unknown): string | undefined {
  for (let cur: unknown = err, depth = 0; cur && typeof cur === 'object' && depth < 5; depth++) {
    const { code, errno, cause } = cur as { code?: unknown; errno?: unknown; cause?: unknown };
    if (typeof code === 'string') return code;
    if (typeof errno === 'string') return errno;
    cur = cause;
  }
  return undefined;
}

/**
 * Sorts an error from a Kubernetes API call (src/kube/http.ts) into transient (worth retrying:
 * 5xx, 429, timeouts, refused connections) and permanent (other 4xx). The reason is one line
 * built from the Status body, never a raw multi-line message.
 */
export function classifyKubeError(err: unknown): SubmitResult {
  const apiCode = (err as { code?: unknown })?.code;
  if (typeof apiCode === 'number') {
    const { reason, message } = parseStatusBody((err as { body?: unknown }).body);
    const text = [String(apiCode), reason, message].filter(Boolean).join(' ');
    if (apiCode === 409 && (reason === 'AlreadyExists' || reason === undefined)) return { kind: 'exists' };
    if (apiCode === 429 || apiCode >= 500) {
      const headers = (err as { headers?: Record<string, string> }).headers ?? {};
      const retryAfter = Number.parseInt(headers['retry-after'] ?? headers['Retry-After'] ?? '', 10);
      return {
        kind: 'transient',
        reason: text,
        ...(Number.isFinite(retryAfter) && retryAfter > 0 ? { retryAfterSeconds: retryAfter } : {}),
      };
    }
    return { kind: 'permanent', reason: text, status: apiCode };
  }
  const name = (err as { name?: unknown })?.name;
  if (name === 'AbortError' || name === 'TimeoutError') return { kind: 'transient', reason: 'timeout' };
  const code = networkCode(err);
  if (code && (TRANSIENT_NETWORK_CODES.has(code) || code.startsWith('UND_ERR'))) {
    return { kind: 'transient', reason: `connection: ${code}` };
  }
  const message = err instanceof Error ? err.message : String(err);
  // Unknown failures (e.g. a FetchError without a code) are most likely network trouble: retry.
  return { kind: 'transient', reason: message.split('\n')[0]?.slice(0, 300) ?? 'unknown error' };
}
