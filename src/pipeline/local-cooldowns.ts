import type { Rule } from '../rules/types.js';

/** How long a claim holds its key once its Workflow exists: an approval rule's until the approval is decided. */
export function heldForMs(rule: Rule): number {
  const { cooldownMs, approval, approvalTimeoutMs } = rule.remediation;
  return approval === 'required' ? Math.max(cooldownMs, approvalTimeoutMs) : cooldownMs;
}

export interface LocalCooldown {
  workflowName: string;
  /** Epoch ms at which this replica stops answering for the key itself. */
  until: number;
  dryRun: boolean;
}

/** Keys remembered at most; past it the oldest are forgotten (and asked of the store again). */
const MAX_KEPT = 100_000;

/**
 * The committed cooldowns this replica has seen (SPEC §10), answered without a round trip to the
 * store until they expire: an alert that keeps firing inside its cooldown, resent every minute by
 * Prometheus, is the common case. Only committed claims are kept (a Workflow exists), each until no
 * later than the store's own TTL (from the claim's time), so a key is never answered for longer
 * than the store holds it; a key ended by hand is dropped on every replica at once (the store's
 * pub/sub), and everything is dropped when messages may have been missed.
 */
export class LocalCooldowns {
  private readonly byKey = new Map<string, LocalCooldown>();
  /**
   * When each key was last forgotten, and when everything was: a claim read from the store
   * before a key was ended by hand must not be remembered after the message that ended it.
   */
  private readonly forgottenAt = new Map<string, number>();
  private clearedAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly now: () => number,
    private readonly maxKept = MAX_KEPT,
  ) {}

  get(key: string, now: number): LocalCooldown | undefined {
    const held = this.byKey.get(key);
    if (held && held.until <= now) {
      this.byKey.delete(key);
      return undefined;
    }
    return held;
  }

  /** Remembers what the store said at `askedAt` (epoch ms), unless the key was ended since. */
  remember(key: string, held: LocalCooldown, askedAt: number): void {
    if (held.until <= this.now() || askedAt <= this.clearedAt) return;
    const forgotten = this.forgottenAt.get(key);
    if (forgotten !== undefined && askedAt <= forgotten) return;
    this.byKey.delete(key);
    this.byKey.set(key, held);
    if (this.byKey.size > this.maxKept) {
      const oldest = this.byKey.keys().next().value;
      if (oldest !== undefined) this.byKey.delete(oldest);
    }
  }

  forget(key: string): void {
    this.byKey.delete(key);
    this.forgottenAt.delete(key);
    this.forgottenAt.set(key, this.now());
    if (this.forgottenAt.size > this.maxKept) {
      const oldest = this.forgottenAt.keys().next().value;
      if (oldest !== undefined) this.forgottenAt.delete(oldest);
    }
  }

  clear(): void {
    this.byKey.clear();
    this.forgottenAt.clear();
    this.clearedAt = this.now();
  }

  get size(): number {
    return this.byKey.size;
  }
}
