import { hash } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { StringDecoder } from 'node:string_decoder';
import type { KubeConfig } from './k8s.js';

/**
 * The few Kubernetes API calls Kube Sentinel makes (create, list, merge-patch and watch
 * Workflows, get a template, a SelfSubjectAccessReview), sent with node's own HTTP client. @kubernetes/client-node still does
 * what is hard to get right: reading the kubeconfig or the in-cluster service account, TLS
 * material, and every way of authenticating (tokens, token files, client certificates, exec
 * plugins, OIDC, proxies) — `applyToHTTPSOptions` before each call, so refreshed credentials are
 * used. Its generated API client is not used: per create it cost about four times the CPU of the
 * request itself (node-fetch, its object serializer, middleware observables), which made
 * Workflow submission the receiver's most expensive path (bench/README.md, scenario 2).
 */

/** A non-2xx answer, shaped as client-node's ApiException: `code`, the `body` text, the `headers`. */
export class KubeApiError extends Error {
  override readonly name = 'KubeApiError';
  constructor(
    readonly code: number,
    readonly body: string,
    readonly headers: Record<string, string>,
  ) {
    super(`HTTP ${code}: ${body.split('\n')[0]?.slice(0, 300) ?? ''}`);
  }
}

/**
 * Answers longer than this are refused (a Status or a template is a few KiB, a page of a
 * Workflow list a few hundred), and so is a watch event longer than this (etcd stores at most
 * 1.5 MiB per object).
 */
const MAX_RESPONSE_BYTES = 4 * 1024 * 1024;

/** One JSON call. A PATCH body is a JSON merge patch (RFC 7386), the patch custom resources accept. */
export type KubeRequest = (
  method: 'GET' | 'POST' | 'PATCH',
  path: string,
  body: unknown,
  signal?: AbortSignal,
) => Promise<unknown>;

/**
 * A watch (`path` with `watch=true` in its query): each line of the stream parsed as JSON, as it
 * arrives. A non-2xx answer rejects as KubeApiError like every call; a connection that breaks
 * before the stream's end rejects (ECONNRESET); the iteration ends when the API server ends the
 * stream (timeoutSeconds). Aborting `signal` ends it with an AbortError.
 */
export type KubeWatch = (path: string, signal: AbortSignal) => AsyncIterable<unknown>;

/**
 * client-node builds a new Agent for every call, so every call would open a new connection —
 * against a real API server, a TLS handshake per Workflow. Plain http(s) agents are replaced by
 * one keep-alive agent per distinct TLS configuration (proxy agents are used as given).
 */
export class KeepAliveAgents {
  private readonly byOptions = new Map<string, http.Agent>();

  reuse(agent: unknown): http.Agent | undefined {
    if (!(agent instanceof http.Agent) || (agent.constructor !== http.Agent && agent.constructor !== https.Agent))
      return undefined;
    const options = (agent as http.Agent & { options: Record<string, unknown> }).options;
    const tls = ['ca', 'cert', 'key', 'pfx', 'passphrase', 'rejectUnauthorized', 'servername'].map((name) => {
      const value = options[name];
      return Buffer.isBuffer(value) || typeof value === 'string' ? hash('sha256', value, 'hex') : String(value);
    });
    const key = `${agent instanceof https.Agent ? 'https' : 'http'}:${tls.join(':')}`;
    let shared = this.byOptions.get(key);
    if (!shared) {
      const keepAlive = { ...options, keepAlive: true, maxSockets: 16 };
      shared = agent instanceof https.Agent ? new https.Agent(keepAlive) : new http.Agent(keepAlive);
      this.byOptions.set(key, shared);
    }
    return shared;
  }
}

function headerRecord(headers: http.IncomingHttpHeaders): Record<string, string> {
  const record: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) record[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return record;
}

interface Prepared {
  url: URL;
  headers: http.OutgoingHttpHeaders;
  /** The agent client-node built for this call (TLS material, proxy). */
  agent: http.Agent | undefined;
  client: typeof http | typeof https;
}

/** Credentials (refreshed by client-node's authenticators when they expire) and TLS material, per call. */
async function prepare(kc: KubeConfig, server: string, path: string): Promise<Prepared> {
  const options: https.RequestOptions = {};
  await kc.applyToHTTPSOptions(options);
  const url = new URL(server + path);
  const headers: http.OutgoingHttpHeaders = {
    ...(options.headers as http.OutgoingHttpHeaders | undefined),
    accept: 'application/json',
  };
  if (options.auth) headers.authorization = `Basic ${Buffer.from(options.auth).toString('base64')}`;
  const agent = options.agent instanceof http.Agent ? options.agent : undefined;
  return { url, headers, agent, client: url.protocol === 'https:' ? https : http };
}

function serverOf(kc: KubeConfig): string {
  return (kc.getCurrentCluster()?.server ?? '').replace(/\/+$/, '');
}

/** The body of an answer, up to MAX_RESPONSE_BYTES; `overLimit` when there was more. */
function readBody(response: http.IncomingMessage): Promise<{ text: string; overLimit: boolean }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    response.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_RESPONSE_BYTES) chunks.push(chunk);
    });
    response.on('error', reject);
    response.on('end', () =>
      resolve({ text: Buffer.concat(chunks).toString('utf8'), overLimit: size > MAX_RESPONSE_BYTES }),
    );
  });
}

/** A JSON request function for the kubeconfig's current cluster and user. */
export function kubeRequester(kc: KubeConfig): KubeRequest {
  const server = serverOf(kc);
  const agents = new KeepAliveAgents();
  return async (method, path, body, signal) => {
    const { url, headers, agent: given, client } = await prepare(kc, server, path);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    if (payload !== undefined) {
      headers['content-type'] = method === 'PATCH' ? 'application/merge-patch+json' : 'application/json';
      headers['content-length'] = Buffer.byteLength(payload);
    }
    const agent = agents.reuse(given) ?? given;
    const send = (retried: boolean) =>
      new Promise<unknown>((resolve, reject) => {
        const request = client.request(
          url,
          { method, headers, ...(agent ? { agent } : {}), ...(signal ? { signal } : {}) },
          (response) => {
            readBody(response).then(({ text, overLimit }) => {
              const status = response.statusCode ?? 0;
              if (status < 200 || status > 299) {
                reject(new KubeApiError(status, text, headerRecord(response.headers)));
                return;
              }
              if (overLimit) {
                reject(new Error(`the API server answered ${status} with a body over ${MAX_RESPONSE_BYTES} bytes`));
                return;
              }
              try {
                resolve(text === '' ? undefined : JSON.parse(text));
              } catch {
                reject(new Error(`the API server answered ${status} with a body that is not JSON`));
              }
            }, reject);
          },
        );
        request.on('error', (err: NodeJS.ErrnoException) => {
          // A kept-alive socket the API server closed while it sat idle (it restarted, or timed the
          // connection out) fails the next request before it was read: sent again once on a new one.
          // Every call here is idempotent (a create of the same name answers 409).
          if (!retried && request.reusedSocket && STALE_SOCKET.has(err.code ?? '') && !signal?.aborted) {
            resolve(send(true));
            return;
          }
          reject(err);
        });
        request.end(payload);
      });
    return send(false);
  };
}

const STALE_SOCKET = new Set(['ECONNRESET', 'EPIPE']);

/** Idle time before TCP keep-alive probes start on a watch's connection, which may be quiet for minutes. */
const WATCH_KEEPALIVE_MS = 30_000;

/**
 * A watch function for the kubeconfig's current cluster and user. A watch holds its connection
 * for minutes, so it does not take one from the keep-alive pool the calls share: it uses the
 * agent client-node built for it, whose connection closes with the watch.
 */
export function kubeWatcher(kc: KubeConfig): KubeWatch {
  const server = serverOf(kc);
  return (path, signal) => ({ [Symbol.asyncIterator]: () => watchStream(kc, server, path, signal) });
}

async function* watchStream(
  kc: KubeConfig,
  server: string,
  path: string,
  signal: AbortSignal,
): AsyncGenerator<unknown, void, undefined> {
  const { url, headers, agent, client } = await prepare(kc, server, path);
  const response = await new Promise<http.IncomingMessage>((resolve, reject) => {
    const request = client.request(url, { method: 'GET', headers, ...(agent ? { agent } : {}), signal }, resolve);
    request.on('socket', (socket) => socket.setKeepAlive(true, WATCH_KEEPALIVE_MS));
    request.on('error', reject);
    request.end();
  });
  try {
    const status = response.statusCode ?? 0;
    if (status < 200 || status > 299) {
      const { text } = await readBody(response);
      throw new KubeApiError(status, text, headerRecord(response.headers));
    }
    const decoder = new StringDecoder('utf8');
    let pending = '';
    for await (const chunk of response as AsyncIterable<Buffer>) {
      pending += decoder.write(chunk);
      let newline = pending.indexOf('\n');
      while (newline >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        if (line.trim() !== '') yield parseWatchLine(line);
        newline = pending.indexOf('\n');
      }
      if (pending.length > MAX_RESPONSE_BYTES) {
        throw new Error(`the API server sent a watch event over ${MAX_RESPONSE_BYTES} bytes`);
      }
    }
    // A destroyed socket ends some streams without an error: only a complete one ended cleanly.
    if (!response.complete) throw Object.assign(new Error('the watch connection broke'), { code: 'ECONNRESET' });
    pending += decoder.end();
    if (pending.trim() !== '') yield parseWatchLine(pending);
  } finally {
    // Also when the caller stops reading early: the connection is not left open.
    if (!response.complete) response.destroy();
  }
}

function parseWatchLine(line: string): unknown {
  try {
    return JSON.parse(line);
  } catch {
    throw new Error(`the API server sent a watch event that is not JSON: ${line.slice(0, 200)}`);
  }
}
