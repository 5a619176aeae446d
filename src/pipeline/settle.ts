import { type CooldownClaim, StoreClosedError, StoreUnavailableError } from '../stores/cooldown-store.js';
import type { GuardDeps } from './guard.js';
import type { Claim } from './stage.js';

/**
 * How a claim ends once its create has been tried: `commit` (the Workflow exists: the full
 * cooldown) or `hold` (the create's outcome is unknown: the pending claim, with its name, kept for
 * the whole cooldown, so that however late the redelivery comes it re-uses the name and gets 409).
 */
export type Settlement = 'commit' | 'hold';

export interface UnsettledClaim {
  workflowName: string;
  fingerprint: string;
  settlement: Settlement;
  /** Epoch ms at which the cooldown is over: the key may be handed out again anyway. */
  until: number;
}

/**
 * The keys whose settlement this replica could not write to the store yet (Redis went away
 * between the create and the commit). While a write is being retried this replica answers for the
 * key from here, so it never hands the key a new name while its Workflow may exist.
 */
export class UnsettledClaims {
  private readonly byKey = new Map<string, UnsettledClaim>();

  get(key: string, now: number): UnsettledClaim | undefined {
    const held = this.byKey.get(key);
    if (held && held.until <= now) {
      this.byKey.delete(key);
      return undefined;
    }
    return held;
  }

  set(key: string, claim: UnsettledClaim): void {
    this.byKey.set(key, claim);
  }

  /** Forgets the key once its write landed, unless a newer settlement of another name replaced it. */
  settled(key: string, workflowName: string): void {
    if (this.byKey.get(key)?.workflowName === workflowName) this.byKey.delete(key);
  }
}

export interface SettleDeps extends GuardDeps {
  /** Waits before the attempt-th retry of a write (1, 2, …); real timers by default. */
  retryDelay?: (attempt: number) => Promise<void>;
}

const FIRST_RETRY_MS = 50;
const MAX_RETRY_MS = 2000;

function backoff(attempt: number): Promise<void> {
  const ms = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** (attempt - 1));
  // Unref'd: a retry waiting for Redis never keeps a finished process alive.
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/**
 * Writes the claim's settlement, retrying until it lands, the cooldown is over, or the store is
 * closed. Resolves true once written; never rejects. Not awaited by the answer: the command is
 * queued at once on the store's connection, and a failed first try keeps the key answered from
 * `unsettled` until a retry lands.
 */
export async function settleClaim(
  claim: Claim,
  settlement: Settlement,
  fingerprint: string,
  cooldownMs: number,
  deps: SettleDeps,
): Promise<boolean> {
  const { key, workflowName } = claim;
  const started = deps.now();
  const until = started + cooldownMs;
  const pending: CooldownClaim = { workflowName, fingerprint, state: 'pending', claimedAt: started };
  const write = () =>
    settlement === 'commit'
      ? deps.store.commit(key, workflowName, cooldownMs)
      : deps.store.hold(key, pending, Math.max(1, until - deps.now()));
  const wait = deps.retryDelay ?? backoff;
  for (let attempt = 0; ; attempt++) {
    if (attempt > 0) await wait(attempt);
    try {
      const written = await write();
      deps.unsettled.settled(key, workflowName);
      if (written && settlement === 'commit') {
        // The commit's TTL runs from now on: answered from memory until no later than it ends.
        deps.local.remember(
          key,
          { workflowName, until: started + cooldownMs, dryRun: deps.submitter?.mode === 'dry-run' },
          started,
        );
      }
      if (attempt > 0) deps.logger.info({ key, workflow: workflowName, attempts: attempt + 1 }, `${settlement} landed`);
      if (!written) {
        deps.logger.warn({ key, workflow: workflowName }, 'cooldown key was taken by another claim while submitting');
      }
      return written;
    } catch (err) {
      if (!(err instanceof StoreUnavailableError)) {
        // Not the store being away (a key holding something else): trying again cannot help.
        deps.unsettled.settled(key, workflowName);
        deps.logger.error({ err, key, workflow: workflowName }, `could not ${settlement} the cooldown`);
        return false;
      }
      deps.metrics.storeErrors.inc({ operation: settlement });
      const closed = err instanceof StoreClosedError || deps.now() >= until;
      if (attempt === 0 || closed) {
        deps.logger.error(
          { err: err.message, key, workflow: workflowName, settlement },
          closed
            ? `could not ${settlement} the cooldown; giving up (${err instanceof StoreClosedError ? 'the store is closed' : 'the cooldown is over'})`
            : `could not ${settlement} the cooldown; retrying until it lands, answering for the key from this replica meanwhile`,
        );
      }
      if (closed) {
        deps.unsettled.settled(key, workflowName);
        return false;
      }
      if (attempt === 0) deps.unsettled.set(key, { workflowName, fingerprint, settlement, until });
    }
  }
}
