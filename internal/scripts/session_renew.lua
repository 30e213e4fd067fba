-- Move a session to a new id (session-fixation protection), atomically.
--
-- KEYS[1]  old record            kv:{s:PREFIX}:OLDHASH
-- KEYS[2]  new record            kv:{s:PREFIX}:NEWHASH
-- KEYS[3]  expiry index          kv:{s:PREFIX}:idx
-- KEYS[4]  user index, or kv:{s:PREFIX}:u: when none
-- ARGV[1]  SHA1 of the old record as the caller read it
-- ARGV[2]  the record for the new id (JSON)
-- ARGV[3]  the read-only stub left at the old id (JSON)
-- ARGV[4]  grace period in milliseconds
-- ARGV[5]  old member, ARGV[6] new member
-- ARGV[7]  "1" if KEYS[4] is a real user index
--
-- The new record keeps the old one's remaining lifetime. The stub stays
-- readable for the grace period (capped by that lifetime), then vanishes.
-- Returns 1 on success, 0 if the old record changed or expired meanwhile,
-- -1 if the new id is taken (never in practice: ids are 256-bit random).

local cur = redis.call('GET', KEYS[1])
if not cur or redis.sha1hex(cur) ~= ARGV[1] then return 0 end
local ttl = redis.call('PTTL', KEYS[1])
if ttl <= 0 then return 0 end
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local score = now + ttl

redis.call('SET', KEYS[2], ARGV[2], 'PX', ttl)
redis.call('SET', KEYS[1], ARGV[3], 'PX', math.min(tonumber(ARGV[4]), ttl))
redis.call('ZREM', KEYS[3], ARGV[5])
redis.call('ZADD', KEYS[3], score, ARGV[6])
if ARGV[7] == '1' then
  redis.call('ZREM', KEYS[4], ARGV[5])
  redis.call('ZADD', KEYS[4], score, ARGV[6])
end
return 1
