/**
 * The Lua scripts behind the closed loop's part of the Redis store (remediations, attempts,
 * escalations), each atomic in Redis. Times that age things out (`now`) come from the store's
 * clock as arguments, as the rate windows do; Redis's own clock only runs the keys' TTLs.
 *
 * Redis Cluster (SPEC §10): a script that names several keys needs them in one slot. The
 * remediation scripts name several (marker, record, index, audit stream; the index and the
 * records it lists); the attempt and escalation scripts name one each. Hash tags would put them
 * together when the store moves to Cluster.
 */
import type { Redis } from 'ioredis';

/**
 * KEYS[1] the marker of one Workflow and state, KEYS[2] the Workflow's record, KEYS[3] the index
 * of remediations (sorted by submittedAt), KEYS[4] the audit stream.
 * ARGV[1] the remediation JSON, ARGV[2] the rank of its state, ARGV[3] the retention in ms,
 * ARGV[4] submittedAt (epoch ms), ARGV[5] the Workflow, ARGV[6] the oldest submittedAt kept in
 * the index, ARGV[7] the audit entry JSON, ARGV[8] the audit stream's approximate cap, then
 * pairs of state and rank (STATE_RANK, from TypeScript).
 * Answers 1 when this call recorded the transition, 0 when the marker was set already or the
 * stored record is further along. The marker stays set either way: a lagging replica that sees
 * the old state again is refused at once.
 */
const RECORD_TRANSITION_LUA = `
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[3]) then
  return 0
end
local rank = {}
for i = 9, #ARGV - 1, 2 do
  rank[ARGV[i]] = tonumber(ARGV[i + 1])
end
local stored = redis.call('GET', KEYS[2])
if stored then
  local ok, record = pcall(cjson.decode, stored)
  if ok and type(record) == 'table' and rank[record.state] and rank[record.state] > tonumber(ARGV[2]) then
    return 0
  end
end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. ARGV[6])
-- Every record in the index was written no later than now, so none outlives the index.
if redis.call('PTTL', KEYS[3]) < tonumber(ARGV[3]) then
  redis.call('PEXPIRE', KEYS[3], ARGV[3])
end
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[8], '*', 'json', ARGV[7])
return 1
`;

/**
 * KEYS[1] the index of remediations, then the records of Workflows listed there whose record was
 * found gone; ARGV the same Workflows, in order. Drops each from the index only while its record
 * is still gone: a transition recorded meanwhile has written both again.
 */
const FORGET_REMEDIATIONS_LUA = `
local forgotten = 0
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then
    forgotten = forgotten + redis.call('ZREM', KEYS[1], ARGV[i - 1])
  end
end
return forgotten
`;

/**
 * KEYS[1] the attempts of one cooldown key (member Workflow, score epoch ms); ARGV[1] when the
 * attempt was made, ARGV[2] its Workflow, ARGV[3] the newest time that has aged out of the
 * window, ARGV[4] the window in ms. Aged-out attempts go first, so a Workflow counted long ago
 * counts again; one still in the window keeps its first time (NX).
 */
const ADD_ATTEMPT_LUA = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
redis.call('ZADD', KEYS[1], 'NX', ARGV[1], ARGV[2])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[4]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
end
return 1
`;

/**
 * KEYS[1] the escalations of one cooldown key (a hash: id → {alert, expiresAt} JSON).
 * ARGV[1] the id, ARGV[2] the field's JSON, ARGV[3] now (epoch ms), ARGV[4] its ttl in ms.
 * Redis before 7.4 has no TTL per hash field: a field past its expiresAt counts as absent and is
 * replaced, and the hash lives as long as its longest-lived field. Answers 1 when it opened it.
 */
const OPEN_ESCALATION_LUA = `
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current then
  local ok, held = pcall(cjson.decode, current)
  if ok and type(held) == 'table' and tonumber(held.expiresAt) and tonumber(held.expiresAt) > tonumber(ARGV[3]) then
    return 0
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[4]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
end
return 1
`;

/**
 * KEYS[1] the escalations of one cooldown key; ARGV[1] now (epoch ms), ARGV[2] 'all' or 'ids',
 * then the ids. Takes each field named (every field for 'all') out of the hash and answers the
 * JSON of those that had not expired, so each is resolved by exactly one caller. Expired fields
 * named are dropped too.
 */
const CLOSE_ESCALATIONS_LUA = `
local now = tonumber(ARGV[1])
local ids = {}
if ARGV[2] == 'all' then
  ids = redis.call('HKEYS', KEYS[1])
else
  for i = 3, #ARGV do
    ids[#ids + 1] = ARGV[i]
  end
end
local taken = {}
for _, id in ipairs(ids) do
  local current = redis.call('HGET', KEYS[1], id)
  if current then
    redis.call('HDEL', KEYS[1], id)
    local ok, held = pcall(cjson.decode, current)
    if ok and type(held) == 'table' and tonumber(held.expiresAt) and tonumber(held.expiresAt) > now then
      taken[#taken + 1] = current
    end
  end
end
return taken
`;

/** The remediation scripts as commands of the client. */
export interface RemediationCommands {
  recordTransition(
    marker: string,
    record: string,
    index: string,
    stream: string,
    ...args: (string | number)[]
  ): Promise<number>;
  forgetRemediations(numberOfKeys: number, ...keysThenArgs: string[]): Promise<number>;
  addAttempt(key: string, at: number, workflow: string, agedOut: number, windowMs: number): Promise<number>;
  openEscalation(key: string, id: string, value: string, now: number, ttlMs: number): Promise<number>;
  closeEscalations(key: string, now: number, mode: 'all' | 'ids', ...ids: string[]): Promise<string[]>;
}

export function defineRemediationScripts(client: Redis): void {
  client.defineCommand('recordTransition', { numberOfKeys: 4, lua: RECORD_TRANSITION_LUA });
  // The number of records found gone varies: given first on every call.
  client.defineCommand('forgetRemediations', { lua: FORGET_REMEDIATIONS_LUA });
  client.defineCommand('addAttempt', { numberOfKeys: 1, lua: ADD_ATTEMPT_LUA });
  client.defineCommand('openEscalation', { numberOfKeys: 1, lua: OPEN_ESCALATION_LUA });
  client.defineCommand('closeEscalations', { numberOfKeys: 1, lua: CLOSE_ESCALATIONS_LUA });
}
