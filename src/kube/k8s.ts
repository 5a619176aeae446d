/**
 * The part of @kubernetes/client-node that Kube Sentinel uses: KubeConfig (kubeconfig and
 * in-cluster loading, TLS material, authentication), imported from its own module rather than
 * the package index (which pulls in watch, exec, cp, logs, metrics and websockets), so that the
 * bundler (scripts/build.mjs) keeps only what it reaches, in a chunk loaded on first use
 * (src/kube/client.ts). The calls themselves go through node's HTTP client (src/kube/http.ts).
 */
export { KubeConfig } from '@kubernetes/client-node/dist/config.js';
