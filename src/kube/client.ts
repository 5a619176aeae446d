import { KubeApiError, type KubeRequest } from './http.js';
import { type KubeconfigSource, type LoadedKubeConfig, loadKubeConfig } from './kubeconfig.js';
import { CREATED, classifyKubeError, EXISTS, isAlreadyExists, mayHaveLanded, type SubmitResult } from './result.js';
import { ARGO_GROUP, ARGO_VERSION, WORKFLOW_PLURAL, type Workflow } from './workflow.js';

/** Creates Workflows. Submission sees only the finished object. */
export interface WorkflowSubmitter {
  /** cluster: creates through the Kubernetes API; dry-run: creates nothing. */
  readonly mode: 'cluster' | 'dry-run';
  /** Where it submits to, for the start-up log line. */
  readonly target: string;
  /** What works but should not go unnoticed (credentials sent in clear text): logged once at start. */
  readonly warnings?: readonly string[];
  create(workflow: Workflow, timeoutMs: number): Promise<SubmitResult>;
}

const NOT_SENT: SubmitResult = { kind: 'not_sent', retryable: false };

/** `--dry-run`, or no cluster: decides and renders, creates nothing. */
export const dryRunSubmitter: WorkflowSubmitter = {
  mode: 'dry-run',
  target: 'none (dry-run)',
  async create() {
    return NOT_SENT;
  },
};

/** Explain and rule tests: creates nothing, and hands back the Workflow it was given. */
export const capturingSubmitter: WorkflowSubmitter = {
  mode: 'dry-run',
  target: 'none (explain)',
  async create(workflow) {
    return { kind: 'not_sent', retryable: false, manifest: workflow };
  },
};

export { KubeconfigError, type KubeconfigSource, kubeconfigSource, loadKubeConfig } from './kubeconfig.js';

/** GET of a WorkflowTemplate (or, cluster-scoped, a ClusterWorkflowTemplate); rejects like every call (KubeApiError 404 when absent). */
export async function getWorkflowTemplate(
  request: KubeRequest,
  ref: { name: string; namespace: string; clusterScope: boolean },
  signal?: AbortSignal,
): Promise<void> {
  const base = `/apis/${ARGO_GROUP}/${ARGO_VERSION}`;
  const path = ref.clusterScope
    ? `${base}/clusterworkflowtemplates/${encodeURIComponent(ref.name)}`
    : `${base}/namespaces/${encodeURIComponent(ref.namespace)}/workflowtemplates/${encodeURIComponent(ref.name)}`;
  await request('GET', path, undefined, signal);
}

/** A template seen to exist is not asked about again for this long. */
const TEMPLATE_SEEN_TTL_MS = 5 * 60_000;

export async function createKubeSubmitter(
  source: Exclude<KubeconfigSource, { kind: 'none' }>,
  options: { now?: () => number; loaded?: LoadedKubeConfig } = {},
): Promise<WorkflowSubmitter> {
  const { request, server, warnings } = options.loaded ?? (await loadKubeConfig(source));
  const now = options.now ?? Date.now;
  const templatesSeen = new Map<string, number>();

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
      await getWorkflowTemplate(
        request,
        { name: ref.name, namespace, clusterScope: ref.clusterScope === true },
        signal,
      );
      templatesSeen.set(key, now());
      return null;
    } catch (err) {
      if (err instanceof KubeApiError && err.code === 404) {
        return ref.clusterScope
          ? `ClusterWorkflowTemplate ${ref.name} not found`
          : `WorkflowTemplate ${namespace}/${ref.name} not found`;
      }
      return null;
    }
  }

  return {
    mode: 'cluster',
    target: server,
    warnings,
    async create(workflow, timeoutMs) {
      const signal = AbortSignal.timeout(timeoutMs);
      // Until the POST goes out, no failure can leave a Workflow behind.
      let sent = false;
      try {
        const missing = await missingTemplate(workflow, signal);
        if (missing) {
          return { kind: 'failed', status: 404, retryable: false, reason: `404 ${missing}`, mayHaveLanded: false };
        }
        const namespace = encodeURIComponent(workflow.metadata.namespace);
        const path = `/apis/${ARGO_GROUP}/${ARGO_VERSION}/namespaces/${namespace}/${WORKFLOW_PLURAL}?fieldValidation=Strict`;
        sent = true;
        await request('POST', path, workflow, signal);
        return CREATED;
      } catch (err) {
        if (signal.aborted) {
          const reason = `timeout after ${timeoutMs} ms`;
          return { kind: 'failed', cause: 'timeout', retryable: true, reason, mayHaveLanded: sent };
        }
        if (isAlreadyExists(err, workflow.metadata.name)) return EXISTS;
        const failure = classifyKubeError(err);
        return { kind: 'failed', ...failure, mayHaveLanded: sent && mayHaveLanded(failure) };
      }
    },
  };
}
