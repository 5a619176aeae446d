/**
 * The part of @kubernetes/client-node that Kube Sentinel uses: KubeConfig (kubeconfig and
 * in-cluster loading, TLS material, authentication). Named alone so that the bundler
 * (scripts/build.mjs) keeps only what it reaches, in a chunk loaded on first use
 * (src/kube/client.ts); the calls themselves go through node's HTTP client (src/kube/http.ts).
 */
export { KubeConfig } from '@kubernetes/client-node';
