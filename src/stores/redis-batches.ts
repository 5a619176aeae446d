import type { RedisConnection } from './redis-connection.js';
import { groupBySlot, REDIRECTION } from './redis-connection.js';
import type { ScriptedPipeline, ScriptedRedis } from './redis-scripts.js';

/** A write a failover could lose: it did not reach the replicas WAIT asked for in time. */
export class NotReplicatedError extends Error {}

export interface ReplicationOptions {
  /** A claim or commit counts once this many replicas acknowledged it; 0 does not wait. */
  waitReplicas: number;
  waitTimeoutMs: number;
}

/**
 * The batch scripts (claims, commits) as Redis must see them: one call per slot on a cluster,
 * and, when replicas must acknowledge, each followed by WAIT on the same connection.
 */
export class ReplicatedBatches {
  constructor(
    private readonly connection: Pick<RedisConnection, 'cluster' | 'refreshRouting'>,
    private readonly client: ScriptedRedis,
    private readonly options: ReplicationOptions,
  ) {}

  /**
   * One batch script call per slot (one in all outside a cluster), each followed by WAIT on the
   * same connection when replicas must acknowledge: an answer the caller may act on
   * (`mustReplicate`: a claim taken, or its own alert's claim found pending) that was not acknowledged in time becomes
   * that item's NotReplicatedError. The claim stays (a
   * retry of the same alert re-uses it, or its lease runs out); nothing acts on it meanwhile.
   */
  async run<Item extends { key: string }, Answer>(
    items: Item[],
    call: <T extends ScriptedRedis | ScriptedPipeline>(target: T, group: Item[]) => unknown,
    mustReplicate: (answer: Answer, item: Item) => boolean,
  ): Promise<(Answer | Error)[]> {
    const groups = groupBySlot(items, (item) => item.key, this.connection.cluster);
    const answered = await Promise.all(groups.map((group) => this.group(group, call, mustReplicate)));
    const byItem = new Map<Item, Answer | Error>();
    for (const [g, group] of groups.entries()) {
      for (const [i, item] of group.entries()) byItem.set(item, answered[g]?.[i] as Answer | Error);
    }
    return items.map((item) => byItem.get(item) as Answer | Error);
  }

  private async group<Item, Answer>(
    group: Item[],
    call: <T extends ScriptedRedis | ScriptedPipeline>(target: T, group: Item[]) => unknown,
    mustReplicate: (answer: Answer, item: Item) => boolean,
    redirected = false,
  ): Promise<(Answer | Error)[]> {
    if (this.options.waitReplicas === 0) return (await call(this.client, group)) as (Answer | Error)[];
    // A cluster's pipeline waits for the slot map however long finding it takes (each node asked
    // in turn, for the command timeout each); a single command fails at once meanwhile.
    if (this.connection.cluster && this.client.status !== 'ready') {
      throw new Error(`cluster not ready (${this.client.status})`);
    }
    const pipeline = this.client.pipeline() as ScriptedPipeline;
    call(pipeline, group);
    pipeline.wait(this.options.waitReplicas, this.options.waitTimeoutMs);
    const results = await pipeline.exec();
    const [scriptError, answers] = results?.[0] ?? [new Error('no answer to the batch')];
    // The script ran nowhere: asked again once, where the cluster now says the slot is.
    if (scriptError && REDIRECTION.test(scriptError.message) && !redirected) {
      await this.connection.refreshRouting();
      return this.group(group, call, mustReplicate, true);
    }
    if (scriptError) throw scriptError;
    const [waitError, acknowledged] = results?.[1] ?? [new Error('no answer to WAIT')];
    const replicated = !waitError && Number(acknowledged) >= this.options.waitReplicas;
    if (replicated) return answers as (Answer | Error)[];
    const short = new NotReplicatedError(
      waitError
        ? `WAIT failed: ${waitError.message}`
        : `acknowledged by ${Number(acknowledged)} of the ${this.options.waitReplicas} replicas asked for within ${this.options.waitTimeoutMs} ms`,
    );
    return (answers as (Answer | Error)[]).map((answer, i) =>
      answer instanceof Error || !mustReplicate(answer as Answer, group[i] as Item) ? answer : short,
    );
  }
}
