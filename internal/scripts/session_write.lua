-- Write a session record with an optimistic check, and keep its indexes.
--
-- KEYS[1]  record                kv:{s:PREFIX}:HASH (HASH under the current key)
-- KEYS[2]  expiry index (zset)   kv:{s:PREFIX}:idx
-- KEYS[3]  the record's user index (zset), or kv:{s:PREFIX}:u: when none
-- KEYS[4]  the previous user index, when the user changed (else = KEYS[3])
-- KEYS[5]  where the current value is: KEYS[1], or the record's key under a
--          previous store key when the write moves it to the current one
-- ARGV[1]  expected current value (at KEYS[5]): "" = must not exist,
--          "*" = anything, else the SHA1 of the current value
-- ARGV[2]  the record (JSON)
-- ARGV[3]  time to live in milliseconds
-- ARGV[4]  the index member (HASH)
-- ARGV[5]  "1" if KEYS[3] is a real user index
-- ARGV[6]  "1" if KEYS[4] is a real user index
-- ARGV[7]  "" or, when moving, the member of KEYS[5] (its HASH under the previous key)
-- ARGV[8]  m: copies of the record under previous keys to delete (a blind write
--          does not know where the record was): KEYS[6..5+m], members ARGV[9..8+m]
-- ARGV[9+m] the most sessions the user may have (0: no limit); when the write
--          adds one beyond it, the user's sessions that expire soonest go: their
--          records must be among KEYS[6+m..] (members ARGV[10+m..]), declared
--          by the caller from the user index
--
-- Index scores are expiry times on this server's clock (ms). Returns {1,
-- evicted sessions} if written, {0} if the current value did not match (a
-- concurrent write), {-2} if a blind write ("*") would replace something
-- that is not a session record (it is left for a person to look at), {-3,
-- members...} when the limit needs to evict sessions the caller did not
-- declare: nothing is written, and the caller calls again declaring these
-- members of the user index.

local src = KEYS[5]
local cur = redis.call('GET', src)
local want = ARGV[1]
if want == '' then
  if cur then return {0} end
elseif want == '*' then
  if cur and string.sub(cur, 1, 7) ~= '{"v":1,' then return {-2} end
else
  if not cur or redis.sha1hex(cur) ~= want then return {0} end
end
local moving = ARGV[7] ~= ''
if moving and redis.call('EXISTS', KEYS[1]) == 1 then
  return {0} -- already moved by someone else: read again
end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
local score = now + ttl
local member = ARGV[4]
local m = tonumber(ARGV[8])
local limit = tonumber(ARGV[9 + m])

-- The per-user limit: decided before anything is written.
local declared = {} -- member -> its record's key, as the caller declared them
for i = 10 + m, #ARGV do
  declared[ARGV[i]] = KEYS[i - 4]
end
local victims = {}
if limit > 0 and ARGV[5] == '1' and not redis.call('ZSCORE', KEYS[3], member)
    and not (moving and redis.call('ZSCORE', KEYS[3], ARGV[7])) then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now) -- expired: their records are gone
  local members = redis.call('ZRANGE', KEYS[3], 0, -1)
  local excess = #members + 1 - limit
  if excess > 0 then
    for i = 1, excess do
      if not declared[members[i]] then
        local out = {-3}
        for _, x in ipairs(members) do
          out[#out + 1] = x
        end
        return out
      end
      victims[#victims + 1] = members[i]
    end
  end
end

redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
redis.call('ZADD', KEYS[2], score, member)
expire_at_max(KEYS[2])
if ARGV[6] == '1' and KEYS[4] ~= KEYS[3] then
  redis.call('ZREM', KEYS[4], member)
end
if ARGV[5] == '1' then
  redis.call('ZADD', KEYS[3], score, member)
  expire_at_max(KEYS[3])
end
-- The record's copies under previous keys go with their index entries.
local gone = {}
if moving then
  gone[#gone + 1] = {src, ARGV[7]}
end
for i = 1, m do
  gone[#gone + 1] = {KEYS[5 + i], ARGV[8 + i]}
end
for _, g in ipairs(gone) do
  if g[1] ~= KEYS[1] then
    redis.call('DEL', g[1])
    redis.call('ZREM', KEYS[2], g[2])
    redis.call('ZREM', KEYS[3], g[2])
    redis.call('ZREM', KEYS[4], g[2])
  end
end
-- Evict the sessions over the limit (declared above).
for _, v in ipairs(victims) do
  redis.call('DEL', declared[v])
  redis.call('ZREM', KEYS[2], v)
  redis.call('ZREM', KEYS[3], v)
end
return {1, #victims}
