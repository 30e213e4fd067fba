-- Write a session record with an optimistic check, and keep its indexes.
--
-- KEYS[1]  record                kv:{s:PREFIX}:HASH
-- KEYS[2]  expiry index (zset)   kv:{s:PREFIX}:idx
-- KEYS[3]  the record's user index (zset), or kv:{s:PREFIX}:u: when none
-- KEYS[4]  the previous user index, when the user changed (else = KEYS[3])
-- ARGV[1]  expected current value: "" = must not exist, "*" = anything,
--          else the SHA1 of the current value
-- ARGV[2]  the record (JSON)
-- ARGV[3]  time to live in milliseconds
-- ARGV[4]  the index member (HASH)
-- ARGV[5]  "1" if KEYS[3] is a real user index
-- ARGV[6]  "1" if KEYS[4] is a real user index
--
-- Index scores are expiry times on this server's clock (ms). Returns 1 if
-- written, 0 if the current value did not match (a concurrent write), -2
-- if a blind write ("*") would replace something that is not a session
-- record (it is left for a person to look at).

local cur = redis.call('GET', KEYS[1])
local want = ARGV[1]
if want == '' then
  if cur then return 0 end
elseif want == '*' then
  if cur and string.sub(cur, 1, 7) ~= '{"v":1,' then return -2 end
else
  if not cur or redis.sha1hex(cur) ~= want then return 0 end
end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
local score = now + ttl
local member = ARGV[4]

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
return 1
