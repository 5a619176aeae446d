/**
 * A fake Kubernetes API server that answers like the real one, closely enough that
 * @kubernetes/client-node 1.4 (CustomObjectsApi, AuthorizationV1Api) works against it unchanged:
 * real `Status` bodies, Argo Workflow validation as with fieldValidation=Strict, and fault
 * injection for the failures Kube Sentinel must classify (transient or permanent).
 *
 * Order of checks on a create, as in the API server: authentication (401), authorization (403),
 * injected faults, body size (413), media type (415), decoding (400), validation (422), storage
 * (409). Only Workflows can be created; templates are added with addWorkflowTemplate().
 *
 * Workflows can also be listed in pages, watched (./fake-kube-watch.ts), merge-patched and
 * deleted; test helpers play the Argo controller (setPhase) and people (resume, deleteWorkflow),
 * and every change is seen by the open watches as the API server would send it.
 *
 * Namespaces and apps/v1 Deployments, StatefulSets and DaemonSets (./fake-kube-objects.ts) can be
 * read and listed, with the annotations tests give them (putObject, annotate), for opt-outs.
 */
import { randomInt, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { ArgoLabel, type WorkflowSpec } from '../../src/kube/workflow.js';
import { argoObjectProblems, type FieldProblem, GENERATED_SUFFIX_LENGTH, labelProblems } from './argo-schema.js';
import {
  APPS_RESOURCES,
  CORE_RESOURCES,
  FakeObjects,
  type ObjectKind,
  type ObjectRef,
  type StoredResource,
} from './fake-kube-objects.js';
import {
  type Answer,
  DEFAULT_MESSAGE,
  defaultReason,
  type InjectedFailure,
  json,
  SERVICE_ACCOUNT_USER,
  type Status,
  type StatusDetails,
  status,
  statusAnswer,
} from './fake-kube-status.js';
import { type ExpiredWatchAnswer, mergePatch, type Selector, WatchHub } from './fake-kube-watch.js';

export type { ObjectKind, ObjectRef, StoredResource, WorkloadObjectKind } from './fake-kube-objects.js';

export type {
  InjectedFailure,
  Status,
  StatusCause,
  StatusDetails,
  StatusReason,
} from './fake-kube-status.js';

const ARGO_API = 'argoproj.io/v1alpha1';
/** The API server's limit on request bodies (3 MiB). */
export const MAX_REQUEST_BODY_BYTES = 3 * 1024 * 1024;

/** What the server sets on a stored object, plus whatever metadata the client sent. */
export interface StoredMetadata {
  name: string;
  namespace?: string;
  generateName?: string;
  uid: string;
  resourceVersion: string;
  generation: number;
  creationTimestamp: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  [field: string]: unknown;
}

export interface StoredObject {
  apiVersion: string;
  kind: string;
  metadata: StoredMetadata;
  spec: Record<string, unknown>;
  [field: string]: unknown;
}

/**
 * A created Workflow as stored. `spec` is typed as the subset Kube Sentinel writes; with
 * `validate: false` it holds whatever was sent.
 */
export interface StoredWorkflow extends Omit<StoredObject, 'spec'> {
  metadata: StoredMetadata & { namespace: string };
  /** With what a merge patch from Kube Sentinel (stop) adds. */
  spec: WorkflowSpec & { shutdown?: string };
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
}

export interface FakeKubeOptions {
  /** When set, every request needs `Authorization: Bearer <token>` (401 otherwise). */
  token?: string;
  /** Validate created Workflows against the Argo CRD (default true). */
  validate?: boolean;
  /** Clock for creationTimestamp. */
  now?: () => number;
  /**
   * Serve HTTPS with this key and certificate (PEM). With `clientCa`, as an API server with
   * client-certificate authentication: a client without a certificate signed by it is refused
   * at the TLS handshake.
   */
  tls?: { key: string; cert: string; clientCa?: string };
  /** How a watch from a forgotten resourceVersion is refused (default `event`; see FakeKube.expiredWatches). */
  expiredWatches?: ExpiredWatchAnswer;
}

/** The phases Argo's controller gives a Workflow. */
export type WorkflowPhase = 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Error';

const FINAL_PHASES: ReadonlySet<WorkflowPhase> = new Set(['Succeeded', 'Failed', 'Error']);

export interface FakeKube {
  /** `http://127.0.0.1:<port>` (`https://` with `tls`) */
  readonly url: string;
  readonly port: number;
  /** Created Workflows in creation order, as stored (a copy of the list). */
  readonly workflows: StoredWorkflow[];
  workflowsIn(namespace: string): StoredWorkflow[];
  readonly workflowTemplates: StoredObject[];
  readonly clusterWorkflowTemplates: StoredObject[];
  /** Adds a WorkflowTemplate (validated unless `validate: false`); the default spec is a minimal valid one. */
  addWorkflowTemplate(namespace: string, name: string, spec?: Record<string, unknown>): StoredObject;
  addClusterWorkflowTemplate(name: string, spec?: Record<string, unknown>): StoredObject;
  /** Every request received, in order. */
  readonly requests: RecordedRequest[];
  /** The next `count` Workflow creates are answered with this Status instead of being stored. */
  failNext(count: number, failure: InjectedFailure): void;
  /**
   * The next `count` Workflow creates are answered `ms` late. With `store: true` the create takes
   * effect at once (a create that landed after the client gave up); with `store: false` it takes
   * effect only when answered, and not at all if the client has hung up by then.
   */
  delayNext(count: number, ms: number, options: { store: boolean }): void;
  /** Creates in this namespace get 403 Forbidden, as RBAC would answer, and access reviews say so. */
  denyCreate(namespace: string): void;
  /**
   * Access reviews of VERB on workflows in this namespace answer `allowed: false`. `create` is
   * denyCreate (the creates are refused too); other verbs are denied in access reviews only.
   */
  deny(namespace: string, verb: string): void;
  /** Resolves once at least `count` Workflows are stored (a latch for delayed creates). */
  waitForWorkflows(count: number): Promise<void>;
  /** Stops listening and drops open connections: clients get ECONNREFUSED. */
  refuseConnections(): Promise<void>;
  /** Listens again on the same port. */
  acceptConnections(): Promise<void>;
  /** The stored Workflow (a copy), for assertions; undefined when there is none. */
  getWorkflow(namespace: string, name: string): StoredWorkflow | undefined;
  /**
   * Plays Argo's controller: status.phase and status.message (removed when not given),
   * status.startedAt on the first phase, status.finishedAt on a final one, and the labels
   * `workflows.argoproj.io/phase` and `workflows.argoproj.io/completed` ("true" once final,
   * "false" before, as Argo sets them). Throws when there is no such Workflow.
   */
  setPhase(namespace: string, name: string, phase: WorkflowPhase, options?: { message?: string }): StoredWorkflow;
  /** Plays `argo resume`: removes spec.suspend and, given an actor, sets the label `workflows.argoproj.io/actor`. */
  resume(namespace: string, name: string, actor?: string): StoredWorkflow;
  /** Deletes the Workflow (as Argo's TTL or a person does); watches see DELETED with its last state. */
  deleteWorkflow(namespace: string, name: string): StoredWorkflow;
  /** The global resourceVersion counter (etcd's revision): every change of any object bumps it. */
  readonly resourceVersion: string;
  /** Watch streams open now. */
  readonly openWatches: number;
  /** Resolves once exactly `count` watches are open (a latch for a client's (re)connection). */
  waitForWatches(count: number): Promise<void>;
  /** Sends a BOOKMARK with the current resourceVersion to every watch that allows bookmarks. */
  bookmark(): void;
  /** Destroys every open watch connection abruptly (no end of the stream), as a lost connection. */
  dropWatches(): void;
  /** Ends every open watch cleanly, as the API server does when timeoutSeconds is over. */
  endWatches(): void;
  /**
   * Forgets the change history up to now (etcd compaction, the watch cache's window moving on): a
   * watch from an older resourceVersion, or a list continued from an older page, gets 410 Expired.
   */
  compactHistory(): void;
  /**
   * How a too-old watch is refused: `event` (the watch cache: 200, then one ERROR event with a 410
   * Expired Status, then the end) or `status` (a plain HTTP 410 Status, as watches served from
   * etcd directly can be). Clients must handle both.
   */
  expiredWatches: ExpiredWatchAnswer;
  /**
   * Adds a Namespace or a Deployment, StatefulSet or DaemonSet (SPEC §11 reads their annotations),
   * or replaces the annotations of the one there. Clients can get and list them (`/api/v1/namespaces`,
   * `/apis/apps/v1/...`), never change them.
   */
  putObject(ref: ObjectRef, annotations?: Record<string, string>): StoredResource;
  /** Sets (a string) or removes (null) annotations, as `kubectl annotate` does; throws when there is no such object. */
  annotate(ref: ObjectRef, annotations: Record<string, string | null>): StoredResource;
  /** Deletes a Namespace or workload: reads of it answer 404 NotFound. */
  deleteObject(ref: ObjectRef): void;
  /** A copy of the stored Namespace or workload, for assertions. */
  getObject(ref: ObjectRef): StoredResource | undefined;
  /** Every get and list of this kind answers with the failure (403, 500, 503, …) until cleared with undefined. */
  failReads(kind: ObjectKind, failure: InjectedFailure | undefined): void;
  /** As RBAC without get/list/watch on this kind: its reads answer 403 Forbidden, and access reviews allowed: false. */
  forbidReads(kind: ObjectKind): void;
  /** How many requests reached this path (any method, any query). */
  requestsTo(path: string): number;
  /**
   * Forgets stored objects, recorded requests, injected faults and denials (not the listener
   * state); drops open watches and forgets the history, so a watch from before is too old.
   */
  reset(): void;
  close(): Promise<void>;
}

const notFoundPath = (): Status => status(404, 'the server could not find the requested resource');

function notFound(plural: string, name: string): Status {
  return status(404, `${plural}.argoproj.io "${name}" not found`, { name, group: 'argoproj.io', kind: plural });
}

function alreadyExists(name: string): Status {
  return status(409, `workflows.argoproj.io "${name}" already exists`, {
    name,
    group: 'argoproj.io',
    kind: 'workflows',
  });
}

function conflict(name: string): Status {
  return status(
    409,
    `Operation cannot be fulfilled on workflows.argoproj.io "${name}": the object has been modified; please apply your changes to the latest version and try again`,
    { name, group: 'argoproj.io', kind: 'workflows' },
    'Conflict',
  );
}

/** The watch cache's answer to a watch from a resourceVersion it no longer has. */
function tooOld(resourceVersion: number, oldest: number): Status {
  return status(410, `too old resource version: ${resourceVersion} (${oldest})`, {}, 'Expired');
}

const CONTINUE_TOO_OLD =
  'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.';

function unsupportedPatch(contentType: string): Status {
  const message =
    contentType === 'application/json-patch+json' || contentType === 'application/apply-patch+yaml'
      ? `the fake Kubernetes API does not implement ${contentType}; it accepts application/merge-patch+json`
      : // What the API server answers for a custom resource, which has no strategic merge patch.
        `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml`;
  return status(415, message);
}

function forbiddenCreate(namespace: string): Status {
  return status(
    403,
    `workflows.argoproj.io is forbidden: User "${SERVICE_ACCOUNT_USER}" cannot create resource "workflows" ` +
      `in API group "argoproj.io" in the namespace "${namespace}"`,
    { group: 'argoproj.io', kind: 'workflows' },
  );
}

function invalid(name: string, problems: FieldProblem[]): Status {
  const rendered = problems.map((problem) => `${problem.field}: ${problem.message}`);
  const summary = rendered.length === 1 ? rendered[0]! : `[${rendered.join(', ')}]`;
  return status(422, `Workflow.argoproj.io "${name}" is invalid: ${summary}`, {
    name,
    group: 'argoproj.io',
    kind: 'Workflow',
    causes: problems.map((problem) => ({ reason: problem.reason, message: problem.message, field: problem.field })),
  });
}

function injected(failure: InjectedFailure, namespace: string, name: string): Status {
  const reason = failure.reason ?? defaultReason(failure.status);
  // Only errors about the object itself name it; throttling and server errors do not.
  const aboutObject =
    reason === 'AlreadyExists' || reason === 'Conflict' || reason === 'NotFound' || reason === 'Forbidden';
  const details: StatusDetails = aboutObject ? { name, group: 'argoproj.io', kind: 'workflows' } : {};
  if (reason === 'Forbidden') delete details.name;
  if (failure.retryAfterSeconds !== undefined) details.retryAfterSeconds = failure.retryAfterSeconds;
  const message =
    failure.message ??
    (reason === 'AlreadyExists'
      ? alreadyExists(name).message
      : reason === 'Forbidden'
        ? forbiddenCreate(namespace).message
        : reason === 'NotFound'
          ? notFound('workflows', name).message
          : (DEFAULT_MESSAGE[reason] ?? `${reason}: injected by the fake Kubernetes API`));
  return status(failure.status, message, details, reason);
}

/** Kubernetes' SimpleNameGenerator alphabet: no vowels, no look-alikes. */
const NAME_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';
const MAX_GENERATED_BASE = 63 - GENERATED_SUFFIX_LENGTH;

function generatedName(base: string): string {
  let suffix = '';
  for (let i = 0; i < GENERATED_SUFFIX_LENGTH; i++) suffix += NAME_ALPHABET[randomInt(NAME_ALPHABET.length)];
  return `${base.slice(0, MAX_GENERATED_BASE)}${suffix}`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Equality-based label selectors (`a=b`, `a==b`, `a!=b`, `a`, `!a`), enough for listing in tests. */
function parseLabelSelector(selector: string | undefined): Selector | Status {
  if (!selector) return () => true;
  const requirements: Selector[] = [];
  for (const raw of selector.split(',')) {
    const term = raw.trim();
    const match = /^(!?)([^!=\s]+)\s*(?:(==|=|!=)\s*(\S*))?$/.exec(term);
    if (!match)
      return status(400, `unable to parse requirement: found '${term}', expected: '=', '!=', '==', 'in', notin'`);
    const [, not, key, operator, value] = match;
    if (not && operator) return status(400, `unable to parse requirement: found '${term}'`);
    if (!operator) requirements.push((labels) => (labels?.[key!] !== undefined) !== Boolean(not));
    else if (operator === '!=') requirements.push((labels) => labels?.[key!] !== value);
    else requirements.push((labels) => labels?.[key!] === value);
  }
  return (labels) => requirements.every((requirement) => requirement(labels));
}

/** What listing and lookup need of Workflows and templates alike. */
type Listable = { metadata: StoredMetadata };

/** The rest of a list served in pages (`limit`), as of the resourceVersion of its first page. */
interface ListRemainder {
  resourceVersion: number;
  items: readonly Listable[];
}

/** strconv.ParseBool, as the API server reads `watch` and `allowWatchBookmarks`. */
function isTrue(value: string | null): boolean {
  return value !== null && ['1', 't', 'T', 'true', 'TRUE', 'True'].includes(value);
}

interface Delay {
  ms: number;
  store: boolean;
}

interface ReceivedBody {
  bytes: Buffer;
  tooLarge: boolean;
}

const MINIMAL_TEMPLATE_SPEC = {
  entrypoint: 'main',
  templates: [{ name: 'main', container: { image: 'busybox:1.36', command: ['true'] } }],
};

class FakeKubeServer implements FakeKube {
  readonly requests: RecordedRequest[] = [];
  private readonly stored: StoredWorkflow[] = [];
  private readonly templates: StoredObject[] = [];
  private readonly clusterTemplates: StoredObject[] = [];
  private failures: InjectedFailure[] = [];
  private delays: Delay[] = [];
  private readonly denied = new Set<string>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private waiters: { count: number; resolve: () => void; reject: (error: Error) => void }[] = [];
  private revision = 1000;
  private readonly hub = new WatchHub<StoredWorkflow>((resourceVersion) => ({
    kind: 'Workflow',
    apiVersion: ARGO_API,
    metadata: { resourceVersion: String(resourceVersion) },
  }));
  private readonly listRemainders = new Map<string, ListRemainder>();
  private readonly objects = new FakeObjects({
    nextResourceVersion: () => {
      this.revision += 1;
      return String(this.revision);
    },
    timestamp: () => this.timestamp(),
  });
  private listening = false;
  private closed = false;
  port = 0;
  expiredWatches: ExpiredWatchAnswer;

  constructor(
    private readonly server: Server,
    private readonly options: Required<Pick<FakeKubeOptions, 'validate' | 'now' | 'expiredWatches'>> &
      Pick<FakeKubeOptions, 'token'> & { scheme: 'http' | 'https' },
  ) {
    this.expiredWatches = options.expiredWatches;
  }

  get resourceVersion(): string {
    return String(this.revision);
  }

  get openWatches(): number {
    return this.hub.openWatches;
  }

  get url(): string {
    return `${this.options.scheme}://127.0.0.1:${this.port}`;
  }

  get workflows(): StoredWorkflow[] {
    return [...this.stored];
  }

  workflowsIn(namespace: string): StoredWorkflow[] {
    return this.stored.filter((workflow) => workflow.metadata.namespace === namespace);
  }

  get workflowTemplates(): StoredObject[] {
    return [...this.templates];
  }

  get clusterWorkflowTemplates(): StoredObject[] {
    return [...this.clusterTemplates];
  }

  addWorkflowTemplate(
    namespace: string,
    name: string,
    spec: Record<string, unknown> = MINIMAL_TEMPLATE_SPEC,
  ): StoredObject {
    const template = this.serverSide({
      apiVersion: ARGO_API,
      kind: 'WorkflowTemplate',
      metadata: { name, namespace },
      spec,
    });
    this.templates.push(template);
    return template;
  }

  addClusterWorkflowTemplate(name: string, spec: Record<string, unknown> = MINIMAL_TEMPLATE_SPEC): StoredObject {
    const template = this.serverSide({
      apiVersion: ARGO_API,
      kind: 'ClusterWorkflowTemplate',
      metadata: { name },
      spec,
    });
    this.clusterTemplates.push(template);
    return template;
  }

  /** Templates added by tests are checked too, so a test cannot rely on one the cluster would refuse. */
  private serverSide(object: {
    apiVersion: string;
    kind: string;
    metadata: Record<string, unknown>;
    spec: Record<string, unknown>;
  }): StoredObject {
    if (this.options.validate) {
      const problems = argoObjectProblems(object);
      if (problems.length > 0) {
        throw new Error(`invalid ${object.kind}: ${problems.map((p) => `${p.field}: ${p.message}`).join('; ')}`);
      }
    }
    return structuredClone({ ...object, metadata: { ...object.metadata, ...this.serverMetadata() } }) as StoredObject;
  }

  private serverMetadata(): Pick<StoredMetadata, 'uid' | 'resourceVersion' | 'generation' | 'creationTimestamp'> {
    this.revision += 1;
    return {
      uid: randomUUID(),
      resourceVersion: String(this.revision),
      generation: 1,
      creationTimestamp: this.timestamp(),
    };
  }

  /** Now from the fake's clock, in whole seconds as the API server and Argo store times. */
  private timestamp(): string {
    return new Date(Math.floor(this.options.now() / 1000) * 1000).toISOString().replace('.000Z', 'Z');
  }

  getWorkflow(namespace: string, name: string): StoredWorkflow | undefined {
    const found = this.stored.find(
      (workflow) => workflow.metadata.namespace === namespace && workflow.metadata.name === name,
    );
    return found ? structuredClone(found) : undefined;
  }

  setPhase(namespace: string, name: string, phase: WorkflowPhase, options: { message?: string } = {}): StoredWorkflow {
    return this.edit(namespace, name, (workflow) => {
      const now = this.timestamp();
      const final = FINAL_PHASES.has(phase);
      const status: Record<string, unknown> = isRecord(workflow.status) ? workflow.status : {};
      status.phase = phase;
      if (options.message !== undefined) status.message = options.message;
      else delete status.message;
      status.startedAt ??= now;
      if (final) status.finishedAt = now;
      else delete status.finishedAt;
      workflow.status = status;
      workflow.metadata.labels = {
        ...workflow.metadata.labels,
        [ArgoLabel.Phase]: phase,
        [ArgoLabel.Completed]: final ? 'true' : 'false',
      };
    });
  }

  resume(namespace: string, name: string, actor?: string): StoredWorkflow {
    if (actor !== undefined) {
      const problems = labelProblems({ [ArgoLabel.Actor]: actor });
      if (problems.length > 0) throw new Error(`invalid actor label: ${problems.join('; ')}`);
    }
    return this.edit(namespace, name, (workflow) => {
      delete workflow.spec.suspend;
      if (actor !== undefined) workflow.metadata.labels = { ...workflow.metadata.labels, [ArgoLabel.Actor]: actor };
    });
  }

  deleteWorkflow(namespace: string, name: string): StoredWorkflow {
    const index = this.indexOf(namespace, name);
    if (index < 0) throw new Error(`no Workflow ${namespace}/${name} to delete`);
    return this.remove(index);
  }

  private indexOf(namespace: string, name: string): number {
    return this.stored.findIndex(
      (workflow) => workflow.metadata.namespace === namespace && workflow.metadata.name === name,
    );
  }

  /** A change by a test helper: applied to a copy, stored and sent to the watches. */
  private edit(namespace: string, name: string, change: (workflow: StoredWorkflow) => void): StoredWorkflow {
    const index = this.indexOf(namespace, name);
    if (index < 0) throw new Error(`no Workflow ${namespace}/${name}`);
    const next = structuredClone(this.stored[index]!);
    change(next);
    return structuredClone(this.replace(index, next));
  }

  /**
   * Stores a changed Workflow in place of the one at `index`, as an update does: a new
   * resourceVersion, a new generation when more than metadata changed, a MODIFIED event. A change
   * that changes nothing is no write at all: same resourceVersion, no event.
   */
  private replace(index: number, next: StoredWorkflow): StoredWorkflow {
    const previous = this.stored[index]!;
    next.metadata.resourceVersion = previous.metadata.resourceVersion;
    if (JSON.stringify(next) === JSON.stringify(previous)) return previous;
    if (JSON.stringify([next.spec, next.status]) !== JSON.stringify([previous.spec, previous.status])) {
      next.metadata.generation = previous.metadata.generation + 1;
    }
    this.revision += 1;
    next.metadata.resourceVersion = String(this.revision);
    this.stored[index] = next;
    this.hub.record('MODIFIED', next, previous);
    return next;
  }

  /** Deletion is a change too: the DELETED event carries the last state with the deletion's resourceVersion. */
  private remove(index: number): StoredWorkflow {
    const [removed] = this.stored.splice(index, 1);
    this.revision += 1;
    const last = structuredClone(removed!);
    last.metadata.resourceVersion = String(this.revision);
    this.hub.record('DELETED', last);
    return last;
  }

  waitForWatches(count: number): Promise<void> {
    return this.hub.waitForWatches(count);
  }

  bookmark(): void {
    this.hub.bookmark(this.revision);
  }

  dropWatches(): void {
    this.hub.drop();
  }

  endWatches(): void {
    this.hub.end();
  }

  compactHistory(): void {
    this.hub.compact(this.revision);
  }

  failNext(count: number, failure: InjectedFailure): void {
    for (let i = 0; i < count; i++) this.failures.push(failure);
  }

  delayNext(count: number, ms: number, options: { store: boolean }): void {
    for (let i = 0; i < count; i++) this.delays.push({ ms, store: options.store });
  }

  denyCreate(namespace: string): void {
    this.denied.add(namespace);
  }

  /** `VERB NAMESPACE` pairs access reviews deny, besides the denied creates. */
  private readonly deniedVerbs = new Set<string>();

  deny(namespace: string, verb: string): void {
    if (verb === 'create') this.denyCreate(namespace);
    else this.deniedVerbs.add(`${verb} ${namespace}`);
  }

  putObject(ref: ObjectRef, annotations?: Record<string, string>): StoredResource {
    return this.objects.put(ref, annotations);
  }

  annotate(ref: ObjectRef, annotations: Record<string, string | null>): StoredResource {
    return this.objects.annotate(ref, annotations);
  }

  deleteObject(ref: ObjectRef): void {
    this.objects.remove(ref);
  }

  getObject(ref: ObjectRef): StoredResource | undefined {
    return this.objects.get(ref);
  }

  failReads(kind: ObjectKind, failure: InjectedFailure | undefined): void {
    this.objects.failReads(kind, failure);
  }

  forbidReads(kind: ObjectKind): void {
    this.objects.forbidReads(kind);
  }

  requestsTo(path: string): number {
    return this.requests.filter((request) => request.path === path).length;
  }

  waitForWorkflows(count: number): Promise<void> {
    if (this.stored.length >= count) return Promise.resolve();
    return new Promise((resolve, reject) => this.waiters.push({ count, resolve, reject }));
  }

  reset(): void {
    this.stored.length = 0;
    this.templates.length = 0;
    this.clusterTemplates.length = 0;
    this.requests.length = 0;
    this.failures = [];
    this.delays = [];
    this.denied.clear();
    this.deniedVerbs.clear();
    this.listRemainders.clear();
    this.objects.reset();
    // Forgetting the objects is a change no watch is told of: whoever watched must list again.
    this.revision += 1;
    this.hub.reset(this.revision);
    this.expiredWatches = this.options.expiredWatches;
  }

  async listen(port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error): void => reject(error);
      this.server.once('error', onError);
      this.server.listen(port, '127.0.0.1', () => {
        this.server.off('error', onError);
        resolve();
      });
    });
    this.port = (this.server.address() as AddressInfo).port;
    this.listening = true;
  }

  async refuseConnections(): Promise<void> {
    if (!this.listening) return;
    this.listening = false;
    // At once, so that no change made from now on reaches a watch the client still has.
    this.hub.drop();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  async acceptConnections(): Promise<void> {
    if (this.closed) throw new Error('the fake Kubernetes API is closed');
    if (this.listening) return;
    await this.listen(this.port);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const waiter of this.waiters) waiter.reject(new Error('the fake Kubernetes API was closed'));
    this.waiters = [];
    await this.refuseConnections();
  }

  handle(request: IncomingMessage, response: ServerResponse): void {
    const url = new URL(request.url ?? '/', 'http://fake-kube');
    const method = request.method ?? 'GET';
    this.requests.push({ method, path: url.pathname, query: Object.fromEntries(url.searchParams) });
    const chunks: Buffer[] = [];
    let received = 0;
    let tooLarge = false;
    // The whole body is read even past the limit, so that the client sees the 413 instead of a reset.
    request.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received > MAX_REQUEST_BODY_BYTES) tooLarge = true;
      else chunks.push(chunk);
    });
    request.on('end', () => {
      const body: ReceivedBody = { bytes: tooLarge ? Buffer.alloc(0) : Buffer.concat(chunks), tooLarge };
      const answer = this.route(method, url, request, response, body);
      if (answer !== LATER) send(response, answer);
    });
  }

  private route(
    method: string,
    url: URL,
    request: IncomingMessage,
    response: ServerResponse,
    body: ReceivedBody,
  ): Answer | typeof LATER {
    if (this.options.token !== undefined && request.headers.authorization !== `Bearer ${this.options.token}`) {
      return statusAnswer(status(401, 'Unauthorized'));
    }
    const segments = url.pathname
      .split('/')
      .filter((segment) => segment !== '')
      .map(decodeURIComponent);
    const query = url.searchParams;
    const [root, group, version, ...rest] = segments;

    if (method === 'GET' && segments.length === 1 && root === 'version') return json(200, VERSION);
    if (method === 'GET' && segments.length === 1 && root === 'api') return json(200, apiVersions(this.url));
    if (root === 'api' && group === 'v1') {
      // Under /api the second segment is the version: /api/v1/<resource>...
      if (segments.length === 2) return method === 'GET' ? json(200, CORE_RESOURCES) : statusAnswer(methodNotAllowed());
      return this.objects.core(method, segments.slice(2), query) ?? statusAnswer(notFoundPath());
    }
    if (root !== 'apis') return statusAnswer(notFoundPath());
    if (method === 'GET' && segments.length === 1) return json(200, API_GROUP_LIST);
    if (method === 'GET' && segments.length === 2) {
      const discovered = API_GROUP_LIST.groups.find((candidate) => candidate.name === group);
      return discovered
        ? json(200, { kind: 'APIGroup', apiVersion: 'v1', ...discovered })
        : statusAnswer(notFoundPath());
    }
    if (group === 'argoproj.io' && version === 'v1alpha1')
      return this.argo(method, rest, query, request, response, body);
    if (group === 'apps' && version === 'v1') {
      if (rest.length === 0) return method === 'GET' ? json(200, APPS_RESOURCES) : statusAnswer(methodNotAllowed());
      return this.objects.apps(method, rest, query) ?? statusAnswer(notFoundPath());
    }
    if (group === 'authorization.k8s.io' && version === 'v1') {
      if (rest.length === 0 && method === 'GET') return json(200, AUTHORIZATION_RESOURCES);
      if (rest.length === 1 && rest[0] === 'selfsubjectaccessreviews') {
        if (method !== 'POST') return statusAnswer(methodNotAllowed());
        return this.accessReview(body);
      }
    }
    return statusAnswer(notFoundPath());
  }

  private argo(
    method: string,
    path: string[],
    query: URLSearchParams,
    request: IncomingMessage,
    response: ServerResponse,
    body: ReceivedBody,
  ): Answer | typeof LATER {
    if (path.length === 0) {
      return method === 'GET' ? json(200, ARGO_RESOURCES) : statusAnswer(methodNotAllowed());
    }
    const [first, namespace, plural, name, ...extra] = path;
    if (first === 'namespaces' && namespace !== undefined && plural !== undefined && extra.length === 0) {
      if (plural !== 'workflows' && plural !== 'workflowtemplates') return statusAnswer(notFoundPath());
      const objects: readonly Listable[] = plural === 'workflows' ? this.stored : this.templates;
      if (name === undefined && method === 'POST') {
        if (plural !== 'workflows') return statusAnswer(methodNotAllowed());
        return this.create(namespace, query, request, response, body);
      }
      if (name !== undefined && plural === 'workflows' && method === 'PATCH')
        return this.patch(namespace, name, query, request, body);
      if (name !== undefined && plural === 'workflows' && method === 'DELETE') {
        const index = this.indexOf(namespace, name);
        return index < 0 ? statusAnswer(notFound(plural, name)) : json(200, this.remove(index));
      }
      if (method !== 'GET') return statusAnswer(methodNotAllowed());
      if (name === undefined && isTrue(query.get('watch'))) {
        return plural === 'workflows' ? this.watch(namespace, query, response) : statusAnswer(watchNotServed());
      }
      const inNamespace = objects.filter((object) => object.metadata.namespace === namespace);
      if (name === undefined) return this.list(plural, inNamespace, query);
      const found = inNamespace.find((object) => object.metadata.name === name);
      return found ? json(200, found) : statusAnswer(notFound(plural, name));
    }
    // Cluster-wide: workflows and workflowtemplates across namespaces, clusterworkflowtemplates.
    if (
      path.length <= 2 &&
      (first === 'workflows' || first === 'workflowtemplates' || first === 'clusterworkflowtemplates')
    ) {
      if (method !== 'GET') return statusAnswer(methodNotAllowed());
      const objects: readonly Listable[] =
        first === 'workflows' ? this.stored : first === 'workflowtemplates' ? this.templates : this.clusterTemplates;
      const objectName = path[1];
      if (objectName === undefined && isTrue(query.get('watch'))) {
        return first === 'workflows' ? this.watch(undefined, query, response) : statusAnswer(watchNotServed());
      }
      if (objectName === undefined) return this.list(first, objects, query);
      if (first !== 'clusterworkflowtemplates') return statusAnswer(notFoundPath());
      const found = objects.find((object) => object.metadata.name === objectName);
      return found ? json(200, found) : statusAnswer(notFound(first, objectName));
    }
    return statusAnswer(notFoundPath());
  }

  private list(plural: string, objects: readonly Listable[], query: URLSearchParams): Answer {
    const selector = parseLabelSelector(query.get('labelSelector') ?? undefined);
    if (typeof selector !== 'function') return statusAnswer(selector);
    const kind =
      plural === 'workflows'
        ? 'Workflow'
        : plural === 'workflowtemplates'
          ? 'WorkflowTemplate'
          : 'ClusterWorkflowTemplate';
    // Pages of a list (`limit`, then `continue`) are all as of the first page's resourceVersion.
    let items: readonly Listable[];
    let resourceVersion = this.revision;
    const token = query.get('continue');
    if (token) {
      const remainder = this.listRemainders.get(token);
      if (!remainder) return statusAnswer(status(400, `invalid continue token: ${token}`));
      if (this.hub.isTooOld(remainder.resourceVersion))
        return statusAnswer(status(410, CONTINUE_TOO_OLD, {}, 'Expired'));
      this.listRemainders.delete(token);
      items = remainder.items;
      resourceVersion = remainder.resourceVersion;
    } else {
      items = objects.filter((object) => selector(object.metadata.labels));
    }
    const limit = Number(query.get('limit') ?? '0');
    const metadata: Record<string, unknown> = { resourceVersion: String(resourceVersion) };
    if (Number.isInteger(limit) && limit > 0 && items.length > limit) {
      const next = randomUUID();
      this.listRemainders.set(next, { resourceVersion, items: items.slice(limit) });
      metadata.continue = next;
      metadata.remainingItemCount = items.length - limit;
      items = items.slice(0, limit);
    }
    return json(200, { apiVersion: ARGO_API, kind: `${kind}List`, metadata, items });
  }

  /**
   * A watch of Workflows (one namespace, or all): from `resourceVersion` the changes after it,
   * without one (or "0") an ADDED event for every Workflow first; 410 Expired for a forgotten one.
   */
  private watch(
    namespace: string | undefined,
    query: URLSearchParams,
    response: ServerResponse,
  ): Answer | typeof LATER {
    const selector: Selector | Status = parseLabelSelector(query.get('labelSelector') ?? undefined);
    if (typeof selector !== 'function') return statusAnswer(selector);
    const timeout = query.get('timeoutSeconds');
    if (timeout !== null && !/^\d+$/.test(timeout)) {
      return statusAnswer(status(400, `invalid timeoutSeconds: ${JSON.stringify(timeout)}: must be a whole number`));
    }
    const given = query.get('resourceVersion') ?? '';
    let since: number | undefined;
    if (given !== '' && given !== '0') {
      if (!/^\d+$/.test(given)) return statusAnswer(status(400, `invalid resource version: ${JSON.stringify(given)}`));
      since = Number(given);
      if (this.hub.isTooOld(since)) {
        const expired = tooOld(since, this.hub.oldestResourceVersion);
        if (this.expiredWatches === 'status') return statusAnswer(expired);
        this.hub.refuse(response, expired);
        return LATER;
      }
    }
    const current = namespace === undefined ? this.stored : this.workflowsIn(namespace);
    const timeoutSeconds = timeout === null || Number(timeout) === 0 ? undefined : Number(timeout);
    this.hub.start(
      response,
      { namespace, selector, bookmarks: isTrue(query.get('allowWatchBookmarks')), timeoutSeconds },
      since,
      current,
    );
    return LATER;
  }

  /**
   * A JSON merge patch (RFC 7386) of a Workflow, checked as an update is: media type (415),
   * existence (404), decoding (400), the resourceVersion precondition when the patch sets one
   * (409), the name and namespace (400), validation of the result (422).
   */
  private patch(
    namespace: string,
    name: string,
    query: URLSearchParams,
    request: IncomingMessage,
    body: ReceivedBody,
  ): Answer {
    if (body.tooLarge) return statusAnswer(status(413, `Request entity too large: limit is ${MAX_REQUEST_BODY_BYTES}`));
    const contentType = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (contentType !== 'application/merge-patch+json') return statusAnswer(unsupportedPatch(contentType));
    const index = this.indexOf(namespace, name);
    if (index < 0) return statusAnswer(notFound('workflows', name));
    let patch: unknown;
    try {
      patch = JSON.parse(body.bytes.toString('utf8'));
    } catch (error) {
      return statusAnswer(status(400, `error decoding patch: ${(error as Error).message}`));
    }
    if (!isRecord(patch)) return statusAnswer(status(400, 'error decoding patch: the patch is not a JSON object'));
    const previous = this.stored[index]!;
    const patched = mergePatch(previous, patch);
    if (!isRecord(patched) || !isRecord(patched.metadata)) {
      return statusAnswer(status(400, 'the patched object has no metadata'));
    }
    const precondition = isRecord(patch.metadata) ? patch.metadata.resourceVersion : undefined;
    if (precondition !== undefined && precondition !== previous.metadata.resourceVersion) {
      return statusAnswer(conflict(name));
    }
    if (patched.metadata.name !== name) {
      return statusAnswer(
        status(
          400,
          `the name of the object (${String(patched.metadata.name)}) does not match the name on the URL (${name})`,
        ),
      );
    }
    if (patched.metadata.namespace !== namespace) {
      return statusAnswer(
        status(400, 'the namespace of the provided object does not match the namespace sent on the request'),
      );
    }
    // What the server sets stays as it set it.
    const { uid, creationTimestamp, generation } = previous.metadata;
    patched.metadata = { ...patched.metadata, uid, creationTimestamp, generation };
    const problems = this.options.validate ? argoObjectProblems(patched) : [];
    if (problems.length > 0) return statusAnswer(invalid(name, problems));
    const next = patched as unknown as StoredWorkflow;
    if (query.get('dryRun') === 'All') return json(200, next);
    return json(200, this.replace(index, next));
  }

  private create(
    namespace: string,
    query: URLSearchParams,
    request: IncomingMessage,
    response: ServerResponse,
    body: ReceivedBody,
  ): Answer | typeof LATER {
    if (this.denied.has(namespace)) return statusAnswer(forbiddenCreate(namespace));
    const failure = this.failures.shift();
    const delay = this.delays.shift();
    const answer = (): Answer => {
      if (failure?.html !== undefined) return { code: failure.status, body: null, html: failure.html };
      if (failure) return statusAnswer(injected(failure, namespace, nameOf(body)));
      return this.store(namespace, query, request, body);
    };
    if (!delay) return answer();
    let hungUp = false;
    response.on('close', () => {
      if (!response.writableFinished) hungUp = true;
    });
    const early = delay.store ? answer() : undefined;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (early) send(response, early);
      else if (!hungUp) send(response, answer());
    }, delay.ms);
    this.timers.add(timer);
    return LATER;
  }

  private store(namespace: string, query: URLSearchParams, request: IncomingMessage, body: ReceivedBody): Answer {
    if (body.tooLarge) {
      return statusAnswer(status(413, `Request entity too large: limit is ${MAX_REQUEST_BODY_BYTES}`));
    }
    const contentType = request.headers['content-type'] ?? '';
    if (!/^application\/json\b/i.test(contentType)) {
      return statusAnswer(
        status(
          415,
          `the body of the request was in an unknown format - accepted media types include: application/json`,
        ),
      );
    }
    let workflow: unknown;
    try {
      workflow = JSON.parse(body.bytes.toString('utf8'));
    } catch (error) {
      return statusAnswer(status(400, `couldn't get version/kind; json parse error: ${(error as Error).message}`));
    }
    if (!isRecord(workflow))
      return statusAnswer(status(400, "couldn't get version/kind; json parse error: not an object"));
    if (typeof workflow.kind !== 'string' || workflow.kind === '') {
      return statusAnswer(status(400, `Object 'Kind' is missing in '${body.bytes.toString('utf8').slice(0, 200)}'`));
    }
    if (workflow.apiVersion !== ARGO_API) {
      return statusAnswer(
        status(
          400,
          `the API version in the data (${String(workflow.apiVersion)}) does not match the expected API version (${ARGO_API})`,
        ),
      );
    }
    if (workflow.kind !== 'Workflow') {
      return statusAnswer(
        status(
          400,
          `${workflow.kind} in version "v1alpha1" cannot be handled as a Workflow: the object provided is unrecognized (must be of type Workflow)`,
        ),
      );
    }
    const metadata = isRecord(workflow.metadata) ? workflow.metadata : {};
    if (metadata.namespace !== undefined && metadata.namespace !== '' && metadata.namespace !== namespace) {
      return statusAnswer(
        status(400, 'the namespace of the provided object does not match the namespace sent on the request'),
      );
    }
    const givenName = typeof metadata.name === 'string' ? metadata.name : '';
    const problems = this.options.validate ? argoObjectProblems(workflow) : [];
    if (!this.options.validate && givenName === '' && typeof metadata.generateName !== 'string') {
      problems.push({
        field: 'metadata.name',
        reason: 'FieldValueRequired',
        message: 'Required value: name or generateName is required',
      });
    }
    if (problems.length > 0) return statusAnswer(invalid(givenName, problems));

    let name = givenName;
    if (name === '') {
      do name = generatedName(String(metadata.generateName));
      while (
        this.stored.some((existing) => existing.metadata.namespace === namespace && existing.metadata.name === name)
      );
    } else if (
      this.stored.some((existing) => existing.metadata.namespace === namespace && existing.metadata.name === name)
    ) {
      return statusAnswer(alreadyExists(name));
    }
    const created = structuredClone({
      ...workflow,
      metadata: { ...metadata, name, namespace, ...this.serverMetadata() },
    }) as StoredWorkflow;
    if (query.get('dryRun') !== 'All') this.remember(created);
    return json(201, created);
  }

  private remember(workflow: StoredWorkflow): void {
    this.stored.push(workflow);
    this.hub.record('ADDED', workflow);
    const ready = this.waiters.filter((waiter) => this.stored.length >= waiter.count);
    this.waiters = this.waiters.filter((waiter) => this.stored.length < waiter.count);
    for (const waiter of ready) waiter.resolve();
  }

  private accessReview(body: ReceivedBody): Answer {
    if (body.tooLarge) return statusAnswer(status(413, `Request entity too large: limit is ${MAX_REQUEST_BODY_BYTES}`));
    let review: unknown;
    try {
      review = JSON.parse(body.bytes.toString('utf8'));
    } catch (error) {
      return statusAnswer(status(400, `couldn't get version/kind; json parse error: ${(error as Error).message}`));
    }
    if (!isRecord(review) || !isRecord(review.spec)) {
      return statusAnswer(
        status(422, 'SelfSubjectAccessReview.authorization.k8s.io "" is invalid: spec: Required value', {
          group: 'authorization.k8s.io',
          kind: 'SelfSubjectAccessReview',
          causes: [{ reason: 'FieldValueRequired', message: 'Required value', field: 'spec' }],
        }),
      );
    }
    const attributes = isRecord(review.spec.resourceAttributes) ? review.spec.resourceAttributes : {};
    const deniedHere =
      typeof attributes.namespace === 'string' &&
      ((attributes.verb === 'create' && this.denied.has(attributes.namespace)) ||
        this.deniedVerbs.has(`${String(attributes.verb)} ${attributes.namespace}`)) &&
      attributes.resource === 'workflows' &&
      (attributes.group === undefined || attributes.group === 'argoproj.io');
    const denied = deniedHere || this.objects.denies(attributes);
    return json(201, {
      kind: 'SelfSubjectAccessReview',
      apiVersion: 'authorization.k8s.io/v1',
      metadata: { creationTimestamp: null },
      spec: review.spec,
      status: denied ? { allowed: false } : { allowed: true, reason: 'RBAC: allowed by the fake Kubernetes API' },
    });
  }
}

function nameOf(body: ReceivedBody): string {
  try {
    const parsed: unknown = JSON.parse(body.bytes.toString('utf8'));
    if (isRecord(parsed) && isRecord(parsed.metadata) && typeof parsed.metadata.name === 'string')
      return parsed.metadata.name;
  } catch {
    // An unparsable body has no name to report.
  }
  return '';
}

function methodNotAllowed(): Status {
  return status(405, 'the server does not allow this method on the requested resource');
}

function watchNotServed(): Status {
  return status(405, 'the fake Kubernetes API watches only workflows');
}

/** A create held back by delayNext: it answers by itself when the delay is over. */
const LATER = Symbol('later');

function send(response: ServerResponse, answer: Answer): void {
  if (response.destroyed || response.writableEnded) return;
  const payload = answer.html ?? JSON.stringify(answer.body);
  response.writeHead(answer.code, {
    'Content-Type': answer.html === undefined ? 'application/json' : 'text/html',
    'Content-Length': Buffer.byteLength(payload),
    ...answer.headers,
  });
  response.end(payload);
}

const VERSION = {
  major: '1',
  minor: '33',
  gitVersion: 'v1.33.0',
  gitCommit: '0000000000000000000000000000000000000000',
  gitTreeState: 'clean',
  buildDate: '2025-04-23T00:00:00Z',
  goVersion: 'go1.24.2',
  compiler: 'gc',
  platform: 'linux/amd64',
};

function apiVersions(url: string): unknown {
  return {
    kind: 'APIVersions',
    versions: ['v1'],
    serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: new URL(url).host }],
  };
}

const API_GROUP_LIST = {
  kind: 'APIGroupList',
  apiVersion: 'v1',
  groups: [
    {
      name: 'apps',
      versions: [{ groupVersion: 'apps/v1', version: 'v1' }],
      preferredVersion: { groupVersion: 'apps/v1', version: 'v1' },
    },
    {
      name: 'authorization.k8s.io',
      versions: [{ groupVersion: 'authorization.k8s.io/v1', version: 'v1' }],
      preferredVersion: { groupVersion: 'authorization.k8s.io/v1', version: 'v1' },
    },
    {
      name: 'argoproj.io',
      versions: [{ groupVersion: ARGO_API, version: 'v1alpha1' }],
      preferredVersion: { groupVersion: ARGO_API, version: 'v1alpha1' },
    },
  ],
};

const ARGO_RESOURCES = {
  kind: 'APIResourceList',
  apiVersion: 'v1',
  groupVersion: ARGO_API,
  resources: [
    {
      name: 'workflows',
      singularName: 'workflow',
      namespaced: true,
      kind: 'Workflow',
      verbs: ['delete', 'deletecollection', 'get', 'list', 'patch', 'create', 'update', 'watch'],
      shortNames: ['wf'],
    },
    {
      name: 'workflowtemplates',
      singularName: 'workflowtemplate',
      namespaced: true,
      kind: 'WorkflowTemplate',
      verbs: ['delete', 'deletecollection', 'get', 'list', 'patch', 'create', 'update', 'watch'],
      shortNames: ['wftmpl'],
    },
    {
      name: 'clusterworkflowtemplates',
      singularName: 'clusterworkflowtemplate',
      namespaced: false,
      kind: 'ClusterWorkflowTemplate',
      verbs: ['delete', 'deletecollection', 'get', 'list', 'patch', 'create', 'update', 'watch'],
      shortNames: ['clusterwftmpl', 'cwft'],
    },
  ],
};

const AUTHORIZATION_RESOURCES = {
  kind: 'APIResourceList',
  apiVersion: 'v1',
  groupVersion: 'authorization.k8s.io/v1',
  resources: [
    {
      name: 'selfsubjectaccessreviews',
      singularName: 'selfsubjectaccessreview',
      namespaced: false,
      kind: 'SelfSubjectAccessReview',
      verbs: ['create'],
    },
  ],
};

/** Starts the fake on 127.0.0.1 on a free port. */
export async function startFakeKube(options: FakeKubeOptions = {}): Promise<FakeKube> {
  const tls = options.tls;
  const server: Server = tls
    ? createTlsServer({
        key: tls.key,
        cert: tls.cert,
        ...(tls.clientCa ? { ca: tls.clientCa, requestCert: true, rejectUnauthorized: true } : {}),
      })
    : createServer();
  const fake = new FakeKubeServer(server, {
    token: options.token,
    expiredWatches: options.expiredWatches ?? 'event',
    validate: options.validate ?? true,
    now: options.now ?? Date.now,
    scheme: tls ? 'https' : 'http',
  });
  server.on('request', (request, response) => fake.handle(request, response));
  await fake.listen(0);
  return fake;
}
