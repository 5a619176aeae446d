import { setTimeout as delay } from 'node:timers/promises';
import { KubeApiError, type KubeRequest, type KubeWatch } from './http.js';
import { classifyKubeError } from './result.js';
import { MANAGED_SELECTOR, type WatchedWorkflow } from './workflow.js';
import { listWorkflows, toWatchedWorkflow, workflowsPath } from './workflows.js';

/**
 * Keeps a cache of the Workflows of one namespace and reports each change once, as client-go's
 * informer does: list, then watch from the list's resourceVersion; after a dropped connection or
 * the end of a watch, watch again from the last resourceVersion seen (bookmarks included), so
 * nothing is missed; on 410 Gone (the history is compacted) list again and report the difference
 * to the cache, so nothing is reported twice. Failures are retried with a jittered exponential
 * backoff, forever, until stop().
 */

export type WorkflowEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface WorkflowEvent {
  type: WorkflowEventType;
  /**
   * The Workflow as it is now; for DELETED as it was last (as seen by the watch, or, when the
   * deletion was found by a list, as it was last seen).
   */
  workflow: WatchedWorkflow;
}

export interface WatchHealth {
  /** Listed, and the list and watch are not failing over and over. */
  healthy: boolean;
  /** Why not, in one line: `watch of Workflows in argo: connection: ECONNREFUSED`. */
  problem: string | null;
}

export interface WorkflowInformerOptions {
  request: KubeRequest;
  watch: KubeWatch;
  namespace: string;
  /** Each change, in order. A returned promise is awaited before the next change is handled. */
  onEvent: (event: WorkflowEvent) => void | Promise<void>;
  /** Called whenever the health changes (its flag or its problem). */
  onHealth?: (health: WatchHealth) => void;
  /** An onEvent that threw or rejected; the informer goes on with the next change. */
  onEventError?: (error: unknown, event: WorkflowEvent) => void;
  /** Default MANAGED_SELECTOR: the Workflows Kube Sentinel created. */
  labelSelector?: string;
  /** The API server ends each watch after this long (default 300), and it is renewed from where it was. */
  watchTimeoutSeconds?: number;
  /** Backoff between failed attempts: doubling from `initialMs` (500) to `maxMs` (30 s), each cut by up to half at random. */
  backoff?: { initialMs?: number; maxMs?: number };
  /** Failures in a row after which it is unhealthy and lists again rather than resume (default 3). */
  unhealthyAfterFailures?: number;
  /** Waits between attempts; rejects when `signal` is aborted. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  random?: () => number;
  now?: () => number;
}

/** A watch that ends by itself this soon, having sent nothing, counts as a failure (a proxy cutting streams). */
const MIN_QUIET_WATCH_MS = 1000;
/**
 * The server ends each watch after this and it is renewed from the last resourceVersion (no
 * list). Short, because a connection that stalls without closing (a proxy holding it open) is
 * only noticed at this plus WATCH_DEADLINE_GRACE_MS.
 */
const DEFAULT_WATCH_TIMEOUT_SECONDS = 120;
/** A list page that has not answered by then is given up and tried again after a backoff. */
const LIST_TIMEOUT_MS = 60_000;
/** A watch still open this long after its timeoutSeconds has lost its connection without being told. */
const WATCH_DEADLINE_GRACE_MS = 60_000;

const defaultSleep = (ms: number, signal: AbortSignal): Promise<void> => delay(ms, undefined, { signal });

/** The API server answered the watch, but not with a watch that works. */
class WatchRefused extends Error {}

function isGone(error: unknown): boolean {
  return error instanceof KubeApiError && error.code === 410;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export class WorkflowInformer {
  private readonly cache = new Map<string, WatchedWorkflow>();
  private readonly abort = new AbortController();
  private readonly selector: string;
  private readonly timeoutSeconds: number;
  private readonly threshold: number;
  private running: Promise<void> | undefined;
  private stopped = false;
  private listed = false;
  /**
   * Failed attempts in a row: the API away (lists, or watches that could not connect), and watches
   * refused (the server answered with an error, or ended them at once). A list that works clears
   * the first; it says nothing of a watch refused (no watch permission, a proxy that ends every
   * watch), so only a watch that delivers (an event, a bookmark, a quiet watch that ran its course)
   * clears the second, and the waits keep growing until one does.
   */
  private listFailures = 0;
  private watchFailures = 0;

  private get failures(): number {
    return this.listFailures + this.watchFailures;
  }
  /** Where the next watch starts; null: list first. */
  private from: string | null = null;
  /** An event or bookmark came since the last list: a 410 now is the history moving on, not a loop. */
  private progressSinceList = false;
  private currentHealth: WatchHealth = { healthy: false, problem: 'not listed yet' };
  private readonly syncLatch: { promise: Promise<void>; resolve: () => void; reject: (error: Error) => void };

  constructor(private readonly options: WorkflowInformerOptions) {
    this.selector = options.labelSelector ?? MANAGED_SELECTOR;
    this.timeoutSeconds = options.watchTimeoutSeconds ?? DEFAULT_WATCH_TIMEOUT_SECONDS;
    this.threshold = options.unhealthyAfterFailures ?? 3;
    let resolve = (): void => {};
    let reject = (_error: Error): void => {};
    const promise = new Promise<void>((settle, fail) => {
      resolve = settle;
      reject = fail;
    });
    // Nobody need wait for the sync: a stop before it must not be an unhandled rejection.
    promise.catch(() => {});
    this.syncLatch = { promise, resolve, reject };
  }

  get namespace(): string {
    return this.options.namespace;
  }

  /** True once the first list has succeeded: the cache holds every Workflow. */
  get synced(): boolean {
    return this.listed;
  }

  get health(): WatchHealth {
    return { ...this.currentHealth };
  }

  /** The last resourceVersion seen (of a list, an event or a bookmark); null before the first list. */
  get resourceVersion(): string | null {
    return this.from;
  }

  /** Resolves after the first successful list; rejects if stopped before. */
  whenSynced(): Promise<void> {
    return this.syncLatch.promise;
  }

  /** The cached Workflows (read-only: they are the cache's own). */
  workflows(): WatchedWorkflow[] {
    return [...this.cache.values()];
  }

  workflow(name: string): WatchedWorkflow | undefined {
    return this.cache.get(name);
  }

  /** Lists, then watches, until stop(). Calling it again does nothing. */
  start(): void {
    if (this.stopped) throw new Error('a stopped informer cannot start again');
    this.running ??= this.run();
  }

  /** Aborts the list or watch under way; resolves when no more events will come. */
  async stop(): Promise<void> {
    if (!this.stopped) {
      this.stopped = true;
      this.abort.abort();
      if (!this.listed)
        this.syncLatch.reject(new Error(`the informer of Workflows in ${this.namespace} stopped before it listed`));
    }
    await this.running;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      if (this.failures > 0 && !(await this.backoff())) break;
      try {
        if (this.from === null) await this.relist();
        const from = this.from ?? '';
        await this.watchFrom(from);
      } catch (error) {
        if (this.stopped) break;
        if (isGone(error)) this.expired();
        else this.failed(this.from === null ? 'list' : 'watch', error);
      }
    }
  }

  /** Waits before the next attempt; false when stopped meanwhile. */
  private async backoff(): Promise<boolean> {
    const initial = this.options.backoff?.initialMs ?? 500;
    const max = this.options.backoff?.maxMs ?? 30_000;
    const ceiling = Math.min(max, initial * 2 ** Math.min(this.failures - 1, 30));
    const random = this.options.random ?? Math.random;
    try {
      await (this.options.sleep ?? defaultSleep)(ceiling * (0.5 + random() / 2), this.abort.signal);
    } catch {
      // Aborted by stop().
    }
    return !this.stopped;
  }

  private failed(what: 'list' | 'watch', error: unknown): void {
    // A watch the server answered with an error, or ended at once, is the watch refused; a watch
    // that could not reach the server is the API away, which the next list that works disproves.
    const refused = what === 'watch' && (error instanceof KubeApiError || error instanceof WatchRefused);
    if (refused) this.watchFailures += 1;
    else this.listFailures += 1;
    const problem = `${what} of Workflows in ${this.namespace}: ${classifyKubeError(error).reason}`;
    if (!this.listed || this.failures >= this.threshold) {
      this.setHealth({ healthy: false, problem });
      // A list, not a watch that may stay quiet for minutes, is what shows it works again.
      if (this.listed) this.from = null;
    }
  }

  /**
   * 410 Gone: the history from `from` on is gone, so list again: at once, unless nothing came
   * since the last list (another 410 at once would make a loop of lists).
   */
  private expired(): void {
    const again = !this.progressSinceList;
    this.from = null;
    this.progressSinceList = false;
    if (again) this.failed('watch', new WatchRefused('410 Expired right after a list'));
  }

  private async relist(): Promise<void> {
    const signal = AbortSignal.any([this.abort.signal, AbortSignal.timeout(LIST_TIMEOUT_MS)]);
    const list = await listWorkflows(this.options.request, this.namespace, this.selector, signal);
    const listed = new Map(list.items.map((workflow) => [workflow.metadata.name, workflow]));
    for (const [name, cached] of this.cache) {
      if (!listed.has(name)) {
        this.cache.delete(name);
        await this.emit({ type: 'DELETED', workflow: cached });
      }
    }
    for (const workflow of list.items) await this.observe(workflow);
    this.from = list.resourceVersion;
    this.listFailures = 0;
    this.progressSinceList = false;
    if (this.watchFailures < this.threshold) this.setHealth({ healthy: true, problem: null });
    if (!this.listed) {
      this.listed = true;
      this.syncLatch.resolve();
    }
  }

  private async watchFrom(resourceVersion: string): Promise<void> {
    const query = new URLSearchParams({
      watch: 'true',
      labelSelector: this.selector,
      resourceVersion,
      allowWatchBookmarks: 'true',
      timeoutSeconds: String(this.timeoutSeconds),
    });
    const attempt = new AbortController();
    const stop = (): void => attempt.abort();
    this.abort.signal.addEventListener('abort', stop, { once: true });
    const deadline = setTimeout(
      () => attempt.abort(new Error('the watch outlived its timeout: its connection is lost')),
      this.timeoutSeconds * 1000 + WATCH_DEADLINE_GRACE_MS,
    );
    deadline.unref();
    const now = this.options.now ?? Date.now;
    const opened = now();
    let events = 0;
    try {
      for await (const event of this.options.watch(`${workflowsPath(this.namespace)}?${query}`, attempt.signal)) {
        if (this.stopped) return;
        if (!(await this.handle(event))) return;
        events += 1;
        this.delivered();
        this.progressSinceList = true;
      }
    } catch (error) {
      throw attempt.signal.aborted && !this.stopped ? attempt.signal.reason : error;
    } finally {
      clearTimeout(deadline);
      this.abort.signal.removeEventListener('abort', stop);
    }
    if (events === 0 && now() - opened < MIN_QUIET_WATCH_MS && !this.stopped) {
      this.failed('watch', new WatchRefused('the API server ended the watch at once'));
    } else if (!this.stopped) this.delivered();
  }

  /** One watch event; false when the watch must end (410 Expired). */
  private async handle(event: unknown): Promise<boolean> {
    const type = isRecord(event) ? event.type : undefined;
    const object = isRecord(event) ? event.object : undefined;
    if (type === 'ERROR') {
      const code = isRecord(object) && typeof object.code === 'number' ? object.code : 500;
      if (code === 410) {
        this.expired();
        return false;
      }
      throw new KubeApiError(code, JSON.stringify(object ?? null), {});
    }
    if (type === 'BOOKMARK') {
      const metadata = isRecord(object) && isRecord(object.metadata) ? object.metadata : {};
      if (typeof metadata.resourceVersion === 'string') this.from = metadata.resourceVersion;
      return true;
    }
    if (type !== 'ADDED' && type !== 'MODIFIED' && type !== 'DELETED') {
      throw new Error(`the API server sent a watch event of unknown type ${JSON.stringify(type ?? null)}`);
    }
    const workflow = toWatchedWorkflow(object);
    if (type === 'DELETED') {
      if (this.cache.delete(workflow.metadata.name)) await this.emit({ type, workflow });
    } else {
      await this.observe(workflow);
    }
    if (workflow.metadata.resourceVersion) this.from = workflow.metadata.resourceVersion;
    return true;
  }

  /**
   * A Workflow as it is now: ADDED when new to the cache, MODIFIED when its resourceVersion
   * changed, nothing when it did not (a change seen twice). One recreated under the same name
   * (another uid) is the old one DELETED and the new one ADDED.
   */
  private async observe(workflow: WatchedWorkflow): Promise<void> {
    const name = workflow.metadata.name;
    let cached = this.cache.get(name);
    if (cached?.metadata.uid && workflow.metadata.uid && cached.metadata.uid !== workflow.metadata.uid) {
      this.cache.delete(name);
      await this.emit({ type: 'DELETED', workflow: cached });
      cached = undefined;
    }
    if (cached && cached.metadata.resourceVersion === workflow.metadata.resourceVersion) return;
    this.cache.set(name, workflow);
    await this.emit({ type: cached ? 'MODIFIED' : 'ADDED', workflow });
  }

  private async emit(event: WorkflowEvent): Promise<void> {
    if (this.stopped) return;
    try {
      await this.options.onEvent(event);
    } catch (error) {
      this.options.onEventError?.(error, event);
    }
  }

  /** The watch works: every count is cleared, and it is healthy again. */
  private delivered(): void {
    this.listFailures = 0;
    this.watchFailures = 0;
    if (!this.currentHealth.healthy && this.listed) this.setHealth({ healthy: true, problem: null });
  }

  private setHealth(health: WatchHealth): void {
    if (health.healthy === this.currentHealth.healthy && health.problem === this.currentHealth.problem) return;
    this.currentHealth = health;
    this.options.onHealth?.({ ...health });
  }
}
