/**
 * The Lua scripts behind the closed loop's part of the Redis store (remediations, attempts,
 * escalations), each atomic in Redis. Times that age things out (`now`) come from the store's
 * clock as arguments, as the rate windows do; Redis's own clock only runs the keys' TTLs.
 *
 * Redis Cluster (SPEC §10): a script that names several keys needs them in one slot. The
 * remediation scripts name several (marker, record, index, audit stream, activity; the index and the
 * records it lists); the attempt and escalation scripts name one each. Hash tags would put them
 * together when the store moves to Cluster.
 */
import type { Redis } from 'ioredis';

/**
 * KEYS[1] the marker of one Workflow and state, KEYS[2] the Workflow's record, KEYS[3] the index
 * of remediations (sorted by submittedAt), KEYS[4] the audit stream, KEYS[5] the activity of the
 * hour a final state is counted in (finishedHour; the current hour's when there is none).
 * ARGV[1] the remediation JSON, ARGV[2] its state, ARGV[3] the retention in ms,
 * ARGV[4] submittedAt (epoch ms), ARGV[5] the Workflow, ARGV[6] the oldest submittedAt kept in
 * the index, ARGV[7] the audit entry JSON, ARGV[8] the audit stream's approximate cap, ARGV[9]
 * what the marker of a recorded state holds (the token, or '1'), ARGV[10] the caller's token ('' without
 * one), ARGV[11] the marker of a refused state, ARGV[12] the field of the activity a recorded
 * final state adds 1 to ('' for a state that is not final, or one not counted), ARGV[13] how
 * long the activity is kept in ms, then triples of state, rank and 1 for a final state (STATE_RANK and FINAL_STATES, from
 * TypeScript).
 * Answers 1 when this call recorded the transition, or when the marker holds the caller's token
 * (a retry whose first reply was lost: nothing is written again); 0 when another call set the
 * marker, or when the stored record is further along or final in another state. A refused state
 * sets its marker too: a lagging replica that sees the old state again is refused at once.
 */
const RECORD_TRANSITION_LUA = `
local held = redis.call('GET', KEYS[1])
if held then
  if ARGV[10] ~= '' and held == ARGV[10] then
    return 1
  end
  return 0
end
local rank = {}
local final = {}
for i = 14, #ARGV - 2, 3 do
  rank[ARGV[i]] = tonumber(ARGV[i + 1])
  final[ARGV[i]] = ARGV[i + 2] == '1'
end
local stored = redis.call('GET', KEYS[2])
if stored then
  local ok, record = pcall(cjson.decode, stored)
  if ok and type(record) == 'table' and rank[record.state] then
    if rank[record.state] > rank[ARGV[2]] or (final[record.state] and record.state ~= ARGV[2]) then
      redis.call('SET', KEYS[1], ARGV[11], 'PX', ARGV[3])
      return 0
    end
  end
end
redis.call('SET', KEYS[1], ARGV[9], 'PX', ARGV[3])
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. ARGV[6])
-- Every record in the index was written no later than now, so none outlives the index.
if redis.call('PTTL', KEYS[3]) < tonumber(ARGV[3]) then
  redis.call('PEXPIRE', KEYS[3], ARGV[3])
end
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[8], '*', 'json', ARGV[7])
if ARGV[12] ~= '' then
  redis.call('HINCRBY', KEYS[5], ARGV[12], 1)
  redis.call('PEXPIRE', KEYS[5], ARGV[13])
end
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
 * KEYS[1] the index of the cooldown keys that have escalations (score: when the last of them
 * ends, epoch ms). ARGV[1] a cooldown key, ARGV[2] when an escalation of it opened now ends,
 * ARGV[3] now, ARGV[4] that escalation's ttl in ms. The score never moves back (an escalation
 * that ends sooner leaves the key's later one listed); keys whose escalations have all ended go,
 * so the index holds no more than the keys with escalations firing, listed or not. It lives as
 * long as the escalations it names.
 */
const INDEX_ESCALATION_LUA = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
local held = tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]))
if not held or held < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
end
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[4]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
end
return 1
`;

/**
 * KEYS[1] the index of the cooldown keys that have escalations; ARGV[1] now (epoch ms), ARGV[2]
 * at most how many. Drops the keys whose escalations have all ended, and answers the others,
 * those whose escalations end last first.
 */
const INDEXED_ESCALATIONS_LUA = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
return redis.call('ZREVRANGEBYSCORE', KEYS[1], '+inf', '(' .. ARGV[1], 'LIMIT', 0, ARGV[2])
`;

/**
 * KEYS[1] the escalations of one cooldown key; ARGV[1] now (epoch ms), ARGV[2] 'all', 'ids' or
 * 'prefixes', then the ids or the prefixes. Takes each field named (every field for 'all', every
 * field whose id starts with one of the prefixes for 'prefixes') out of the hash and answers the
 * JSON of those that had not expired, so each is resolved by exactly one caller. Expired fields
 * named are dropped too.
 */
const CLOSE_ESCALATIONS_LUA = `
local now = tonumber(ARGV[1])
local ids = {}
if ARGV[2] == 'all' then
  ids = redis.call('HKEYS', KEYS[1])
elseif ARGV[2] == 'prefixes' then
  for _, id in ipairs(redis.call('HKEYS', KEYS[1])) do
    for i = 3, #ARGV do
      if string.sub(id, 1, #ARGV[i]) == ARGV[i] then
        ids[#ids + 1] = id
        break
      end
    end
  end
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
    activity: string,
    ...args: (string | number)[]
  ): Promise<number>;
  forgetRemediations(numberOfKeys: number, ...keysThenArgs: string[]): Promise<number>;
  addAttempt(key: string, at: number, workflow: string, agedOut: number, windowMs: number): Promise<number>;
  openEscalation(key: string, id: string, value: string, now: number, ttlMs: number): Promise<number>;
  indexEscalation(index: string, cooldownKey: string, expiresAt: number, now: number, ttlMs: number): Promise<number>;
  indexedEscalations(index: string, now: number, max: number): Promise<string[]>;
  closeEscalations(
    key: string,
    now: number,
    mode: 'all' | 'ids' | 'prefixes',
    ...idsOrPrefixes: string[]
  ): Promise<string[]>;
}

export function defineRemediationScripts(client: Redis): void {
  client.defineCommand('recordTransition', { numberOfKeys: 5, lua: RECORD_TRANSITION_LUA });
  // The number of records found gone varies: given first on every call.
  client.defineCommand('forgetRemediations', { lua: FORGET_REMEDIATIONS_LUA });
  client.defineCommand('addAttempt', { numberOfKeys: 1, lua: ADD_ATTEMPT_LUA });
  client.defineCommand('openEscalation', { numberOfKeys: 1, lua: OPEN_ESCALATION_LUA });
  client.defineCommand('closeEscalations', { numberOfKeys: 1, lua: CLOSE_ESCALATIONS_LUA });
  client.defineCommand('indexEscalation', { numberOfKeys: 1, lua: INDEX_ESCALATION_LUA });
  client.defineCommand('indexedEscalations', { numberOfKeys: 1, lua: INDEXED_ESCALATIONS_LUA });
}
