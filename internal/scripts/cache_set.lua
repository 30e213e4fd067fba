-- Set one cache entry with its tags, atomically, in one round trip.
--
-- KEYS[1]   value key                     kv:{c:NAME}:v:ID
-- KEYS[2..] indexes of the entry's tags   kv:{c:NAME}:i:TAG
-- ARGV[1]   the value: header, tags, payload
-- ARGV[2]   lifetime in milliseconds; "0" means unlimited
-- ARGV[3]   the id
-- ARGV[4..] the entry's tags, in the order of KEYS[2..]
--
-- Order (any prefix keeps the cache's invariant, "a live value is in the
-- index of each of its tags"): first the id joins every tag's index (an
-- index also drops members that expired, see below), then the value is
-- written. Tags
-- the entry had before but not now are returned: their indexes are only
-- known now, so the caller removes the id from them in a second call
-- (cache_prune.lua) that declares them; until then they hold a surplus
-- member, which is allowed.

local now = now_ms()
local ttl = tonumber(ARGV[2])
local score = UNLIMITED
if ttl > 0 then
  score = now + ttl
end
if #KEYS > 2 then
  score = score + MULTI
end
local old = tags_of(KEYS[1])

-- Each index is pruned by about one Set in four (chosen by the clock's
-- microseconds): under churn an index then holds its live members plus
-- the few that expired since its last pruning, at a quarter of the cost.
local us = tonumber(redis.call('TIME')[2])
for i = 2, #KEYS do
  if (us + i) % 4 == 0 then
    prune_expired(KEYS[i], now)
  end
  redis.call('ZADD', KEYS[i], score, ARGV[3])
end

if ttl > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
else
  redis.call('SET', KEYS[1], ARGV[1])
end

for i = 4, #ARGV do
  old[ARGV[i]] = nil
end
local left = {}
for t in pairs(old) do
  left[#left + 1] = t
end
return left
