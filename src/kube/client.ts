import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { classifyKubeError, ConfigError, type SubmitResult } from '../errors.js';
import { ARGO_GROUP, ARGO_VERSION, WORKFLOW_PLURAL, type Workflow } from './workflow.js';

/** Creates Workflows. Submission sees only the finished object. */
export interface WorkflowSubmitter {
  /** cluster: creates through the Kubernetes API; dry-run: creates nothing. */
  readonly mode: 'cluster' | 'dry-run';
  /** Where it submits to, for the start-up log line. */
  readonly target: string;
  create(workflow: Workflow, timeoutMs: number): Promise<SubmitResult>;
}

export const dryRunSubmitter: WorkflowSubmitter = {
  mode: 'dry-run',
  target: 'none (dry-run)',
  async create() {
    return { kind: 'created' };
  },
};

const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

export type KubeconfigSource = { kind: 'file'; path: string } | { kind: 'in-cluster' } | { kind: 'none' };

/** --kubeconfig wins; inside a pod the service account; otherwise nothing (dry-run). */
export function kubeconfigSource(kubeconfig: string | undefined, env: Record<string, string | undefined>): KubeconfigSource {
  if (kubeconfig) {
    if (!existsSync(kubeconfig)) throw new ConfigError(`invalid --kubeconfig: ${kubeconfig} does not exist`);
    return { kind: 'file', path: kubeconfig };
  }
  if (env.KUBERNETES_SERVICE_HOST && existsSync(SERVICE_ACCOUNT_TOKEN)) return { kind: 'in-cluster' };
  return { kind: 'none' };
}

// @kubernetes/client-node is large: it is imported only when a cluster is configured, which
// keeps dry-run starts fast, and only the parts in ./k8s.js, which keeps the others fast.
type K8s = typeof import('./k8s.js');

export async function loadKubeConfig(source: KubeconfigSource): Promise<{ k8s: K8s; kc: import('./k8s.js').KubeConfig }> {
  const k8s = await import('./k8s.js');
  const kc = new k8s.KubeConfig();
  try {
    if (source.kind === 'file') kc.loadFromFile(source.path);
    else kc.loadFromCluster();
  } catch (err) {
    throw new ConfigError(`invalid --kubeconfig: ${(err as Error).message.split('\n')[0]}`);
  }
  if (!kc.getCurrentCluster()) throw new ConfigError('invalid --kubeconfig: no current cluster');
  return { k8s, kc };
}

/**
 * client-node 1.4 builds a new Agent for every request, so every create opened a new connection —
 * against a real API server, a TLS handshake per Workflow. Plain http(s) agents are replaced by
 * one keep-alive agent per distinct TLS configuration (proxy agents are left alone).
 */
class KeepAliveAgents {
  private readonly byOptions = new Map<string, http.Agent>();

  reuse(agent: unknown): http.Agent | undefined {
    if (!(agent instanceof http.Agent) || (agent.constructor !== http.Agent && agent.constructor !== https.Agent)) return undefined;
    const options = (agent as http.Agent & { options: Record<string, unknown> }).options;
    const tls = ['ca', 'cert', 'key', 'pfx', 'passphrase', 'rejectUnauthorized', 'servername'].map((name) => {
      const value = options[name];
      return Buffer.isBuffer(value) || typeof value === 'string' ? createHash('sha256').update(value).digest('hex') : String(value);
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

type CustomObjectsApi = import('./k8s.js').CustomObjectsApi;

/** GET of a WorkflowTemplate (or, cluster-scoped, a ClusterWorkflowTemplate); rejects like every client call (404 when absent). */
export async function getWorkflowTemplate(
  api: CustomObjectsApi,
  ref: { name: string; namespace: string; clusterScope: boolean },
  options?: import('./k8s.js').ConfigurationOptions,
): Promise<void> {
  if (ref.clusterScope) {
    await api.getClusterCustomObject({ group: ARGO_GROUP, version: ARGO_VERSION, plural: 'clusterworkflowtemplates', name: ref.name }, options);
  } else {
    await api.getNamespacedCustomObject({ group: ARGO_GROUP, version: ARGO_VERSION, namespace: ref.namespace, plural: 'workflowtemplates', name: ref.name }, options);
  }
}

/** A template seen to exist is not asked about again for this long. */
const TEMPLATE_SEEN_TTL_MS = 5 * 60_000;

export async function createKubeSubmitter(
  source: Exclude<KubeconfigSource, { kind: 'none' }>,
  options: { now?: () => number } = {},
): Promise<WorkflowSubmitter> {
  const { k8s, kc } = await loadKubeConfig(source);
  const api = kc.makeApiClient(k8s.CustomObjectsApi);
  const now = options.now ?? Date.now;
  const templatesSeen = new Map<string, number>();

  const agents = new KeepAliveAgents();

  /** Per-call middleware of the generated client is observable-based (its own small stub). */
  const withSignal = (signal: AbortSignal): import('./k8s.js').ConfigurationOptions => ({
    middleware: [
      {
        pre: (ctx) => {
          ctx.setSignal(signal);
          const agent = agents.reuse(ctx.getAgent());
          if (agent) ctx.setAgent(agent);
          return new k8s.Observable(Promise.resolve(ctx));
        },
        post: (response) => new k8s.Observable(Promise.resolve(response)),
      },
    ],
    middlewareMergeStrategy: 'append',
  });

  /**
   * The API server accepts a Workflow whose template does not exist (Argo fails it later, out of
   * sight): ask first, so a missing template is a clear `failed` naming it. Only a 404 stops the
   * create; anything else (no get permission, a hiccup) leaves the decision to the create itself.
   */
  async function missingTemplate(workflow: Workflow, signal: AbortSignal): Promise<string | null> {
    const ref = workflow.spec.workflowTemplateRef;
    if (!ref) return null;
    const namespace = workflow.metadata.namespace;
    const key = ref.clusterScope ? `cluster/${ref.name}` : `${namespace}/${ref.name}`;
    const seen = templatesSeen.get(key);
    if (seen !== undefined && now() - seen < TEMPLATE_SEEN_TTL_MS) return null;
    try {
      await getWorkflowTemplate(api, { name: ref.name, namespace, clusterScope: ref.clusterScope === true }, withSignal(signal));
      templatesSeen.set(key, now());
      return null;
    } catch (err) {
      if ((err as { code?: unknown }).code === 404) {
        return ref.clusterScope ? `ClusterWorkflowTemplate ${ref.name} not found` : `WorkflowTemplate ${namespace}/${ref.name} not found`;
      }
      return null;
    }
  }

  return {
    mode: 'cluster',
    target: kc.getCurrentCluster()?.server ?? 'unknown',
    async create(workflow, timeoutMs) {
      const signal = AbortSignal.timeout(timeoutMs);
      try {
        const missing = await missingTemplate(workflow, signal);
        if (missing) return { kind: 'permanent', status: 404, reason: `404 ${missing}` };
        await api.createNamespacedCustomObject(
          {
            group: ARGO_GROUP,
            version: ARGO_VERSION,
            namespace: workflow.metadata.namespace,
            plural: WORKFLOW_PLURAL,
            body: workflow,
            fieldValidation: 'Strict',
          },
          withSignal(signal),
        );
        return { kind: 'created' };
      } catch (err) {
        if (signal.aborted) return { kind: 'transient', reason: `timeout after ${timeoutMs} ms` };
        return classifyKubeError(err);
      }
    },
  };
}
