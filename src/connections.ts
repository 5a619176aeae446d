import type { Server, ServerOptions, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { atMostEvery } from './throttle.js';

/**
 * How the HTTP server treats its clients: how long a request may take to arrive, how long an idle
 * keep-alive connection is kept, how many connections are open at once, and how connections are
 * closed on shutdown.
 */

/** The headers must arrive within this (or the whole request timeout, if shorter). */
const HEADERS_TIMEOUT_MS = 10_000;
/** How often node looks for requests past their timeouts; at most half the shortest one, so a slow client is cut off in time. */
const MAX_CHECK_INTERVAL_MS = 5_000;
/** A dropped connection is logged at most this often (a flood would otherwise flood the log). */
const DROP_LOG_INTERVAL_MS = 10_000;

type ServerLimits = Pick<Config, 'requestTimeoutMs' | 'keepAliveTimeoutMs'>;

/** fastify's server options for these limits. */
export function serverOptions(limits: ServerLimits) {
  const headersTimeout = Math.min(HEADERS_TIMEOUT_MS, limits.requestTimeoutMs);
  return {
    // A client that sends its request slowly (a byte every few seconds) is cut off once the whole
    // request has taken this long: it no longer holds a connection and a body buffer for ever.
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // No inactivity timeout: it would also cut an answer that takes long to decide (a group of
    // 10,000 alerts); the request and keep-alive timeouts already bound a silent client.
    connectionTimeout: 0,
    // fastify sets the server's requestTimeout from the option above; these two node reads only
    // when the server is created.
    http: {
      headersTimeout,
      connectionsCheckingInterval: Math.max(1, Math.min(MAX_CHECK_INTERVAL_MS, Math.floor(headersTimeout / 2))),
    } satisfies ServerOptions,
    // Closing is done by drainConnections below; a request read while closing is answered (with
    // Connection: close), not turned away with a bare 503.
    forceCloseConnections: false,
    return503OnClosing: false,
  } as const;
}

/** At most `max` connections at once: node closes any more as soon as it accepts them. */
export function limitConnections(server: Server, max: number, logger: Logger, now: () => number = Date.now): void {
  server.maxConnections = max;
  const logDue = atMostEvery(DROP_LOG_INTERVAL_MS, now);
  server.on('drop', () => {
    const leftOut = logDue();
    if (leftOut === undefined) return;
    // The drops since the last line, this one included.
    logger.warn({ maxConnections: max, dropped: leftOut + 1 }, 'connection limit reached: new connections are closed');
  });
}

/** How long an idle keep-alive connection is given to send a request once closing has begun. */
const IDLE_GRACE_MS = 1_000;

/**
 * Closing without resetting a request on its way. node's `server.close()` destroys every
 * connection it sees as idle at once; but under load a keep-alive client's next request may
 * already be in the socket, unread, and destroying the socket then resets it (the client sees
 * ECONNRESET for a request it sent). Instead, once `server.close()` has closed the listener:
 *
 * - a connection with a request in progress is answered with `Connection: close`, and node closes
 *   it after the answer;
 * - an idle one gets `graceMs` to send a request, which is answered the same way; if it has sent
 *   nothing by then (checked after node has read what the socket holds), it is closed.
 *
 * The server's close callback comes once every connection is gone.
 */
export function drainConnections(server: Server, graceMs = IDLE_GRACE_MS): void {
  const open = new Set<Socket>();
  /** Sockets with a request in progress, and its response. */
  const busy = new Map<Socket, ServerResponse>();
  let closing = false;
  // Its answer will say Connection: close, and node closes the connection once it is sent.
  const lastOnItsConnection = (response: ServerResponse) => {
    if (!response.headersSent) response.shouldKeepAlive = false;
  };

  const closeIfStillIdle = (socket: Socket, bytesRead: number): void => {
    if (socket.destroyed || busy.has(socket)) return;
    // Something arrived since: a request is on its way; give it the same time again.
    if (socket.bytesRead !== bytesRead) closeWhenIdle(socket);
    else socket.destroy();
  };
  const closeWhenIdle = (socket: Socket): void => {
    const bytesRead = socket.bytesRead;
    setTimeout(() => {
      // Timers run before the loop reads sockets: look after this turn's reads.
      setImmediate(() => closeIfStillIdle(socket, bytesRead));
    }, graceMs);
  };

  server.on('connection', (socket: Socket) => {
    open.add(socket);
    socket.once('close', () => {
      open.delete(socket);
      busy.delete(socket);
    });
  });
  server.on('request', (request, response) => {
    const socket = request.socket;
    busy.set(socket, response);
    if (closing) lastOnItsConnection(response);
    response.once('close', () => {
      busy.delete(socket);
      if (closing && !socket.destroyed) closeWhenIdle(socket);
    });
  });
  // node calls this from server.close(); it is the moment closing begins.
  server.closeIdleConnections = () => {
    if (closing) return;
    closing = true;
    for (const socket of open) {
      const response = busy.get(socket);
      if (response) lastOnItsConnection(response);
      else closeWhenIdle(socket);
    }
  };
}
