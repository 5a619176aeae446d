import { hash } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { KubeConfig } from './k8s.js';

/**
 * The few Kubernetes API calls Kube Sentinel makes (create a Workflow, get a template, a
 * SelfSubjectAccessReview), sent with node's own HTTP client. @kubernetes/client-node still does
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

/** Answers longer than this are cut off (a Status or a template is a few KiB). */
const MAX_RESPONSE_BYTES = 4 * 1024 * 1024;

export type KubeRequest = (
  method: 'GET' | 'POST',
  path: string,
  body: unknown,
  signal?: AbortSignal,
) => Promise<unknown>;

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

/** A JSON request function for the kubeconfig's current cluster and user. */
export function kubeRequester(kc: KubeConfig): KubeRequest {
  const server = (kc.getCurrentCluster()?.server ?? '').replace(/\/+$/, '');
  const agents = new KeepAliveAgents();
  return async (method, path, body, signal) => {
    const options: https.RequestOptions = {};
    // Credentials (refreshed by client-node's authenticators when they expire) and TLS material.
    await kc.applyToHTTPSOptions(options);
    const url = new URL(server + path);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: http.OutgoingHttpHeaders = {
      ...(options.headers as http.OutgoingHttpHeaders | undefined),
      accept: 'application/json',
    };
    if (options.auth) headers.authorization = `Basic ${Buffer.from(options.auth).toString('base64')}`;
    if (payload !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = Buffer.byteLength(payload);
    }
    const agent = agents.reuse(options.agent) ?? options.agent;
    const client = url.protocol === 'https:' ? https : http;
    return new Promise<unknown>((resolve, reject) => {
      const request = client.request(
        url,
        { method, headers, ...(agent ? { agent } : {}), ...(signal ? { signal } : {}) },
        (response) => {
          const chunks: Buffer[] = [];
          let size = 0;
          response.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size <= MAX_RESPONSE_BYTES) chunks.push(chunk);
          });
          response.on('error', reject);
          response.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            const status = response.statusCode ?? 0;
            if (status < 200 || status > 299) {
              reject(new KubeApiError(status, text, headerRecord(response.headers)));
              return;
            }
            try {
              resolve(text === '' ? undefined : JSON.parse(text));
            } catch {
              reject(new Error(`the API server answered ${status} with a body that is not JSON`));
            }
          });
        },
      );
      request.on('error', reject);
      request.end(payload);
    });
  };
}
