import type { RemediationState } from '../remediation/model.js';

/**
 * Every Redis key and channel of the store, in one place: the store, its remediations and its
 * cooldowns name them alike, and a change of layout (hash tags for Redis Cluster) is made here.
 */
export class RedisKeys {
  constructor(private readonly prefix: string) {}

  cooldown(key: string): string {
    return `${this.prefix}cooldown:${key}`;
  }

  /** Outside the cooldown keys' pattern (`cooldown:*`), so a listing never meets a marker. */
  cooldownEnded(key: string): string {
    return `${this.prefix}cooldown-ended:${key}`;
  }

  cooldownEndedChannel(): string {
    return `${this.prefix}cooldown-ended`;
  }

  rate(window: number): string {
    return `${this.prefix}rate:${window}`;
  }

  /** The audit stream: decisions, and the remediations' and escalations' entries among them. */
  decisions(): string {
    return `${this.prefix}decisions`;
  }

  /** `<namespace>/<name>` holds no colon (Kubernetes names do not), so a record never meets a marker. */
  remediation(workflow: string): string {
    return `${this.prefix}remediation:${workflow}`;
  }

  marker(workflow: string, state: RemediationState): string {
    return `${this.remediation(workflow)}:${state}`;
  }

  remediationIndex(): string {
    return `${this.prefix}remediations`;
  }

  attempts(key: string): string {
    return `${this.prefix}attempts:${key}`;
  }

  escalations(key: string): string {
    return `${this.prefix}escalations:${key}`;
  }
}
