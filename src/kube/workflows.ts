import type { KubeRequest } from './http.js';
import { ARGO_GROUP, ARGO_VERSION, FAILED_PHASES, type WatchedWorkflow, WORKFLOW_PLURAL } from './workflow.js';

/**
 * What the watcher and the remediation tracker read and write of Workflows once created: a list
 * (in pages), a merge patch, and the trim of a Workflow to what they keep of it.
 */

export function workflowsPath(namespace: string): string {
  return `/apis/${ARGO_GROUP}/${ARGO_VERSION}/namespaces/${encodeURIComponent(namespace)}/${WORKFLOW_PLURAL}`;
}

/** A list of Workflows, consistent as of `resourceVersion`: the one to watch from. */
export interface WorkflowList {
  resourceVersion: string;
  items: WatchedWorkflow[];
}

/**
 * Pages of this many keep each answer well under the client's 4 MiB limit: Argo keeps the
 * template spec, the node statuses and the managed fields on a finished Workflow, tens of KiB
 * each, and failed ones are kept for a day.
 */
const LIST_PAGE_SIZE = 50;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Lists the Workflows of a namespace that `labelSelector` selects, following `continue` from page
 * to page; every page is as of the first page's resourceVersion. Rejects like every call
 * (KubeApiError; 410 Expired when a page is continued after etcd compacted past the list).
 */
export async function listWorkflows(
  request: KubeRequest,
  namespace: string,
  labelSelector: string,
  signal?: AbortSignal,
): Promise<WorkflowList> {
  const items: WatchedWorkflow[] = [];
  let resourceVersion = '';
  let token: string | undefined;
  do {
    const query = new URLSearchParams({ labelSelector, limit: String(LIST_PAGE_SIZE) });
    if (token) query.set('continue', token);
    const page: unknown = await request('GET', `${workflowsPath(namespace)}?${query}`, undefined, signal);
    if (!isRecord(page) || !isRecord(page.metadata) || !Array.isArray(page.items)) {
      throw new Error(`the list of Workflows in ${namespace} is not a WorkflowList`);
    }
    if (typeof page.metadata.resourceVersion !== 'string' || page.metadata.resourceVersion === '') {
      throw new Error(`the list of Workflows in ${namespace} has no metadata.resourceVersion`);
    }
    if (resourceVersion === '') resourceVersion = page.metadata.resourceVersion;
    for (const item of page.items) items.push(toWatchedWorkflow(item));
    token =
      typeof page.metadata.continue === 'string' && page.metadata.continue !== '' ? page.metadata.continue : undefined;
  } while (token);
  return { resourceVersion, items };
}

/**
 * Merge-patches a Workflow (RFC 7386: nested objects merge, `null` deletes), e.g.
 * `{spec: {shutdown: 'Stop'}}`. A `metadata.resourceVersion` in the patch makes it conditional:
 * 409 Conflict when the Workflow changed since. Resolves with the patched Workflow, trimmed.
 */
export async function patchWorkflow(
  request: KubeRequest,
  namespace: string,
  name: string,
  patch: object,
  signal?: AbortSignal,
): Promise<WatchedWorkflow> {
  const patched = await request(
    'PATCH',
    `${workflowsPath(namespace)}/${encodeURIComponent(name)}?fieldValidation=Strict`,
    patch,
    signal,
  );
  return toWatchedWorkflow(patched);
}

function strings(value: unknown): Record<string, string> | undefined {
  if (!isRecord(value)) return undefined;
  const copy: Record<string, string> = {};
  for (const [key, item] of Object.entries(value)) if (typeof item === 'string') copy[key] = item;
  return copy;
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** Drops the fields that are undefined, so that a trimmed Workflow holds only what it has. */
function defined<T extends object>(object: T): T {
  for (const key of Object.keys(object) as (keyof T)[]) if (object[key] === undefined) delete object[key];
  return object;
}

/**
 * A Workflow as the API server sent it, trimmed to WatchedWorkflow: the watcher keeps one per
 * remediation for days, and Argo's status.nodes alone can be many KiB. Throws, naming the
 * problem, for an object without metadata.name and metadata.namespace.
 */
export function toWatchedWorkflow(object: unknown): WatchedWorkflow {
  const metadata = isRecord(object) && isRecord(object.metadata) ? object.metadata : undefined;
  const name = text(metadata?.name);
  const namespace = text(metadata?.namespace);
  if (!metadata || !name || !namespace) {
    throw new Error(`the API server sent a Workflow without metadata.name and metadata.namespace`);
  }
  const spec = isRecord(object) && isRecord(object.spec) ? object.spec : {};
  const status = isRecord(object) && isRecord(object.status) ? object.status : undefined;
  const workflow: WatchedWorkflow = {
    metadata: defined({
      name,
      namespace,
      uid: text(metadata.uid),
      resourceVersion: text(metadata.resourceVersion),
      creationTimestamp: text(metadata.creationTimestamp),
      deletionTimestamp: text(metadata.deletionTimestamp),
      labels: strings(metadata.labels),
      annotations: strings(metadata.annotations),
    }),
  };
  const trimmedSpec = defined({
    suspend: typeof spec.suspend === 'boolean' ? spec.suspend : undefined,
    shutdown: text(spec.shutdown),
  });
  if (Object.keys(trimmedSpec).length > 0) workflow.spec = trimmedSpec;
  if (status) {
    workflow.status = defined({
      phase: text(status.phase),
      message: text(status.message),
      startedAt: text(status.startedAt),
      finishedAt: text(status.finishedAt),
      failedStep: failedStepOf(status),
    });
  }
  return workflow;
}

/** A step's message is a container's termination message or Argo's summary of it: a line or two. */
const FAILED_STEP_MAX = 512;

/**
 * The first pod that failed (by finishedAt) with a message, as `<displayName>: <message>`: the
 * cause, where later failures (an exit handler, the steps around it) only follow from it.
 */
function failedStepOf(status: Record<string, unknown>): string | undefined {
  if (!FAILED_PHASES.has(text(status.phase) ?? '') || !isRecord(status.nodes)) return undefined;
  let first: { at: string; text: string } | undefined;
  for (const node of Object.values(status.nodes)) {
    if (!isRecord(node) || node.type !== 'Pod' || !FAILED_PHASES.has(text(node.phase) ?? '')) continue;
    const message = text(node.message)?.trim();
    if (!message) continue;
    const at = text(node.finishedAt) ?? '';
    const name = text(node.displayName) ?? text(node.name) ?? 'a step';
    if (!first || at < first.at) first = { at, text: `${name}: ${message}` };
  }
  if (!first) return undefined;
  return first.text.length > FAILED_STEP_MAX ? `${first.text.slice(0, FAILED_STEP_MAX - 1)}…` : first.text;
}
