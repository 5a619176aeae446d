import type { ChildProcess } from 'node:child_process';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { Redis } from 'ioredis';
import type { HostPort } from '../../src/stores/redis-connection.js';
import { assertInstalled, freePort, kill, launchRedis, PortTakenError, serverArgs } from './redis-server.js';

/**
 * Real Redis topologies for the tests of SPEC §10, from Debian's packages: a primary with
 * replicas watched by three redis-sentinel processes, and a six-node Redis Cluster made by
 * `redis-cli --cluster create`. Every process is killed when the test process exits.
 */

const PORT_ATTEMPTS = 5;
/** How long a topology may take to form or to fail over before a test fails. */
const SETTLE_TIMEOUT_MS = 30_000;
const POLL_MS = 100;
/** A dead master is noticed after this (sentinel down-after-milliseconds, cluster-node-timeout). */
export const FAILURE_DETECTION_MS = 1_000;

export const MASTER_NAME = 'kube-sentinel-test';

/**
 * A server of a topology: a replica syncs at once (Redis waits 5 s by default before a diskless
 * sync, during which WAIT cannot be answered).
 */
function nodeArgs(port: number): string[] {
  return [...serverArgs(port), '--repl-diskless-sync-delay', '0'];
}

/** Replicas of the server on `port` that are online (synced and streaming). */
async function onlineReplicas(port: number, password?: string): Promise<number> {
  const info = String(await askWith(password, port, 'INFO', 'replication'));
  return (info.match(/^slave\d+:.*state=online/gm) ?? []).length;
}

interface Node {
  port: number;
  child: ChildProcess | undefined;
  /** SIGSTOPped: asking it would wait for ever. */
  paused?: boolean;
}

/** Polls `check` until it answers something, for at most SETTLE_TIMEOUT_MS. */
async function until<T>(what: string, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + SETTLE_TIMEOUT_MS;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const answer = await check();
      if (answer !== undefined) return answer;
    } catch (error) {
      last = error;
    }
    await delay(POLL_MS);
  }
  throw new Error(`${what}: not after ${SETTLE_TIMEOUT_MS} ms${last ? ` (${String(last)})` : ''}`);
}

/** One command to one server, on a connection of its own. */
function ask(port: number, ...command: string[]): Promise<unknown> {
  return askWith(undefined, port, ...command);
}

/** One command to a server that wants `password` (none: no AUTH). */
async function askWith(password: string | undefined, port: number, ...command: string[]): Promise<unknown> {
  const client = new Redis({
    port,
    host: '127.0.0.1',
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    ...(password === undefined ? {} : { password }),
  });
  client.on('error', () => {});
  try {
    await client.connect();
    return await client.call(command[0] as string, ...command.slice(1));
  } finally {
    client.disconnect();
  }
}

async function startOn(
  command: 'redis-server' | 'redis-sentinel',
  args: (port: number) => string[],
  ready: string,
  portFree: (port: number) => Promise<boolean> = async () => true,
  password?: string,
): Promise<Node> {
  let lastError: unknown;
  for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
    const port = await freePort();
    if (!(await portFree(port))) continue;
    try {
      return { port, child: await launchRedis(command, args(port), port, ready, password) };
    } catch (error) {
      if (!(error instanceof PortTakenError)) throw error;
      lastError = error;
    }
  }
  throw new Error(`could not start ${command} on a free port`, { cause: lastError });
}

export interface SentinelSet {
  masterName: string;
  sentinels: HostPort[];
  /** The port the sentinels name as the master now. */
  masterPort(): Promise<number>;
  /** SIGKILL to the master; answers its port. */
  killMaster(): Promise<number>;
  /** Resolves with the new master's port once the sentinels name one other than `oldPort` and it takes writes. */
  failedOver(oldPort: number): Promise<number>;
  /** SIGSTOP (or SIGCONT) to every server but the master: they stop acknowledging writes. */
  pauseReplicas(): Promise<void>;
  resumeReplicas(): Promise<void>;
  stop(): Promise<void>;
}

export interface SentinelAuth {
  /** The Redis servers want it (`requirepass`, `masterauth`); the sentinels use it to watch them. */
  password?: string;
  /** The sentinels themselves want it. */
  sentinelPassword?: string;
}

/** A primary, `replicas` replicas and three sentinels (quorum 2), all known to each other. */
export async function startSentinelSet(replicas = 2, auth: SentinelAuth = {}): Promise<SentinelSet> {
  const serverAuth = auth.password === undefined ? [] : ['--requirepass', auth.password, '--masterauth', auth.password];
  const askServer = (port: number, ...command: string[]) => askWith(auth.password, port, ...command);
  const askSentinel = (port: number, ...command: string[]) => askWith(auth.sentinelPassword, port, ...command);
  assertInstalled();
  const dir = mkdtempSync(join(tmpdir(), 'kube-sentinel-sentinel-'));
  const servers: Node[] = [];
  const sentinels: Node[] = [];
  const all = (): Node[] => [...servers, ...sentinels];
  try {
    const primary = await startOn(
      'redis-server',
      (port) => [...nodeArgs(port), ...serverAuth],
      'Ready to accept connections',
      undefined,
      auth.password,
    );
    servers.push(primary);
    for (let i = 0; i < replicas; i++) {
      servers.push(
        await startOn(
          'redis-server',
          (port) => [...nodeArgs(port), ...serverAuth, '--replicaof', '127.0.0.1', String(primary.port)],
          'Ready to accept connections',
          undefined,
          auth.password,
        ),
      );
    }
    await until(
      'replicas in sync',
      async () => (await onlineReplicas(primary.port, auth.password)) === replicas || undefined,
    );
    for (let i = 0; i < 3; i++) {
      sentinels.push(
        await startOn(
          'redis-sentinel',
          (port) => {
            const file = join(dir, `sentinel-${port}.conf`);
            writeFileSync(
              file,
              [
                `port ${port}`,
                'bind 127.0.0.1',
                `dir ${dir}`,
                `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${primary.port} 2`,
                `sentinel down-after-milliseconds ${MASTER_NAME} ${FAILURE_DETECTION_MS}`,
                `sentinel failover-timeout ${MASTER_NAME} 10000`,
                `sentinel parallel-syncs ${MASTER_NAME} 1`,
                ...(auth.password === undefined ? [] : [`sentinel auth-pass ${MASTER_NAME} ${auth.password}`]),
                ...(auth.sentinelPassword === undefined ? [] : [`requirepass ${auth.sentinelPassword}`]),
                '',
              ].join('\n'),
            );
            return [file];
          },
          '+monitor master',
          undefined,
          auth.sentinelPassword,
        ),
      );
    }
  } catch (error) {
    await Promise.all(all().map((node) => (node.child ? kill(node.child) : undefined)));
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }

  const masterPort = async (): Promise<number> => {
    const answer = (await askSentinel(
      sentinels[0]?.port as number,
      'SENTINEL',
      'GET-MASTER-ADDR-BY-NAME',
      MASTER_NAME,
    )) as [string, string];
    return Number(answer[1]);
  };
  return {
    masterName: MASTER_NAME,
    sentinels: sentinels.map((node) => ({ host: '127.0.0.1', port: node.port })),
    masterPort,
    async killMaster() {
      // A failover needs the sentinels to know each other and the replicas (they say hello every
      // 2 s): waited for here, so that a set no test fails over starts at once.
      for (const sentinel of sentinels) {
        await until(`sentinel on ${sentinel.port} knows the others and the replicas`, async () => {
          const others = (await askSentinel(sentinel.port, 'SENTINEL', 'SENTINELS', MASTER_NAME)) as unknown[];
          const known = (await askSentinel(sentinel.port, 'SENTINEL', 'REPLICAS', MASTER_NAME)) as unknown[];
          return others.length === 2 && known.length === replicas ? true : undefined;
        });
      }
      const port = await masterPort();
      const node = servers.find((server) => server.port === port);
      if (!node?.child) throw new Error(`the master on ${port} is not one of this set's servers`);
      const child = node.child;
      node.child = undefined;
      await kill(child);
      return port;
    },
    async failedOver(oldPort) {
      return until('a new master', async () => {
        const answers = await Promise.all(
          sentinels.map(async (sentinel) => {
            const answer = (await askSentinel(sentinel.port, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', MASTER_NAME)) as [
              string,
              string,
            ];
            return Number(answer[1]);
          }),
        );
        const port = answers[0] as number;
        if (port === oldPort || answers.some((other) => other !== port)) return undefined;
        const role = String(await askServer(port, 'ROLE'));
        return role.startsWith('master') ? port : undefined;
      });
    },
    async pauseReplicas() {
      const master = await masterPort();
      for (const node of servers) if (node.port !== master) node.child?.kill('SIGSTOP');
    },
    async resumeReplicas() {
      for (const node of servers) node.child?.kill('SIGCONT');
    },
    async stop() {
      await Promise.all(all().map((node) => (node.child ? kill(node.child) : undefined)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface ClusterSet {
  /** Every node, for --redis-cluster-nodes. */
  nodes: HostPort[];
  /** The port of the master serving `slot` now. */
  masterOf(slot: number): Promise<number>;
  /** SIGKILL to the master serving `slot`; answers its port. */
  killMasterOf(slot: number): Promise<number>;
  /** SIGSTOP to the master serving `slot`: its sockets stay open, nothing answers; answers its port. */
  pauseMasterOf(slot: number): Promise<number>;
  /** SIGSTOP to the node on `port`. */
  pauseNode(port: number): Promise<void>;
  /** SIGKILL to the node on `port`, paused or not. */
  killNode(port: number): Promise<void>;
  /** Resolves once a replica serves the slots of the killed master on `oldPort` and the cluster is ok. */
  failedOver(oldPort: number, slot: number): Promise<number>;
  /**
   * Starts the node killed on `port` again, with its cluster config, as Kubernetes restarts a
   * pod: it rejoins as a replica of the master that took over; resolves once every master has
   * an online replica again.
   */
  restart(port: number): Promise<void>;
  stop(): Promise<void>;
}

/** Every master among `ports` has an online replica. */
async function masterReplicasOnline(ports: number[]): Promise<void> {
  for (const port of ports) {
    await until(`the replica of ${port} in sync`, async () => {
      const role = String(await ask(port, 'ROLE'));
      if (!role.startsWith('master')) return true;
      return (await onlineReplicas(port)) >= 1 || undefined;
    });
  }
}

/** The cluster bus listens on port + 10000: both must be free. */
function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

function clusterArgs(port: number, dir: string): string[] {
  return [
    ...nodeArgs(port),
    '--cluster-enabled',
    'yes',
    '--cluster-config-file',
    join(dir, `nodes-${port}.conf`),
    '--cluster-node-timeout',
    String(FAILURE_DETECTION_MS),
    '--dir',
    dir,
  ];
}

/** Six nodes, three masters with a replica each, every slot covered, every replica synced. */
export async function startRedisCluster(): Promise<ClusterSet> {
  assertInstalled();
  const dir = mkdtempSync(join(tmpdir(), 'kube-sentinel-cluster-'));
  const nodes: Node[] = [];
  try {
    for (let i = 0; i < 6; i++) {
      nodes.push(
        await startOn(
          'redis-server',
          (port) => clusterArgs(port, dir),
          'Ready to accept connections',
          async (port) => port + 10_000 <= 65_535 && (await bindable(port + 10_000)),
        ),
      );
    }
    const created = spawnSync(
      'redis-cli',
      ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '1', '--cluster-yes'],
      { encoding: 'utf8', timeout: SETTLE_TIMEOUT_MS },
    );
    if (created.status !== 0) throw new Error(`redis-cli --cluster create failed:\n${created.stdout}${created.stderr}`);
    for (const node of nodes) {
      await until(`cluster ok on ${node.port}`, async () => {
        const info = String(await ask(node.port, 'CLUSTER', 'INFO'));
        return info.includes('cluster_state:ok') && info.includes('cluster_slots_ok:16384') ? true : undefined;
      });
    }
    await masterReplicasOnline(nodes.map((node) => node.port));
  } catch (error) {
    await Promise.all(nodes.map((node) => (node.child ? kill(node.child) : undefined)));
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }

  const alive = (): Node[] => nodes.filter((node) => node.child && !node.paused);
  const pause = (port: number): void => {
    const node = nodes.find((n) => n.port === port);
    if (!node?.child) throw new Error(`no running node on ${port}`);
    node.child.kill('SIGSTOP');
    node.paused = true;
  };
  const masterOf = async (slot: number): Promise<number> => {
    for (const node of alive()) {
      try {
        const slots = (await ask(node.port, 'CLUSTER', 'SLOTS')) as [number, number, [string, number]][];
        for (const [from, to, [, port]] of slots) if (slot >= from && slot <= to) return port;
      } catch {
        // Try the next node.
      }
    }
    throw new Error(`no live node answers for slot ${slot}`);
  };
  return {
    nodes: nodes.map((node) => ({ host: '127.0.0.1', port: node.port })),
    masterOf,
    async killMasterOf(slot) {
      const port = await masterOf(slot);
      const node = nodes.find((n) => n.port === port);
      if (!node?.child) throw new Error(`the master on ${port} is not one of this cluster's nodes`);
      const child = node.child;
      node.child = undefined;
      await kill(child);
      return port;
    },
    async pauseMasterOf(slot) {
      const port = await masterOf(slot);
      pause(port);
      return port;
    },
    async pauseNode(port) {
      pause(port);
    },
    async killNode(port) {
      const node = nodes.find((n) => n.port === port);
      if (!node?.child) throw new Error(`no running node on ${port}`);
      const child = node.child;
      node.child = undefined;
      node.paused = false;
      await kill(child);
    },
    async failedOver(oldPort, slot) {
      return until(`a replica serving slot ${slot}`, async () => {
        const port = await masterOf(slot);
        if (port === oldPort) return undefined;
        const info = String(await ask(port, 'CLUSTER', 'INFO'));
        return info.includes('cluster_state:ok') ? port : undefined;
      });
    },
    async restart(port) {
      const node = nodes.find((n) => n.port === port);
      if (!node || node.child) throw new Error(`no killed node on ${port}`);
      node.child = await launchRedis('redis-server', clusterArgs(port, dir), port, 'Ready to accept connections');
      await masterReplicasOnline(nodes.map((n) => n.port));
    },
    async stop() {
      await Promise.all(nodes.map((node) => (node.child ? kill(node.child) : undefined)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
