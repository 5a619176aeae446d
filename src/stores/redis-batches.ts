import calculateSlot from 'cluster-key-slot';
import type { Redis } from 'ioredis';
import type { RedisConnection } from './redis-connection.js';
import { connectionAttemptSettled, groupBySlot, isConnecting, REDIRECTION } from './redis-connection.js';
import type { ScriptedRedis } from './redis-scripts.js';

/** A write a failover could lose: it did not reach the replicas WAIT asked for in time. */
export class NotReplicatedError extends Error {}

export interface ReplicationOptions {
  /** A claim or commit counts once this many replicas acknowledged it; 0 does not wait. */
  waitReplicas: number;
  waitTimeoutMs: number;
  /** How long a batch waits for the WAIT connection to be opened (it opens with the store). */
  connectTimeoutMs: number;
}

/** One of the batch scripts (claims, commits), for a group of items whose keys share a slot. */
export interface BatchScript<Item> {
  /** Its source: sent whole (EVAL) before a WAIT, so that the write is on that connection before it. */
  lua: string;
  /** KEYS, then ARGV. */
  keysThenArgs(group: Item[]): (string | number)[];
  /** Without WAIT: the client's command for it (EVALSHA, auto-pipelined). */
  direct(client: ScriptedRedis, group: Item[]): Promise<unknown>;
}

interface Waiting {
  lua: string;
  numberOfKeys: number;
  args: (string | number)[];
  resolve(answer: { answers: unknown; acknowledged: number | Error }): void;
  reject(error: unknown): void;
}

/**
 * The batch scripts as Redis must see them: one call per slot on a cluster, and, when replicas
 * must acknowledge, followed by WAIT on a connection of their own.
 *
 * WAIT holds its connection until the replicas answer or its timeout: on the store's connection,
 * a ping or a peek would wait behind it. On the WAIT connection, one pipeline per server is in
 * flight at a time ([EVAL, EVAL, …, WAIT]); batches asked for meanwhile go together in the next,
 * so a replica outage costs each claim at most two WAIT timeouts, and nothing piles up behind.
 * The scripts go as EVAL, not EVALSHA: a server that has forgotten a script (SCRIPT FLUSH, a
 * restart, a proxy) would otherwise have ioredis send it again after the WAIT.
 */
export class ReplicatedBatches {
  private readonly waiter: { client: Redis; nodeOf: (slot: number) => string; refresh(): Promise<void> } | undefined;
  private readonly queues = new Map<string, { sending: boolean; waiting: Waiting[] }>();

  constructor(
    private readonly connection: Pick<RedisConnection, 'cluster' | 'waitConnection'>,
    private readonly client: ScriptedRedis,
    private readonly options: ReplicationOptions,
  ) {
    if (options.waitReplicas > 0) {
      this.waiter = connection.waitConnection();
      // Its errors are the store's connection's too, and logged there.
      this.waiter.client.on('error', () => {});
    }
  }

  /**
   * One answer per item: the script's, or for an answer the caller may act on (`mustReplicate`:
   * a claim taken, or its own alert's claim found pending) that the replicas did not acknowledge
   * in time, a NotReplicatedError. The claim stays (a retry of the same alert re-uses it, or its
   * lease runs out); nothing acts on it meanwhile.
   */
  async run<Item extends { key: string }, Answer>(
    items: Item[],
    script: BatchScript<Item>,
    mustReplicate: (answer: Answer, item: Item) => boolean,
  ): Promise<(Answer | Error)[]> {
    const groups = groupBySlot(items, (item) => item.key, this.connection.cluster);
    const answered = await Promise.all(groups.map((group) => this.group(group, script, mustReplicate)));
    const byItem = new Map<Item, Answer | Error>();
    for (const [g, group] of groups.entries()) {
      for (const [i, item] of group.entries()) byItem.set(item, answered[g]?.[i] as Answer | Error);
    }
    return items.map((item) => byItem.get(item) as Answer | Error);
  }

  close(): void {
    this.waiter?.client.disconnect();
  }

  private async group<Item extends { key: string }, Answer>(
    group: Item[],
    script: BatchScript<Item>,
    mustReplicate: (answer: Answer, item: Item) => boolean,
    redirected = false,
  ): Promise<(Answer | Error)[]> {
    const waiter = this.waiter;
    if (!waiter) return (await script.direct(this.client, group)) as (Answer | Error)[];
    // Opened with the store, it may still be connecting when the store's own connection is up;
    // when that one is not, the store has waited for it already.
    if (this.client.status === 'ready' && isConnecting(waiter.client)) {
      await connectionAttemptSettled(waiter.client, this.options.connectTimeoutMs);
    }
    // A cluster's pipeline waits for the slot map however long finding it takes (each node asked
    // in turn, for the command timeout each); a single command fails at once meanwhile.
    if (this.connection.cluster && waiter.client.status !== 'ready') {
      throw new Error(`cluster not ready (${waiter.client.status})`);
    }
    const node = this.connection.cluster ? waiter.nodeOf(calculateSlot((group[0] as Item).key)) : 'master';
    let answered: { answers: unknown; acknowledged: number | Error };
    try {
      answered = await new Promise((resolve, reject) => {
        const args = script.keysThenArgs(group);
        this.enqueue(node, { lua: script.lua, numberOfKeys: group.length, args, resolve, reject });
      });
    } catch (error) {
      // The script ran nowhere: asked again once, where the cluster now says the slot is.
      if (error instanceof Error && REDIRECTION.test(error.message) && !redirected) {
        await waiter.refresh();
        return this.group(group, script, mustReplicate, true);
      }
      throw error;
    }
    const { answers, acknowledged } = answered;
    if (typeof acknowledged === 'number' && acknowledged >= this.options.waitReplicas) {
      return answers as (Answer | Error)[];
    }
    const short = new NotReplicatedError(
      acknowledged instanceof Error
        ? `WAIT failed: ${acknowledged.message}`
        : `acknowledged by ${acknowledged} of the ${this.options.waitReplicas} replicas asked for within ${this.options.waitTimeoutMs} ms`,
    );
    return (answers as (Answer | Error)[]).map((answer, i) =>
      answer instanceof Error || !mustReplicate(answer as Answer, group[i] as Item) ? answer : short,
    );
  }

  private enqueue(node: string, waiting: Waiting): void {
    let queue = this.queues.get(node);
    if (!queue) {
      queue = { sending: false, waiting: [] };
      this.queues.set(node, queue);
    }
    queue.waiting.push(waiting);
    this.send(node);
  }

  /** Everything waiting for `node` as one pipeline, unless one is in flight there. */
  private send(node: string): void {
    const queue = this.queues.get(node);
    const waiter = this.waiter;
    if (!queue || !waiter || queue.sending || queue.waiting.length === 0) return;
    queue.sending = true;
    const entries = queue.waiting.splice(0);
    const pipeline = waiter.client.pipeline();
    for (const entry of entries) pipeline.eval(entry.lua, entry.numberOfKeys, ...entry.args);
    pipeline.wait(this.options.waitReplicas, this.options.waitTimeoutMs);
    pipeline
      .exec()
      .then(
        (results) => {
          const [waitError, acknowledged] = results?.[entries.length] ?? [new Error('no answer to WAIT')];
          for (const [i, entry] of entries.entries()) {
            const [error, answers] = results?.[i] ?? [new Error('no answer to the batch')];
            if (error) entry.reject(error);
            else entry.resolve({ answers, acknowledged: waitError ?? Number(acknowledged) });
          }
        },
        (error: unknown) => {
          for (const entry of entries) entry.reject(error);
        },
      )
      .finally(() => {
        queue.sending = false;
        if (queue.waiting.length === 0) this.queues.delete(node);
        else this.send(node);
      });
  }
}
