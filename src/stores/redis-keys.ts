import calculateSlot from 'cluster-key-slot';
import type { RemediationState } from '../remediation/model.js';

/**
 * Every Redis key and channel of the store, in one place: the store, its remediations and its
 * cooldowns name them alike.
 *
 * On a Redis Cluster (`tagged`) the keys one script names share a slot through hash tags: a
 * cooldown key and its ended marker by a tag computed from the cooldown key (`cooldown:{<n>}<key>`), and the audit
 * stream with every remediation record, marker, the index and the activity counts by `{records}`. Elsewhere the names
 * stay as they were, so an upgrade finds the cooldowns already held.
 */
export class RedisKeys {
  private readonly records: string;

  constructor(
    private readonly prefix: string,
    private readonly tagged = false,
  ) {
    this.records = tagged ? `${prefix}{records}:` : prefix;
  }

  cooldown(key: string): string {
    return `${this.prefix}cooldown:${this.tag(key)}`;
  }

  /** The pattern of every cooldown key, for SCAN MATCH: the prefix's glob characters match themselves. */
  cooldownPattern(): string {
    return `${globEscape(`${this.prefix}cooldown:`)}*`;
  }

  /** The cooldown key a stored key holds, or undefined for a key that is not one. */
  cooldownKeyOf(stored: string): string | undefined {
    const start = `${this.prefix}cooldown:`;
    if (!stored.startsWith(start)) return undefined;
    const key = stored.slice(start.length);
    if (!this.tagged) return key;
    const tag = TAG.exec(key);
    return tag ? key.slice(tag[0].length) : undefined;
  }

  /** Outside the cooldown keys' pattern (`cooldown:*`), so a listing never meets a marker. */
  cooldownEnded(key: string): string {
    return `${this.prefix}cooldown-ended:${this.tag(key)}`;
  }

  cooldownEndedChannel(): string {
    return `${this.prefix}cooldown-ended`;
  }

  /**
   * Every pause in one hash (id → pause), so that adding one and dropping the expired ones is
   * one script on one key, on a Redis Cluster too.
   */
  pauses(): string {
    return `${this.prefix}pauses`;
  }

  pausesChannel(): string {
    return `${this.prefix}pauses-changed`;
  }

  rate(window: number): string {
    return `${this.prefix}rate:${window}`;
  }

  /** The audit stream: decisions, and the remediations' and escalations' entries among them. */
  decisions(): string {
    return `${this.records}decisions`;
  }

  /** Which entry of the audit stream is a fingerprint's latest, for folding its repeats into it. */
  foldNote(fingerprint: string): string {
    return `${this.records}audit-fold:${fingerprint}`;
  }

  /** `<namespace>/<name>` holds no colon (Kubernetes names do not), so a record never meets a marker. */
  remediation(workflow: string): string {
    return `${this.records}remediation:${workflow}`;
  }

  marker(workflow: string, state: RemediationState): string {
    return `${this.remediation(workflow)}:${state}`;
  }

  remediationIndex(): string {
    return `${this.records}remediations`;
  }

  attempts(key: string): string {
    return `${this.prefix}attempts:${key}`;
  }

  escalations(key: string): string {
    return `${this.prefix}escalations:${key}`;
  }

  /**
   * The cooldown keys that have escalations (a sorted set, each scored by the expiresAt of its
   * escalation that ends last), so the listing never scans the keyspace. Untagged: on a Redis
   * Cluster it is a slot of its own, written by a command of its own.
   */
  escalationIndex(): string {
    return `${this.prefix}escalation-index`;
  }

  /**
   * One hour's activity (a hash of counts, SPEC §12), by its index since the epoch. Beside the
   * audit stream and the remediation records: the scripts that write those count in it.
   */
  activity(hour: number): string {
    return `${this.records}activity:${hour}`;
  }

  /** Rule → epoch ms of its latest matching decision. */
  lastMatch(): string {
    return `${this.records}last-match`;
  }

  /**
   * Redis hashes only what is between the first `{` and the next `}`, so the key itself (which
   * may hold braces) cannot be the tag: the tag is a number computed from the key, the same for
   * both keys of a cooldown, spread over the slots as the keys are.
   */
  private tag(key: string): string {
    return this.tagged ? `{${calculateSlot(key)}}${key}` : key;
  }
}

/** The hash tag a cooldown key carries on a Redis Cluster (`{<slot>}`). */
const TAG = /^\{\d+\}/;

/** The prefix is the operator's: its glob characters must match themselves in SCAN MATCH. */
function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}
