/**
 * The parts of @kubernetes/client-node that Kube Sentinel uses, named one by one so that the
 * bundler (scripts/build.mjs) keeps only what they reach: the whole package takes about 0.8 s to
 * import, these about 0.2 s once bundled. Imported on first use (src/kube/client.ts).
 */
export { AuthorizationV1Api, CustomObjectsApi, KubeConfig, Observable } from '@kubernetes/client-node';
export type { ConfigurationOptions } from '@kubernetes/client-node';
