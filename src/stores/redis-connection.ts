/**
 * The three ways to reach Redis (SPEC §10): one server by URL, the master a set of Redis
 * Sentinels names, or a Redis Cluster. Each is ioredis's own support; this module only sets the
 * options every mode shares (no offline queue, no resent commands, bounded waits) and answers
 * what the store needs to know of the mode: where to SCAN, how to subscribe, whether keys must
 * share a slot.
 */
import calculateSlot from 'cluster-key-slot';
import { Cluster, type ClusterStatus, Redis, type RedisOptions, type RedisStatus } from 'ioredis';

export interface HostPort {
  host: string;
  port: number;
}

export type RedisSource =
  | { kind: 'standalone'; url: string }
  | {
      kind: 'sentinel';
      sentinels: HostPort[];
      masterName: string;
      /** The Redis servers' password; `sentinelPassword` is the sentinels' own. */
      password?: string;
      sentinelPassword?: string;
    }
  | { kind: 'cluster'; nodes: HostPort[]; password?: string };

export interface RedisConnection {
  /**
   * Typed as one Redis: a Cluster answers the same commands (routed by their keys' slot), and
   * the store uses nothing else of either.
   */
  client: Redis;
  /** Where Redis is, for messages: never a password. */
  address: string;
  /** Redis Cluster: the keys of one script must share a slot, and a batch is split per slot. */
  cluster: boolean;
  /**
   * Another connection (another cluster client) for the writes WAIT must cover: WAIT holds its
   * connection until the replicas answer, and no other command should wait behind it.
   * `nodeOf(slot)` names the servers a slot's commands go to, so that one pipeline goes to one;
   * `refresh` asks a cluster anew which node serves which slot, after a pipeline met MOVED or ASK
   * (ioredis follows those by itself for single commands, not for a pipeline).
   */
  waitConnection(): { client: Redis; nodeOf: (slot: number) => string; refresh(): Promise<void> };
  /**
   * A second connection for pub/sub (a subscribed connection takes no other command). On a
   * cluster it ends with its node (emits 'end'): the caller opens another, to a node known then.
   */
  subscriber(): Redis;
  /** The servers a SCAN must visit: the one master, or every master of the cluster. */
  scanTargets(): Redis[];
}

/** States in which a connection attempt is under way and will settle soon by itself. */
const CONNECTING: ReadonlySet<RedisStatus | ClusterStatus> = new Set(['wait', 'connecting', 'connect']);

/** One wait per client and attempt, however many commands wait on it. */
const attempts = new WeakMap<Redis, Promise<void>>();

/** A connection attempt is under way: connectionAttemptSettled has something to wait for. */
export function isConnecting(client: Redis): boolean {
  return CONNECTING.has(client.status);
}

/**
 * Resolves once the connection attempt under way (if any) has settled: ready, closed, or
 * `timeoutMs` passed. Without an offline queue a command sent while the socket is still opening
 * fails although Redis is fine (a client used right after it was made, or just as it
 * reconnects). Waiting costs nothing when Redis is down: a refused connection settles at once.
 */
export function connectionAttemptSettled(client: Redis, timeoutMs: number): Promise<void> {
  if (!CONNECTING.has(client.status)) return Promise.resolve();
  let settled = attempts.get(client);
  if (!settled) {
    settled = new Promise<void>((resolve) => {
      const settle = (): void => {
        clearTimeout(timer);
        for (const event of ['ready', 'close', 'end'] as const) client.off(event, settle);
        attempts.delete(client);
        resolve();
      };
      const timer = setTimeout(settle, timeoutMs);
      for (const event of ['ready', 'close', 'end'] as const) client.once(event, settle);
    });
    attempts.set(client, settled);
  }
  return settled;
}

/** A redirection: the slot has moved (a failover, a resharding) since the client last asked. */
export const REDIRECTION = /^(MOVED|ASK) /;

export interface ConnectionTuning {
  commandTimeoutMs: number;
}

const MAX_RECONNECT_DELAY_MS = 2000;

/** Reconnects back off to at most MAX_RECONNECT_DELAY_MS, with jitter so replicas do not return in step. */
function reconnectDelay(attempt: number): number {
  return Math.min(MAX_RECONNECT_DELAY_MS, 50 * 2 ** Math.min(attempt - 1, 6)) + Math.floor(Math.random() * 50);
}

/** A master demoted by a failover answers writes with READONLY until the client finds the new one. */
const READONLY = /^READONLY\b/;

export function connectRedis(source: RedisSource, tuning: ConnectionTuning): RedisConnection {
  const perConnection: RedisOptions = {
    maxRetriesPerRequest: 1,
    // The caller has already been told the command failed; replaying it later would take a
    // claim or a rate slot nobody is waiting for.
    autoResendUnfulfilledCommands: false,
    commandTimeout: tuning.commandTimeoutMs,
    connectTimeout: tuning.commandTimeoutMs,
  };
  if (source.kind === 'cluster') {
    const newCluster = (): Cluster => {
      const cluster = new Cluster(source.nodes, {
        enableOfflineQueue: false,
        // ioredis routes an auto-pipelined command by its first argument, which for the batch
        // scripts is their number of keys, not a key: the store's own batches do the grouping.
        enableAutoPipelining: false,
        clusterRetryStrategy: reconnectDelay,
        slotsRefreshTimeout: tuning.commandTimeoutMs,
        redisOptions: { ...perConnection, ...(source.password === undefined ? {} : { password: source.password }) },
      });
      cluster.on('+node', sendNothingSettled);
      return cluster;
    };
    const client = newCluster();
    return {
      client: client as unknown as Redis,
      waitConnection: () => {
        const waiting = newCluster();
        return {
          client: waiting as unknown as Redis,
          // Slots served by the same nodes go in one pipeline (ioredis's own grouping).
          nodeOf: (slot) => waiting.slots[slot]?.join(',') ?? 'unknown',
          refresh: () =>
            new Promise<void>((resolve) => {
              // A refresh already under way answers at once; either way the next try uses what is known.
              waiting.refreshSlotsCache(() => resolve());
            }),
        };
      },
      address: `cluster ${source.nodes.map(hostPort).join(',')}`,
      cluster: true,
      // PUBLISH reaches every node, so one node's connection hears every message. Not the
      // cluster client's own subscriber: when its node goes it moves to another one silently,
      // and whatever was published meanwhile is lost without anyone being told.
      subscriber: () => {
        const known = client.nodes('all').map((node) => ({ host: node.options.host, port: node.options.port }));
        const nodes = known.length > 0 ? known : source.nodes;
        const node = nodes[Math.floor(Math.random() * nodes.length)] as HostPort;
        return new Redis({
          ...perConnection,
          host: node.host,
          port: node.port,
          ...(source.password === undefined ? {} : { password: source.password }),
          enableOfflineQueue: false,
          autoResubscribe: false,
          retryStrategy: () => null,
        });
      },
      scanTargets: () => everySlotsMaster(client),
    };
  }
  const shared: RedisOptions = {
    ...perConnection,
    lazyConnect: false,
    enableOfflineQueue: false,
    enableAutoPipelining: true,
    retryStrategy: reconnectDelay,
  };
  const client =
    source.kind === 'standalone'
      ? new Redis(source.url, shared)
      : new Redis({
          ...shared,
          sentinels: source.sentinels,
          name: source.masterName,
          ...(source.password === undefined ? {} : { password: source.password }),
          // The sentinels' own password; else the servers' (a sentinel without one takes it all
          // the same), as the common charts set them up (Bitnami's auth.sentinel).
          ...((source.sentinelPassword ?? source.password) === undefined
            ? {}
            : { sentinelPassword: source.sentinelPassword ?? source.password }),
          // Told of a failover by the sentinels at once, not when the old master's socket dies.
          failoverDetector: true,
          sentinelRetryStrategy: reconnectDelay,
          // A hung sentinel still accepts connections: without a bound the next is never asked.
          sentinelCommandTimeout: tuning.commandTimeoutMs,
          // The command that met READONLY fails (fail closed); the reconnect asks the sentinels anew.
          reconnectOnError: (error) => READONLY.test(error.message),
        });
  return {
    client,
    address: source.kind === 'standalone' ? standaloneAddress(client) : sentinelAddress(source),
    cluster: false,
    waitConnection: () => ({
      client: client.duplicate({ enableAutoPipelining: false }),
      nodeOf: () => 'master',
      refresh: async () => {},
    }),
    subscriber: () => client.duplicate({ autoResubscribe: false, enableAutoPipelining: false }),
    scanTargets: () => [client],
  };
}

/**
 * ioredis's Cluster sends a command whose connection closed again (100 ms later, up to 16 times),
 * even once the command has timed out and its caller was told it failed: a claim or a rate slot
 * would be taken for nobody, a release could land after the key was claimed and committed again
 * under the same name. A node's connection sends nothing already answered (a redirected command
 * is not: only its answer or its final failure settles it).
 */
function sendNothingSettled(node: Redis): void {
  const send = node.sendCommand.bind(node);
  node.sendCommand = (command, stream) => (command.isSettled ? command.promise : send(command, stream));
}

const SLOTS = 16384;

/**
 * The master of every slot, as the slot map names it. Not the client's list of masters: a master
 * that died has left it at once, and the replica that took over is not in it until the map is
 * asked for again, so the keys of that shard would be left out without a word. A slot whose master
 * has no connection fails the listing instead (and has the map asked for again).
 */
function everySlotsMaster(client: Cluster): Redis[] {
  const connected = new Map(client.nodes('all').map((node) => [`${node.options.host}:${node.options.port}`, node]));
  const masters = new Set<Redis>();
  for (let slot = 0; slot < SLOTS; slot++) {
    const key = client.slots[slot]?.[0];
    const master = key === undefined ? undefined : connected.get(key);
    if (master === undefined) {
      client.refreshSlotsCache();
      throw new Error(`no connection to the master of slot ${slot}${key === undefined ? '' : ` (${key})`}`);
    }
    masters.add(master);
  }
  return [...masters];
}

/**
 * Items in groups whose keys share a slot, each group in the items' order; one group of all
 * items outside a cluster. `keyOf` names the item's key.
 */
export function groupBySlot<T>(items: T[], keyOf: (item: T) => string, cluster: boolean): T[][] {
  if (!cluster) return [items];
  const groups = new Map<number, T[]>();
  for (const item of items) {
    const slot = calculateSlot(keyOf(item));
    const group = groups.get(slot);
    if (group) group.push(item);
    else groups.set(slot, [item]);
  }
  return [...groups.values()];
}

/** `host:port` (or the socket path): never the URL, which may hold the password. */
function standaloneAddress(client: Redis): string {
  const { host, port, path } = client.options;
  return path ?? hostPort({ host: host ?? '', port: port ?? 0 });
}

function sentinelAddress(source: { sentinels: HostPort[]; masterName: string }): string {
  return `master ${source.masterName} of sentinels ${source.sentinels.map(hostPort).join(',')}`;
}

function hostPort({ host, port }: HostPort): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}
