import type { Logger } from 'pino';
import { KubeApiError, type KubeRequest } from './http.js';
import { DNS1123_LABEL, DNS1123_LABEL_MAX, DNS1123_SUBDOMAIN, DNS1123_SUBDOMAIN_MAX } from './names.js';
import { classifyKubeError } from './result.js';

/**
 * Opt-out by annotation (SPEC §11): a Namespace, or a Deployment, StatefulSet or DaemonSet,
 * annotated `kube-sentinel.io/remediation: disabled` is not remediated.
 *
 * Each object an alert names is read with one GET and its answer kept for at most 30 s, so a storm
 * about one workload costs a request per object per 30 s, never one per alert: lookups of an
 * object already being read wait for that read, and the cache holds a bounded number of objects
 * (the least recently used go first). Short-lived reads rather than watches: the receiver asks
 * only about the few objects its alerts name, and keeps no copy of every workload in the cluster.
 */

export const OPT_OUT_ANNOTATION = 'kube-sentinel.io/remediation';
/** The one value that opts out; any other is ignored (and logged). */
export const OPT_OUT_VALUE = 'disabled';

export type WorkloadKind = 'Deployment' | 'StatefulSet' | 'DaemonSet';
export const WORKLOAD_KINDS: readonly WorkloadKind[] = ['Deployment', 'StatefulSet', 'DaemonSet'];

const PLURALS: Record<WorkloadKind, string> = {
  Deployment: 'deployments',
  StatefulSet: 'statefulsets',
  DaemonSet: 'daemonsets',
};

/** What an alert is about: its namespace and, when it names one, its workload and the kinds that workload may be. */
export interface OptOutTarget {
  namespace: string;
  workload?: { name: string; kinds: readonly WorkloadKind[] };
}

export type OptOutAnswer =
  /** Nothing read says no. */
  | { kind: 'remediate' }
  /** `object` names what opted out: `Namespace shop`, `Deployment shop/checkout`. */
  | { kind: 'opted_out'; object: string }
  /** An object could not be read (403, 5xx, timeout, no connection): nobody knows whether it opted out. */
  | { kind: 'unknown'; object: string; reason: string; retryAfterSeconds?: number };

/** Whether an alert's target opted out of remediation. */
export interface OptOuts {
  /**
   * A failed read is the answer `unknown`, never a rejection. With --clusters, `cluster` says
   * whose objects: the cluster the alert was routed to.
   */
  check(target: OptOutTarget, cluster?: string): Promise<OptOutAnswer>;
}

/** SPEC §11: an answer is at most this old. */
export const OPT_OUT_TTL_MS = 30_000;
/**
 * A failed read is kept this long: during an outage a storm costs a request per object per
 * second, and a recovered API server is asked again soon.
 */
const FAILURE_TTL_MS = 1000;
const MAX_OBJECTS = 10_000;

type ObjectState =
  | { kind: 'disabled' }
  /** Annotated with another value (`ignored`), or not annotated. */
  | { kind: 'enabled'; ignored?: string }
  /** 404: there is no such object, so nothing opted out. */
  | { kind: 'absent' }
  | { kind: 'unreadable'; reason: string; retryAfterSeconds?: number };

interface ObjectRef {
  /** `Namespace shop`, `Deployment shop/checkout`: how decisions and logs name it. */
  description: string;
  path: string;
}

interface Entry {
  state: ObjectState;
  /** When its read was sent: its age is counted from then. */
  at: number;
}

export interface OptOutCacheOptions {
  request: KubeRequest;
  logger: Pick<Logger, 'warn'>;
  /** How long one read may take before it counts as failed. */
  timeoutMs: number;
  now?: () => number;
  /** How long an answer is used (default 30 s). */
  ttlMs?: number;
  /** How many objects are remembered at most (default 10,000). */
  maxObjects?: number;
  /** With --clusters, named in the log lines. */
  cluster?: string;
}

const REMEDIATE: OptOutAnswer = { kind: 'remediate' };

function isName(name: string, pattern: RegExp, max: number): boolean {
  return name.length <= max && pattern.test(name);
}

/**
 * The objects to read for a target: its Namespace first (the broader opt-out is the one named when
 * both are set), then each kind its workload may be. A name that cannot be an object's is not
 * asked about: no such object exists.
 */
function objectsOf(target: OptOutTarget): ObjectRef[] {
  const { namespace, workload } = target;
  if (!isName(namespace, DNS1123_LABEL, DNS1123_LABEL_MAX)) return [];
  const encoded = encodeURIComponent(namespace);
  const refs: ObjectRef[] = [{ description: `Namespace ${namespace}`, path: `/api/v1/namespaces/${encoded}` }];
  if (workload && isName(workload.name, DNS1123_SUBDOMAIN, DNS1123_SUBDOMAIN_MAX)) {
    for (const kind of workload.kinds) {
      refs.push({
        description: `${kind} ${namespace}/${workload.name}`,
        path: `/apis/apps/v1/namespaces/${encoded}/${PLURALS[kind]}/${encodeURIComponent(workload.name)}`,
      });
    }
  }
  return refs;
}

function annotationOf(object: unknown): unknown {
  const metadata = (object as { metadata?: { annotations?: Record<string, unknown> } } | undefined)?.metadata;
  return metadata?.annotations?.[OPT_OUT_ANNOTATION];
}

/** The opt-outs of one cluster, read through its API client. */
export class OptOutCache implements OptOuts {
  private readonly entries = new Map<string, Entry>();
  private readonly reading = new Map<string, Promise<ObjectState>>();
  private readonly now: () => number;
  private readonly ttlMs: number;
  private readonly maxObjects: number;

  constructor(private readonly options: OptOutCacheOptions) {
    this.now = options.now ?? Date.now;
    this.ttlMs = options.ttlMs ?? OPT_OUT_TTL_MS;
    this.maxObjects = options.maxObjects ?? MAX_OBJECTS;
  }

  /** Objects remembered now (bounded by maxObjects). */
  get size(): number {
    return this.entries.size;
  }

  async check(target: OptOutTarget): Promise<OptOutAnswer> {
    const refs = objectsOf(target);
    const states = await Promise.all(refs.map((ref) => this.stateOf(ref)));
    // An opt-out found is enough, whatever else could not be read.
    const optedOut = refs.find((_, i) => states[i]?.kind === 'disabled');
    if (optedOut) return { kind: 'opted_out', object: optedOut.description };
    for (const [i, state] of states.entries()) {
      if (state.kind !== 'unreadable') continue;
      const object = refs[i]?.description ?? '';
      const retryAfter = state.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: state.retryAfterSeconds };
      return { kind: 'unknown', object, reason: state.reason, ...retryAfter };
    }
    return REMEDIATE;
  }

  private stateOf(ref: ObjectRef): ObjectState | Promise<ObjectState> {
    const entry = this.entries.get(ref.path);
    if (entry) {
      const ttl = entry.state.kind === 'unreadable' ? Math.min(FAILURE_TTL_MS, this.ttlMs) : this.ttlMs;
      if (this.now() - entry.at < ttl) {
        // Most recently used: the last to be dropped.
        this.entries.delete(ref.path);
        this.entries.set(ref.path, entry);
        return entry.state;
      }
    }
    const pending = this.reading.get(ref.path);
    if (pending !== undefined) return pending;
    const at = this.now();
    const read = this.read(ref, entry?.state).then((state) => {
      this.reading.delete(ref.path);
      // An answer is as old as the question (the 30 s bound holds from then); a failure counts
      // from when it landed, or a read that timed out would be stale already, and each next group
      // of a storm would wait out a timeout of its own.
      this.remember(ref.path, { state, at: state.kind === 'unreadable' ? this.now() : at });
      return state;
    });
    this.reading.set(ref.path, read);
    return read;
  }

  private remember(path: string, entry: Entry): void {
    this.entries.delete(path);
    this.entries.set(path, entry);
    for (const oldest of this.entries.keys()) {
      if (this.entries.size <= this.maxObjects) break;
      this.entries.delete(oldest);
    }
  }

  /** Never rejects: a failure is the state `unreadable`, logged once per read. */
  private async read(ref: ObjectRef, previous: ObjectState | undefined): Promise<ObjectState> {
    const { request, logger, timeoutMs, cluster } = this.options;
    const where = cluster === undefined ? {} : { cluster };
    try {
      const value = annotationOf(await request('GET', ref.path, undefined, AbortSignal.timeout(timeoutMs)));
      if (value === OPT_OUT_VALUE) return { kind: 'disabled' };
      if (value === undefined) return { kind: 'enabled' };
      const ignored = typeof value === 'string' ? value : JSON.stringify(value);
      // Once per object and value while it is remembered, not at every read.
      if (previous?.kind !== 'enabled' || previous.ignored !== ignored) {
        logger.warn(
          { object: ref.description, annotation: OPT_OUT_ANNOTATION, value: ignored, ...where },
          `ignoring ${OPT_OUT_ANNOTATION}: only "${OPT_OUT_VALUE}" opts out of remediation`,
        );
      }
      return { kind: 'enabled', ignored };
    } catch (err) {
      if (err instanceof KubeApiError && err.code === 404) return { kind: 'absent' };
      const failure = classifyKubeError(err);
      logger.warn(
        { object: ref.description, reason: failure.reason, ...where },
        `cannot read ${ref.description} to see whether it opted out of remediation: deciding retry`,
      );
      return {
        kind: 'unreadable',
        reason: failure.reason,
        ...(failure.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: failure.retryAfterSeconds }),
      };
    }
  }
}
