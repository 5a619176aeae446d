/** What the Redis store writes and reads back: values checked before they are trusted. */
import type { CooldownClaim } from './cooldown-store.js';

/** Redis wants whole, positive milliseconds for PX and PEXPIRE. */
export function positiveMs(ms: number): number {
  return Math.max(1, Math.ceil(ms));
}

export function parseClaim(value: string, key: string): CooldownClaim {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    parsed = undefined;
  }
  if (!isClaim(parsed)) throw new Error(`cooldown key ${key} holds something that is not a cooldown claim`);
  return {
    workflowName: parsed.workflowName,
    fingerprint: parsed.fingerprint,
    state: parsed.state,
    claimedAt: parsed.claimedAt,
    ...(parsed.dryRun === true ? { dryRun: true } : {}),
  };
}

/** `held` is a pending claim of the alert that asked with `asked`: one its retry re-uses and acts on. */
export function isPendingClaimOf(held: string, asked: string): boolean {
  try {
    const parsed: unknown = JSON.parse(held);
    const ours: unknown = JSON.parse(asked);
    return isClaim(parsed) && isClaim(ours) && parsed.state === 'pending' && parsed.fingerprint === ours.fingerprint;
  } catch {
    return false;
  }
}

function isClaim(value: unknown): value is CooldownClaim {
  if (typeof value !== 'object' || value === null) return false;
  const candidate = value as Record<string, unknown>;
  return (
    typeof candidate.workflowName === 'string' &&
    typeof candidate.fingerprint === 'string' &&
    (candidate.state === 'pending' || candidate.state === 'committed') &&
    typeof candidate.claimedAt === 'number'
  );
}
