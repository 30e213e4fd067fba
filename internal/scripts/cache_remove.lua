-- Remove cache entries and their tag memberships.
--
-- KEYS     pairs: data key, id->tags set (kv:{c:NAME}:d:ID, kv:{c:NAME}:t:ID), ...
-- ARGV[1]  tag-set key prefix  kv:{c:NAME}:g:
-- ARGV[2..] the ids, in the order of the KEYS pairs
--
-- Tag sets are found through each id's tag list; they share the entries'
-- hash tag, so they are in the same slot. Emptied tag sets disappear.
-- Returns the number of entries whose data existed.

local prefix = ARGV[1]
local removed = 0
for i = 2, #ARGV do
  local id = ARGV[i]
  local dkey, tkey = KEYS[2 * (i - 1) - 1], KEYS[2 * (i - 1)]
  for _, tag in ipairs(redis.call('SMEMBERS', tkey)) do
    redis.call('SREM', prefix .. tag, id)
  end
  removed = removed + redis.call('UNLINK', dkey)
  redis.call('UNLINK', tkey)
end
return removed
