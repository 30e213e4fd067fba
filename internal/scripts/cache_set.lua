-- Set one cache entry with its tags, atomically, in one round trip.
--
-- KEYS[1]  data key            kv:{c:NAME}:d:ID
-- KEYS[2]  id->tags set        kv:{c:NAME}:t:ID
-- KEYS[3..] tag->ids sets of the entry's new tags   kv:{c:NAME}:g:TAG
-- ARGV[1]  payload
-- ARGV[2]  lifetime in milliseconds; "0" means unlimited
-- ARGV[3]  the id
-- ARGV[4]  tag-set key prefix  kv:{c:NAME}:g:
-- ARGV[5..] the new tags, in the order of KEYS[3..]
--
-- Tags the id had before but not now are removed from their tag sets. Those
-- sets' names are only known here (from KEYS[2]); they carry the same hash
-- tag as KEYS[1], so they are in the same slot.
-- Returns the number of tags the entry left.

local id, prefix = ARGV[3], ARGV[4]
local keep = {}
for i = 5, #ARGV do
  keep[ARGV[i]] = true
end

local left = 0
for _, old in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if not keep[old] then
    redis.call('SREM', prefix .. old, id)
    left = left + 1
  end
end
redis.call('DEL', KEYS[2])

for i = 3, #KEYS do
  redis.call('SADD', KEYS[i], id)
end

local ttl = tonumber(ARGV[2])
if ttl > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
else
  redis.call('SET', KEYS[1], ARGV[1])
end
if #ARGV >= 5 then
  redis.call('SADD', KEYS[2], unpack(ARGV, 5))
  if ttl > 0 then
    redis.call('PEXPIRE', KEYS[2], ttl)
  end
end
return left
