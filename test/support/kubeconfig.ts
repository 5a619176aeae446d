import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';

/**
 * Writes `<dir>/kubeconfig` pointing at a fake API server and returns its path (an existing
 * file of that name is replaced). Without a token (or a client certificate in `tls`) the user has
 * no credentials.
 */
export function writeKubeconfig(
  dir: string,
  url: string,
  token?: string,
  tls?: { ca: string; cert?: string; key?: string },
): string {
  const base64 = (pem: string) => Buffer.from(pem).toString('base64');
  const user: Record<string, string> = token === undefined ? {} : { token };
  if (tls?.cert && tls.key) {
    user['client-certificate-data'] = base64(tls.cert);
    user['client-key-data'] = base64(tls.key);
  }
  const kubeconfig = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: 'fake-kube',
        // Over https the server is verified against the given CA. (Plain http:// needs no
        // insecure-skip-tls-verify: see writeProxyKubeconfig.)
        cluster: tls
          ? { server: url, 'certificate-authority-data': base64(tls.ca) }
          : { server: url, 'insecure-skip-tls-verify': true },
      },
    ],
    users: [{ name: 'kube-sentinel', user }],
    contexts: [{ name: 'fake-kube', context: { cluster: 'fake-kube', user: 'kube-sentinel', namespace: 'argo' } }],
    'current-context': 'fake-kube',
  };
  const path = join(dir, 'kubeconfig');
  writeFileSync(path, stringify(kubeconfig), { mode: 0o600 });
  return path;
}

/**
 * What `kubectl proxy` users have: a cluster with a plain http:// server and a context without a
 * user (no credentials, no TLS settings). Written as `<dir>/<name>`; returns its path.
 */
export function writeProxyKubeconfig(dir: string, url: string, name = 'proxy-kubeconfig'): string {
  const kubeconfig = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'proxy', cluster: { server: url } }],
    contexts: [{ name: 'proxy', context: { cluster: 'proxy', namespace: 'argo' } }],
    'current-context': 'proxy',
  };
  const path = join(dir, name);
  writeFileSync(path, stringify(kubeconfig), { mode: 0o600 });
  return path;
}
