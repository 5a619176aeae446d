/**
 * The Lua scripts behind the Redis cooldown store, each atomic in Redis. Claims, commits and
 * audit records take a batch of keys or records per call (the store sends one call per event-loop
 * turn); release and the rate slot take one key.
 */
import type { Redis } from 'ioredis';
import { type AuditCommands, defineAuditScripts } from './redis-audit.js';
import type { BatchScript } from './redis-batches.js';
import { type CooldownCommands, defineCooldownScripts } from './redis-cooldowns.js';
import { definePauseScripts, type PauseCommands } from './redis-pauses.js';
import { defineRemediationScripts, type RemediationCommands } from './redis-remediation-scripts.js';

/**
 * KEYS cooldown keys; ARGV a claim JSON and a lease in ms per key. Answers one entry per key:
 * nil when the claim was taken (SET NX), else the claim that holds the key. Keys are claimed in
 * order, each atomically, so a key named twice is taken by the first and held for the second.
 * A key that fails (it holds another type) answers its own error; the others are unaffected.
 * A pending claim of the same fingerprint found is written again, unchanged (its own TTL): the
 * caller acts on it (its alert's retry re-uses it), and WAIT only waits for what this connection
 * wrote, so without this write it would not cover a claim another connection wrote and the
 * replicas never acknowledged.
 */
const CLAIM_LUA = `
local answers = {}
for i, key in ipairs(KEYS) do
  local set = redis.pcall('SET', key, ARGV[2 * i - 1], 'PX', ARGV[2 * i], 'NX')
  if type(set) == 'table' and set.err then
    answers[i] = set
  elseif set then
    answers[i] = false
  else
    local held = redis.pcall('GET', key)
    if type(held) == 'string' then
      -- Most keys found are committed: only a pending one is compared with the caller's claim.
      local ok, claim = pcall(cjson.decode, held)
      if ok and type(claim) == 'table' and claim.state == 'pending' then
        local asked, ours = pcall(cjson.decode, ARGV[2 * i - 1])
        if asked and type(ours) == 'table' and claim.fingerprint == ours.fingerprint then
          local ttl = redis.call('PTTL', key)
          if ttl > 0 then
            redis.call('PEXPIRE', key, ttl)
          end
        end
      end
    end
    answers[i] = held
  end
end
return answers
`;

/**
 * KEYS cooldown keys; ARGV per key: workflowName, a TTL in ms, the claim to write when the key is
 * gone, and the mode. `commit` makes the claim committed for the TTL; `hold` keeps a pending
 * claim for at least the TTL (never shorter, never back from committed); `replace` writes the
 * claim given in place of the caller's for the TTL. Answers 1 per key done,
 * 0 where another claim holds the key, or that key's error. A key that has expired is written
 * anyway: the Workflow exists (or may), so its cooldown must hold.
 */
const COMMIT_LUA = `
local function settle(key, name, ms, absent, mode)
  local current = redis.call('GET', key)
  if not current then
    redis.call('SET', key, absent, 'PX', ms)
    return 1
  end
  local ok, claim = pcall(cjson.decode, current)
  if not ok or type(claim) ~= 'table' or claim.workflowName ~= name then
    return 0
  end
  if mode == 'hold' then
    if claim.state == 'pending' and redis.call('PTTL', key) < tonumber(ms) then
      redis.call('PEXPIRE', key, ms)
    end
    return 1
  end
  if mode == 'replace' then
    redis.call('SET', key, absent, 'PX', ms)
    return 1
  end
  claim.state = 'committed'
  redis.call('SET', key, cjson.encode(claim), 'PX', ms)
  return 1
end
local answers = {}
for i, key in ipairs(KEYS) do
  local ok, answer = pcall(settle, key, ARGV[4 * i - 3], ARGV[4 * i - 2], ARGV[4 * i - 1], ARGV[4 * i])
  if ok then
    answers[i] = answer
  else
    answers[i] = { err = tostring(answer) }
  end
end
return answers
`;

/** KEYS[1] cooldown key; ARGV workflowName. */
const RELEASE_LUA = `
local current = redis.call('GET', KEYS[1])
if not current then
  return 0
end
local ok, claim = pcall(cjson.decode, current)
if not ok or type(claim) ~= 'table' or claim.workflowName ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[1])
return 1
`;

/**
 * KEYS[1] counter of one window; ARGV limit, counter TTL. Reads before incrementing so a storm
 * of refused takes leaves the counter at the limit instead of inflating it.
 */
const TAKE_RATE_SLOT_LUA = `
local taken = tonumber(redis.call('GET', KEYS[1]) or '0')
if taken >= tonumber(ARGV[1]) then
  return 0
end
if redis.call('INCR', KEYS[1]) == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
`;

/** KEYS[1] counter of one window. Gives one slot back, never below zero. */
const RETURN_RATE_SLOT_LUA = `
if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then
  redis.call('DECR', KEYS[1])
end
return 1
`;

/** The client with the scripts above (and the remediation, cooldown and pause scripts) as commands. */
export type ScriptedRedis = Redis &
  AuditCommands &
  RemediationCommands &
  CooldownCommands &
  PauseCommands & {
    cooldownClaim(numberOfKeys: number, ...keysThenArgs: (string | number)[]): Promise<(string | null | Error)[]>;
    cooldownCommit(numberOfKeys: number, ...keysThenArgs: (string | number)[]): Promise<(number | Error)[]>;
    cooldownRelease(key: string, workflowName: string): Promise<number>;
    takeRateSlot(key: string, limit: number, ttlMs: number): Promise<number>;
    returnRateSlot(key: string): Promise<number>;
  };

/** Makes each script a command of the client (ioredis sends EVALSHA, and the script once if Redis lacks it). */
export function defineScripts(client: Redis): void {
  // The number of keys varies with the batch: given first on every call.
  client.defineCommand('cooldownClaim', { lua: CLAIM_LUA });
  defineAuditScripts(client);
  client.defineCommand('cooldownCommit', { lua: COMMIT_LUA });
  client.defineCommand('cooldownRelease', { numberOfKeys: 1, lua: RELEASE_LUA });
  client.defineCommand('takeRateSlot', { numberOfKeys: 1, lua: TAKE_RATE_SLOT_LUA });
  client.defineCommand('returnRateSlot', { numberOfKeys: 1, lua: RETURN_RATE_SLOT_LUA });
  defineRemediationScripts(client);
  defineCooldownScripts(client);
  definePauseScripts(client);
}

/** One claim of a batch (CLAIM_LUA): the key, the claim JSON, its lease in ms. */
export type ClaimItem = { key: string; value: string; ttl: number };

export type SettleMode = 'commit' | 'hold' | 'replace';

/** One settlement of a batch (COMMIT_LUA). */
export type CommitItem = { key: string; workflowName: string; ttl: number; absent: string; mode: SettleMode };

function claimKeysThenArgs(group: ClaimItem[]): (string | number)[] {
  return [...group.map((i) => i.key), ...group.flatMap((i) => [i.value, i.ttl])];
}

function commitKeysThenArgs(group: CommitItem[]): (string | number)[] {
  return [...group.map((i) => i.key), ...group.flatMap((i) => [i.workflowName, i.ttl, i.absent, i.mode])];
}

/** The claim batch, as ReplicatedBatches sends it. */
export const CLAIM_BATCH: BatchScript<ClaimItem> = {
  lua: CLAIM_LUA,
  keysThenArgs: claimKeysThenArgs,
  direct: (client, group) => client.cooldownClaim(group.length, ...claimKeysThenArgs(group)),
};

/** The commit (hold, replace) batch. */
export const COMMIT_BATCH: BatchScript<CommitItem> = {
  lua: COMMIT_LUA,
  keysThenArgs: commitKeysThenArgs,
  direct: (client, group) => client.cooldownCommit(group.length, ...commitKeysThenArgs(group)),
};
