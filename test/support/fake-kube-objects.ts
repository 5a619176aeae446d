/**
 * The built-in objects of the fake Kubernetes API that opt-out annotations are read from (SPEC
 * §11): Namespaces (core v1) and the apps/v1 workloads (Deployments, StatefulSets, DaemonSets).
 * Tests seed and annotate them; clients get and list them as the API server serves them: a 404
 * NotFound Status naming the resource, 403 Forbidden worded as RBAC words it, injected failures.
 * They are never created, changed or watched through the API (405).
 */
import { randomUUID } from 'node:crypto';
import {
  type Answer,
  DEFAULT_MESSAGE,
  defaultReason,
  type InjectedFailure,
  json,
  SERVICE_ACCOUNT_USER,
  type Status,
  status,
  statusAnswer,
} from './fake-kube-status.js';

export type WorkloadObjectKind = 'Deployment' | 'StatefulSet' | 'DaemonSet';
export type ObjectKind = 'Namespace' | WorkloadObjectKind;

/** A Namespace by its name; a workload by its namespace and name. */
export type ObjectRef =
  | { kind: 'Namespace'; name: string }
  | { kind: WorkloadObjectKind; namespace: string; name: string };

export interface StoredResource {
  apiVersion: string;
  kind: ObjectKind;
  metadata: {
    name: string;
    namespace?: string;
    uid: string;
    resourceVersion: string;
    generation: number;
    creationTimestamp: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec: Record<string, unknown>;
  status: Record<string, unknown>;
}

interface Resource {
  plural: string;
  /** '' is the core group. */
  group: '' | 'apps';
  apiVersion: 'v1' | 'apps/v1';
  namespaced: boolean;
}

const RESOURCES: Record<ObjectKind, Resource> = {
  Namespace: { plural: 'namespaces', group: '', apiVersion: 'v1', namespaced: false },
  Deployment: { plural: 'deployments', group: 'apps', apiVersion: 'apps/v1', namespaced: true },
  StatefulSet: { plural: 'statefulsets', group: 'apps', apiVersion: 'apps/v1', namespaced: true },
  DaemonSet: { plural: 'daemonsets', group: 'apps', apiVersion: 'apps/v1', namespaced: true },
};

const KIND_OF_PLURAL = new Map(
  (Object.entries(RESOURCES) as [ObjectKind, Resource][]).map(([kind, resource]) => [resource.plural, kind]),
);

/** The verbs RBAC grants the receiver on these objects (SPEC §8), denied together by forbidReads. */
const READ_VERBS = new Set(['get', 'list', 'watch']);

/** `namespaces`, `deployments.apps`: as the API server names a resource in its messages. */
function qualified(resource: Resource): string {
  return resource.group === '' ? resource.plural : `${resource.plural}.${resource.group}`;
}

function notFound(resource: Resource, name: string): Status {
  return status(404, `${qualified(resource)} "${name}" not found`, {
    name,
    ...(resource.group === '' ? {} : { group: resource.group }),
    kind: resource.plural,
  });
}

/** RBAC's wording: `deployments.apps "checkout" is forbidden: User "…" cannot get resource …`. */
function forbidden(resource: Resource, verb: 'get' | 'list', namespace: string | undefined, name?: string): Status {
  const subject = name === undefined ? qualified(resource) : `${qualified(resource)} "${name}"`;
  const scope = namespace === undefined ? 'at the cluster scope' : `in the namespace "${namespace}"`;
  return status(
    403,
    `${subject} is forbidden: User "${SERVICE_ACCOUNT_USER}" cannot ${verb} resource "${resource.plural}" in API group "${resource.group}" ${scope}`,
    {
      ...(name === undefined ? {} : { name }),
      ...(resource.group === '' ? {} : { group: resource.group }),
      kind: resource.plural,
    },
  );
}

function injected(
  failure: InjectedFailure,
  resource: Resource,
  verb: 'get' | 'list',
  namespace: string | undefined,
  name?: string,
): Answer {
  if (failure.html !== undefined) return { code: failure.status, body: null, html: failure.html };
  const reason = failure.reason ?? defaultReason(failure.status);
  const shaped =
    reason === 'Forbidden'
      ? forbidden(resource, verb, namespace, name)
      : reason === 'NotFound' && name !== undefined
        ? notFound(resource, name)
        : status(
            failure.status,
            DEFAULT_MESSAGE[reason] ?? `${reason}: injected by the fake Kubernetes API`,
            {},
            reason,
          );
  const body: Status = {
    ...shaped,
    code: failure.status,
    reason,
    ...(failure.message === undefined ? {} : { message: failure.message }),
    details: {
      ...shaped.details,
      ...(failure.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: failure.retryAfterSeconds }),
    },
  };
  return statusAnswer(body);
}

/** What the controllers would have filled in, enough for a client to read the object as its kind. */
function defaultSpec(
  kind: ObjectKind,
  name: string,
): { spec: Record<string, unknown>; status: Record<string, unknown> } {
  if (kind === 'Namespace') return { spec: { finalizers: ['kubernetes'] }, status: { phase: 'Active' } };
  const labels = { app: name };
  const template = {
    metadata: { labels },
    spec: { containers: [{ name, image: 'registry.k8s.io/pause:3.10' }] },
  };
  const spec: Record<string, unknown> = { selector: { matchLabels: labels }, template };
  if (kind !== 'DaemonSet') spec.replicas = 1;
  if (kind === 'StatefulSet') spec.serviceName = name;
  return { spec, status: {} };
}

/** The HTTP side the objects need from the fake they live in. */
export interface ObjectsHost {
  /** The next value of the fake's one resourceVersion counter. */
  nextResourceVersion(): string;
  /** Now, as the API server writes times. */
  timestamp(): string;
}

/** Query parameters these reads do not implement: refused, so no test relies on them silently ignored. */
const UNSUPPORTED_QUERY = ['labelSelector', 'fieldSelector', 'limit', 'continue'];

export class FakeObjects {
  private readonly stored = new Map<string, StoredResource>();
  private readonly failures = new Map<ObjectKind, InjectedFailure>();
  private readonly forbiddenKinds = new Set<ObjectKind>();

  constructor(private readonly host: ObjectsHost) {}

  /** Adds the object, or replaces the annotations of the one there (its other metadata is kept). */
  put(ref: ObjectRef, annotations: Record<string, string> = {}): StoredResource {
    const existing = this.stored.get(keyOf(ref));
    if (existing) return this.annotate(ref, { ...nullsFor(existing.metadata.annotations), ...annotations });
    const resource = RESOURCES[ref.kind];
    const { spec, status: objectStatus } = defaultSpec(ref.kind, ref.name);
    const object: StoredResource = {
      apiVersion: resource.apiVersion,
      kind: ref.kind,
      metadata: {
        name: ref.name,
        ...(ref.kind === 'Namespace' ? { labels: { 'kubernetes.io/metadata.name': ref.name } } : {}),
        ...('namespace' in ref ? { namespace: ref.namespace } : {}),
        uid: randomUUID(),
        resourceVersion: this.host.nextResourceVersion(),
        generation: 1,
        creationTimestamp: this.host.timestamp(),
        ...(Object.keys(annotations).length > 0 ? { annotations: { ...annotations } } : {}),
      },
      spec,
      status: objectStatus,
    };
    this.stored.set(keyOf(ref), object);
    return structuredClone(object);
  }

  /** Sets (a string) or removes (null) annotations, as `kubectl annotate` does; throws when there is no such object. */
  annotate(ref: ObjectRef, annotations: Record<string, string | null>): StoredResource {
    const object = this.stored.get(keyOf(ref));
    if (!object) throw new Error(`no ${describe(ref)} to annotate`);
    const next: Record<string, string> = { ...object.metadata.annotations };
    for (const [name, value] of Object.entries(annotations)) {
      if (value === null) delete next[name];
      else next[name] = value;
    }
    if (Object.keys(next).length > 0) object.metadata.annotations = next;
    else delete object.metadata.annotations;
    object.metadata.resourceVersion = this.host.nextResourceVersion();
    return structuredClone(object);
  }

  remove(ref: ObjectRef): void {
    if (!this.stored.delete(keyOf(ref))) throw new Error(`no ${describe(ref)} to delete`);
  }

  get(ref: ObjectRef): StoredResource | undefined {
    const object = this.stored.get(keyOf(ref));
    return object ? structuredClone(object) : undefined;
  }

  /** Every read (get and list) of this kind answers with the failure until it is cleared with undefined. */
  failReads(kind: ObjectKind, failure: InjectedFailure | undefined): void {
    if (failure) this.failures.set(kind, failure);
    else this.failures.delete(kind);
  }

  /** RBAC grants no get, list or watch on this kind: reads answer 403, and access reviews say so. */
  forbidReads(kind: ObjectKind): void {
    this.forbiddenKinds.add(kind);
  }

  /** Whether an access review of these attributes is denied by forbidReads. */
  denies(attributes: Record<string, unknown>): boolean {
    const kind = KIND_OF_PLURAL.get(String(attributes.resource));
    if (kind === undefined || !this.forbiddenKinds.has(kind)) return false;
    return (attributes.group ?? '') === RESOURCES[kind].group && READ_VERBS.has(String(attributes.verb));
  }

  reset(): void {
    this.stored.clear();
    this.failures.clear();
    this.forbiddenKinds.clear();
  }

  /** `/api/v1/<rest>`; undefined when the path is not one of these objects'. */
  core(method: string, rest: string[], query: URLSearchParams): Answer | undefined {
    const [plural, name, ...extra] = rest;
    if (plural !== 'namespaces' || extra.length > 0) return undefined;
    return this.read(method, 'Namespace', undefined, name, query);
  }

  /** `/apis/apps/v1/<rest>`; undefined when the path is not one of these objects'. */
  apps(method: string, rest: string[], query: URLSearchParams): Answer | undefined {
    if (rest.length === 1) {
      const kind = KIND_OF_PLURAL.get(rest[0] ?? '');
      return kind === undefined || kind === 'Namespace'
        ? undefined
        : this.read(method, kind, undefined, undefined, query);
    }
    const [first, namespace, plural, name, ...extra] = rest;
    const kind = KIND_OF_PLURAL.get(plural ?? '');
    if (first !== 'namespaces' || namespace === undefined || kind === undefined || kind === 'Namespace')
      return undefined;
    if (extra.length > 0) return undefined;
    return this.read(method, kind, namespace, name, query);
  }

  /** A get (`name`) or a list (of one namespace, or of all); a Namespace's own name is `name`, never `namespace`. */
  private read(
    method: string,
    kind: ObjectKind,
    namespace: string | undefined,
    name: string | undefined,
    query: URLSearchParams,
  ): Answer {
    const resource = RESOURCES[kind];
    if (method !== 'GET') {
      return statusAnswer(status(405, 'the server does not allow this method on the requested resource'));
    }
    const verb = name === undefined ? 'list' : 'get';
    if (this.forbiddenKinds.has(kind)) return statusAnswer(forbidden(resource, verb, namespace, name));
    const failure = this.failures.get(kind);
    if (failure) return injected(failure, resource, verb, namespace, name);
    if (name === undefined) {
      if (query.get('watch') !== null)
        return statusAnswer(status(405, 'the fake Kubernetes API watches only workflows'));
      const unsupported = UNSUPPORTED_QUERY.find((parameter) => query.has(parameter));
      if (unsupported !== undefined) {
        return statusAnswer(
          status(400, `the fake Kubernetes API does not implement ${unsupported} on ${resource.plural}`),
        );
      }
      const items = [...this.stored.values()].filter(
        (object) => object.kind === kind && (namespace === undefined || object.metadata.namespace === namespace),
      );
      return json(200, {
        apiVersion: resource.apiVersion,
        kind: `${kind}List`,
        metadata: { resourceVersion: this.host.nextResourceVersion() },
        items,
      });
    }
    const ref: ObjectRef = kind === 'Namespace' ? { kind, name } : { kind, namespace: namespace ?? '', name };
    const found = this.stored.get(keyOf(ref));
    return found ? json(200, found) : statusAnswer(notFound(resource, name));
  }
}

function keyOf(ref: ObjectRef): string {
  return ref.kind === 'Namespace' ? `Namespace/${ref.name}` : `${ref.kind}/${ref.namespace}/${ref.name}`;
}

function describe(ref: ObjectRef): string {
  return ref.kind === 'Namespace' ? `Namespace ${ref.name}` : `${ref.kind} ${ref.namespace}/${ref.name}`;
}

/** Every annotation there, to be removed: put replaces them all. */
function nullsFor(annotations: Record<string, string> | undefined): Record<string, null> {
  return Object.fromEntries(Object.keys(annotations ?? {}).map((name) => [name, null]));
}

/** What discovery lists of these resources. */
export const CORE_RESOURCES = {
  kind: 'APIResourceList',
  groupVersion: 'v1',
  resources: [
    {
      name: 'namespaces',
      singularName: 'namespace',
      namespaced: false,
      kind: 'Namespace',
      verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'],
      shortNames: ['ns'],
    },
  ],
};

export const APPS_RESOURCES = {
  kind: 'APIResourceList',
  apiVersion: 'v1',
  groupVersion: 'apps/v1',
  resources: (['Deployment', 'StatefulSet', 'DaemonSet'] as const).map((kind) => ({
    name: RESOURCES[kind].plural,
    singularName: kind.toLowerCase(),
    namespaced: true,
    kind,
    verbs: ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'],
    ...(kind === 'Deployment'
      ? { shortNames: ['deploy'] }
      : kind === 'StatefulSet'
        ? { shortNames: ['sts'] }
        : { shortNames: ['ds'] }),
  })),
};
