import { setTimeout as delay } from 'node:timers/promises';
import type { CooldownClaim, CooldownStore } from '../../src/stores/cooldown-store.js';

/**
 * A failover under claims, for a store on Redis Sentinel or Cluster: claims on new keys before,
 * during and after the master is killed. Each claim taken is one the store said was acknowledged
 * (by the replicas WAIT asked for); afterwards each is claimed again under another name, and one
 * that is taken again was lost by the failover.
 */

const KEYS_BEFORE = 60;
/** Real time between claims while the master is gone. */
const PACE_MS = 20;
/** How long the store may take to find the new master once it serves. */
const RECOVERY_BOUND_MS = 15_000;
const LONG_MS = 600_000;

export interface FailoverOutcome {
  /** Claims the store took (and so said were acknowledged), before and during the failover. */
  acknowledged: number;
  /** Claims refused with an error during the failover. */
  refused: number;
  /** Those errors, for the caller to check they are the store's StoreUnavailableError. */
  errors: unknown[];
  /** Keys an acknowledged claim held that a second claim took anyway. */
  lost: string[];
  /** A claim was taken after the failover. */
  afterwards: boolean;
}

function pending(workflowName: string): CooldownClaim {
  return { workflowName, fingerprint: `fp-${workflowName}`, state: 'pending', claimedAt: Date.now() };
}

export async function failover(options: {
  store: CooldownStore;
  /** Kills the master holding `key` (the first key claimed); answers its port. */
  kill: (key: string) => Promise<number>;
  /** Resolves once a new master serves what the killed one (on `port`) held. */
  recovered: (port: number, key: string) => Promise<unknown>;
}): Promise<FailoverOutcome> {
  const { store } = options;
  const held: string[] = [];
  const errors: unknown[] = [];
  let next = 0;
  const claimNext = async (): Promise<boolean> => {
    const key = `failover:shop/checkout-${next++}`;
    try {
      const result = await store.claim(key, pending(`wf-${key}`), LONG_MS);
      if (result.acquired) held.push(key);
      return result.acquired;
    } catch (error) {
      errors.push(error);
      return false;
    }
  };

  for (let i = 0; i < KEYS_BEFORE; i++) await claimNext();
  const errorsBefore = errors.length;
  const first = held[0];
  if (first === undefined) throw new Error(`no claim was taken before the failover: ${String(errors[0])}`);

  const port = await options.kill(first);
  let done = false;
  const recovered = options.recovered(port, first).finally(() => {
    done = true;
  });
  while (!done) {
    await claimNext();
    await delay(PACE_MS);
  }
  await recovered;

  let afterwards = false;
  const deadline = Date.now() + RECOVERY_BOUND_MS;
  while (!afterwards && Date.now() < deadline) {
    afterwards = await claimNext();
    if (!afterwards) await delay(PACE_MS);
  }

  const lost: string[] = [];
  for (const key of held) {
    const again = await store.claim(key, pending('second'), LONG_MS);
    if (again.acquired) lost.push(key);
  }
  return {
    acknowledged: held.length,
    refused: errors.length - errorsBefore,
    errors,
    lost,
    afterwards,
  };
}
