import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { parseDocument } from 'yaml';
import { type KubeRequest, type KubeWatch, kubeRequester, kubeWatcher } from './http.js';
import type { KubeConfig } from './k8s.js';

/**
 * Where the Kubernetes connection comes from, and whether it can work: everything that can be
 * known without asking the API server is checked at start, so a kubeconfig that cannot work is a
 * setting error (exit 2, one line naming the file and the problem), never a `retry` on every
 * alert. What kubectl accepts is accepted: a plain http:// server (`kubectl proxy`) and a context
 * without a user.
 */

/** A kubeconfig that cannot be used: a bad setting, like a ConfigError (exit 2). */
export class KubeconfigError extends Error {
  override readonly name = 'KubeconfigError';
  readonly exitCode = 2;
}

const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/** A file's `context`, when given, is used instead of its current-context (a --clusters entry's). */
export type KubeconfigSource =
  | { kind: 'file'; path: string; context?: string }
  | { kind: 'in-cluster' }
  | { kind: 'none' };

/** --kubeconfig wins; inside a pod the service account; otherwise nothing (dry-run). */
export function kubeconfigSource(
  kubeconfig: string | undefined,
  env: Record<string, string | undefined>,
): KubeconfigSource {
  if (kubeconfig) {
    if (!existsSync(kubeconfig)) throw new KubeconfigError(`invalid --kubeconfig ${kubeconfig}: it does not exist`);
    return { kind: 'file', path: kubeconfig };
  }
  if (env.KUBERNETES_SERVICE_HOST && existsSync(SERVICE_ACCOUNT_TOKEN)) return { kind: 'in-cluster' };
  return { kind: 'none' };
}

export interface LoadedKubeConfig {
  request: KubeRequest;
  /** Watches on the same cluster with the same credentials (see KubeWatch). */
  watch: KubeWatch;
  /** The current cluster's server URL. */
  server: string;
  /** What works but should not go unnoticed (credentials in clear text), to log once at start. */
  warnings: string[];
}

/** Stands in for a context without a user, so that the cluster's TLS settings still apply. */
const NO_USER = 'kube-sentinel:no-user';

function firstLine(text: string): string {
  return text.split('\n')[0]?.trim() ?? '';
}

function isMapping(value: unknown): boolean {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** localhost, 127.0.0.0/8, ::1: a plain-HTTP request to these never crosses the network. */
function isLoopback(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1' || /^::ffff:127\./.test(host);
  return false;
}

/** What in a kubeconfig user would be sent to the server (or stands for it). */
function credentialKinds(user: ReturnType<KubeConfig['getUsers']>[number]): string[] {
  const kinds: string[] = [];
  if (user.token) kinds.push('a token');
  if (user.username || user.password) kinds.push('basic auth');
  if (user.certData || user.certFile) kinds.push('a client certificate');
  if (user.exec) kinds.push('an exec plugin token');
  if (user.authProvider) kinds.push(`an auth-provider token (${String(user.authProvider.name ?? 'unnamed')})`);
  return kinds;
}

/** Reads, checks and completes the kubeconfig; throws KubeconfigError for one that cannot work. */
// @kubernetes/client-node is large: it is imported only when a cluster is configured, which
// keeps dry-run starts fast, and only KubeConfig (./k8s.js), which the bundler keeps apart.
export async function loadKubeConfig(source: Exclude<KubeconfigSource, { kind: 'none' }>): Promise<LoadedKubeConfig> {
  const where = source.kind === 'file' ? `--kubeconfig ${source.path}` : 'in-cluster config';
  const chosen = source.kind === 'file' ? source.context : undefined;
  function fail(problem: string): never {
    throw new KubeconfigError(`invalid ${where}: ${problem}`);
  }
  const { KubeConfig } = await import('./k8s.js');
  const kc = new KubeConfig();
  if (source.kind === 'file') {
    let text = '';
    try {
      text = readFileSync(source.path, 'utf8');
    } catch (err) {
      fail(`cannot read it: ${(err as NodeJS.ErrnoException).code ?? firstLine(String(err))}`);
    }
    const document = parseDocument(text);
    const syntax = document.errors[0];
    if (syntax) fail(`not YAML: ${firstLine(syntax.message)}`);
    const content: unknown = document.toJS();
    if (content === null || content === undefined) fail('it is empty');
    if (!isMapping(content)) fail('not a kubeconfig (expected a mapping with clusters, contexts and current-context)');
  }
  try {
    if (source.kind === 'file') kc.loadFromFile(source.path);
    else kc.loadFromCluster();
  } catch (err) {
    fail(firstLine((err as Error).message));
  }

  if (chosen !== undefined) {
    if (!kc.getContextObject(chosen)) {
      const known = kc.getContexts().map((c) => c.name);
      fail(`context "${chosen}" is not among its contexts (${known.join(', ') || 'none'})`);
    }
    kc.setCurrentContext(chosen);
  }
  const contextName = kc.getCurrentContext();
  if (!contextName) fail('no current-context (kubectl config use-context NAME)');
  const context =
    kc.getContextObject(contextName) ?? fail(`current-context "${contextName}" is not among its contexts`);
  const cluster =
    kc.getCluster(context.cluster) ??
    fail(`context "${contextName}" names cluster "${context.cluster}", which is not among its clusters`);
  const user = context.user
    ? (kc.getUser(context.user) ??
      fail(`context "${contextName}" names user "${context.user}", which is not among its users`))
    : null;

  let url: URL | undefined;
  try {
    url = new URL(cluster.server);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:') || url.hostname === '')
    return fail(
      `cluster "${cluster.name}": server "${cluster.server}" is not a URL like https://host:port or http://host:port`,
    );

  const readable = (file: string | undefined, field: string, owner: string): void => {
    if (!file) return;
    try {
      accessSync(file, constants.R_OK);
    } catch (err) {
      fail(`${owner}: cannot read ${field} ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  };
  readable(cluster.caFile, 'certificate-authority', `cluster "${cluster.name}"`);
  if (user) {
    readable(user.certFile, 'client-certificate', `user "${user.name}"`);
    readable(user.keyFile, 'client-key', `user "${user.name}"`);
    const hasCert = Boolean(user.certFile || user.certData);
    const hasKey = Boolean(user.keyFile || user.keyData);
    if (hasCert !== hasKey)
      fail(
        hasCert
          ? `user "${user.name}": a client certificate without its key (client-key or client-key-data)`
          : `user "${user.name}": a client key without its certificate (client-certificate or client-certificate-data)`,
      );
  }

  const warnings: string[] = [];
  const plainHttp = url.protocol === 'http:';
  if (plainHttp && user && !isLoopback(url.hostname)) {
    const kinds = credentialKinds(user);
    if (kinds.length > 0)
      warnings.push(
        `${where}: server ${url.origin} is plain HTTP to a host that is not this machine, so the credentials of user "${user.name}" (${kinds.join(', ')}) would cross the network in clear text; use https://, or kubectl proxy on 127.0.0.1`,
      );
  }

  // What kubectl accepts, client-node does not: a plain http:// server unless TLS verification is
  // off (there is no TLS to verify), and, for a context without a user, it applies none of the
  // cluster's TLS settings. Both are put right here, in this process's copy of the kubeconfig.
  if (plainHttp || !user) {
    kc.loadFromOptions({
      clusters: kc.getClusters().map((c) => (c.name === cluster.name && plainHttp ? { ...c, skipTLSVerify: true } : c)),
      users: user ? kc.getUsers() : [...kc.getUsers(), { name: NO_USER }],
      contexts: kc.getContexts().map((c) => (c.name === contextName ? { ...c, user: c.user ?? NO_USER } : c)),
      currentContext: contextName,
    });
  }
  return { request: kubeRequester(kc), watch: kubeWatcher(kc), server: cluster.server, warnings };
}
