/**
 * Why a Redis command failed, in two forms: `reason`, a few words anyone may read (no address,
 * no host name: it goes to the open /readyz), and `detail`, the client's own first line (which
 * may name the address: logs and authenticated readers only).
 */

export interface RedisFailure {
  reason: string;
  detail: string;
}

const BY_CODE: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ETIMEDOUT: 'connection timed out',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection broken',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENOTFOUND: 'host name not found',
  EAI_AGAIN: 'host name lookup failed',
};

/** Errors of the server's AUTH or HELLO … AUTH. */
const AUTH_FAILURE = /^(WRONGPASS|NOAUTH)\b|invalid password|invalid username-password/i;

/** IPv4 and bracketed IPv6 addresses, with a port, in a message of unknown shape. */
const ADDRESS = /\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b|\[[0-9a-fA-F:.]+\](?::\d+)?/g;

/** `error` is what the command failed with, or the last connection error when it failed for want of a connection. */
export function describeRedisError(error: unknown, commandTimeoutMs: number): RedisFailure {
  const message = error instanceof Error ? error.message : String(error);
  const detail = message.split('\n')[0]?.trim() || 'unknown error';
  const code = (error as { code?: unknown } | null)?.code;
  const name = (error as { name?: unknown } | null)?.name;
  let reason: string;
  if (typeof code === 'string') reason = BY_CODE[code] ?? code;
  else if (name === 'ReplyError') {
    reason = AUTH_FAILURE.test(detail)
      ? 'authentication failed'
      : `Redis answered ${detail.split(' ')[0]?.replace(/[^A-Za-z_-]/g, '') || 'an error'}`;
  } else if (detail === 'Command timed out') reason = `no answer within ${commandTimeoutMs} ms`;
  else if (detail.startsWith('Connection is closed')) reason = 'connection closed';
  else if (detail.startsWith("Stream isn't writeable")) reason = 'not connected';
  else reason = detail.replace(ADDRESS, '<address>');
  return { reason, detail };
}
