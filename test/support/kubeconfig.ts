import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';

/**
 * Writes `<dir>/kubeconfig` pointing at a fake API server and returns its path (an existing
 * file of that name is replaced). Without a token the user has no credentials.
 */
export function writeKubeconfig(dir: string, url: string, token?: string): string {
  const kubeconfig = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: 'fake-kube',
        // @kubernetes/client-node refuses a plain http:// server unless TLS verification is off.
        cluster: { server: url, 'insecure-skip-tls-verify': true },
      },
    ],
    users: [{ name: 'kube-sentinel', user: token === undefined ? {} : { token } }],
    contexts: [{ name: 'fake-kube', context: { cluster: 'fake-kube', user: 'kube-sentinel', namespace: 'argo' } }],
    'current-context': 'fake-kube',
  };
  const path = join(dir, 'kubeconfig');
  writeFileSync(path, stringify(kubeconfig), { mode: 0o600 });
  return path;
}
