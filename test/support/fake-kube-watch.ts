/**
 * The watch side of the fake Kubernetes API: the history of every Workflow change, and the open
 * watch streams that replay and follow it, as the API server's watch cache does. Changes are
 * numbered by one global resourceVersion counter (etcd's revision), so a client that resumes from
 * the last resourceVersion it saw gets every later change exactly once; compaction forgets the
 * history, after which an older resourceVersion is answered 410 Expired.
 */
import type { ServerResponse } from 'node:http';

/** What a watched object must carry: its identity and the labels a selector reads. */
export interface Watchable {
  metadata: {
    name: string;
    namespace?: string;
    resourceVersion: string;
    labels?: Record<string, string>;
  };
}

export type ChangeType = 'ADDED' | 'MODIFIED' | 'DELETED';
export type WatchEventType = ChangeType | 'BOOKMARK' | 'ERROR';

export interface WatchEvent {
  type: WatchEventType;
  object: unknown;
}

interface Change<T extends Watchable> {
  type: ChangeType;
  /** The object after the change (for DELETED: as it was last, with the deletion's resourceVersion). */
  object: T;
  /** The object before a MODIFIED change: a selector that matched it and no longer does sees DELETED. */
  previous?: T;
  resourceVersion: number;
}

export type Selector = (labels: Record<string, string> | undefined) => boolean;

export interface WatchRequest {
  /** Absent: every namespace. */
  namespace?: string;
  selector: Selector;
  bookmarks: boolean;
  /** Closes the stream cleanly after this many seconds, as the API server does. */
  timeoutSeconds?: number;
}

interface OpenWatch {
  request: WatchRequest;
  response: ServerResponse;
  timer?: NodeJS.Timeout;
}

/** How a watch for a forgotten resourceVersion is refused. */
export type ExpiredWatchAnswer = 'event' | 'status';

export class WatchHub<T extends Watchable> {
  private history: Change<T>[] = [];
  /** Changes up to and including this resourceVersion are forgotten. */
  private compactedAt = 0;
  private readonly open = new Set<OpenWatch>();
  private waiters: { count: number; resolve: () => void }[] = [];

  constructor(private readonly bookmarkObject: (resourceVersion: number) => unknown) {}

  get openWatches(): number {
    return this.open.size;
  }

  /** The oldest resourceVersion a watch may start from; older ones are too old. */
  get oldestResourceVersion(): number {
    return this.compactedAt;
  }

  isTooOld(resourceVersion: number): boolean {
    return resourceVersion < this.compactedAt;
  }

  /** Records a change (the object's resourceVersion is the change's) and sends it to every watch it concerns. */
  record(type: ChangeType, object: T, previous?: T): void {
    const change: Change<T> = {
      type,
      object: structuredClone(object),
      ...(previous ? { previous: structuredClone(previous) } : {}),
      resourceVersion: Number(object.metadata.resourceVersion),
    };
    this.history.push(change);
    for (const watch of this.open) {
      const event = eventFor(change, watch.request);
      if (event) write(watch.response, event);
    }
  }

  /** Forgets the history up to `resourceVersion`, as etcd compaction and the watch cache's window do. */
  compact(resourceVersion: number): void {
    this.compactedAt = resourceVersion;
    this.history = this.history.filter((change) => change.resourceVersion > resourceVersion);
  }

  /**
   * Starts a watch stream: with `since` the changes after it, otherwise an ADDED event for every
   * `current` object the request selects; then every change as it is recorded.
   */
  start(response: ServerResponse, request: WatchRequest, since: number | undefined, current: readonly T[]): void {
    response.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    response.flushHeaders();
    const watch: OpenWatch = { request, response };
    this.open.add(watch);
    response.on('close', () => this.forget(watch));
    if (since === undefined) {
      for (const object of current) {
        if (selects(request, object)) write(response, { type: 'ADDED', object });
      }
    } else {
      for (const change of this.history) {
        if (change.resourceVersion <= since) continue;
        const event = eventFor(change, request);
        if (event) write(response, event);
      }
    }
    if (request.timeoutSeconds !== undefined) {
      watch.timer = setTimeout(() => response.end(), request.timeoutSeconds * 1000);
    }
    this.notify();
  }

  /** A 200 stream with a single ERROR event carrying the Status, then its end: the watch cache's answer. */
  refuse(response: ServerResponse, status: unknown): void {
    response.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    write(response, { type: 'ERROR', object: status });
    response.end();
  }

  /** A BOOKMARK with the current resourceVersion to every watch that allows bookmarks. */
  bookmark(resourceVersion: number): void {
    for (const watch of this.open) {
      if (watch.request.bookmarks)
        write(watch.response, { type: 'BOOKMARK', object: this.bookmarkObject(resourceVersion) });
    }
  }

  /** Destroys every open watch connection without ending its stream, as a lost connection does. */
  drop(): void {
    for (const watch of [...this.open]) {
      this.forget(watch);
      watch.response.destroy();
    }
  }

  /** Ends every open watch cleanly, as the API server does when timeoutSeconds is over. */
  end(): void {
    for (const watch of [...this.open]) {
      this.forget(watch);
      watch.response.end();
    }
  }

  /** Resolves once exactly `count` watches are open. */
  waitForWatches(count: number): Promise<void> {
    if (this.open.size === count) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ count, resolve }));
  }

  /** Drops every watch and forgets the history: a watch from before now is too old. */
  reset(resourceVersion: number): void {
    this.drop();
    this.compact(resourceVersion);
  }

  private forget(watch: OpenWatch): void {
    if (!this.open.delete(watch)) return;
    clearTimeout(watch.timer);
    this.notify();
  }

  private notify(): void {
    const ready = this.waiters.filter((waiter) => waiter.count === this.open.size);
    this.waiters = this.waiters.filter((waiter) => waiter.count !== this.open.size);
    for (const waiter of ready) waiter.resolve();
  }
}

function selects(request: WatchRequest, object: Watchable): boolean {
  if (request.namespace !== undefined && object.metadata.namespace !== request.namespace) return false;
  return request.selector(object.metadata.labels);
}

/**
 * What a watch sees of a change. Like the API server's filtered watches, an object whose labels
 * come to match the selector is ADDED, and one whose labels stop matching is DELETED.
 */
function eventFor<T extends Watchable>(change: Change<T>, request: WatchRequest): WatchEvent | undefined {
  const now = selects(request, change.object);
  if (change.type !== 'MODIFIED') return now ? { type: change.type, object: change.object } : undefined;
  const before = change.previous !== undefined && selects(request, change.previous);
  if (now && before) return { type: 'MODIFIED', object: change.object };
  if (now) return { type: 'ADDED', object: change.object };
  if (before) return { type: 'DELETED', object: change.object };
  return undefined;
}

function write(response: ServerResponse, event: WatchEvent): void {
  if (response.destroyed || response.writableEnded) return;
  response.write(`${JSON.stringify(event)}\n`);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * JSON merge patch (RFC 7386): objects merge key by key, `null` deletes a key, anything else
 * (arrays included) replaces. The target is not changed.
 */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isRecord(patch)) return structuredClone(patch);
  const result: Record<string, unknown> = isRecord(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    // defineProperty keeps a key named __proto__ a field (which validation then refuses).
    else
      Object.defineProperty(result, key, {
        value: mergePatch(result[key], value),
        enumerable: true,
        writable: true,
        configurable: true,
      });
  }
  return result;
}
