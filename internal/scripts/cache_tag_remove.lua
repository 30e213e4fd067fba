-- Sharded caches: remove ids from a tag set unless they were tagged again.
--
-- KEYS[1]  tag set (sorted set)  kv:c:NAME:g:{TAG}
-- ARGV     pairs: id, the score the caller read for it
--
-- cache_tag_add.lua raises the score on every add, so a member whose score
-- went up since the caller read it was tagged again meanwhile and stays.
-- Returns the number of ids removed.

local removed = 0
for i = 1, #ARGV, 2 do
  local cur = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if cur and tonumber(cur) <= tonumber(ARGV[i + 1]) then
    removed = removed + redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return removed
