-- Sharded caches, step 2 of Set: write the value, unless the deadline set
-- by step 1 (cache_tag_add.lua) has passed.
--
-- KEYS[1]  value key        kv:c:NAME:{ID}:v
-- ARGV[1]  the value: header, tags, payload
-- ARGV[2]  lifetime in milliseconds; "0" means unlimited
-- ARGV[3]  the earliest deadline step 1 returned (ms, the tag nodes' clocks)
-- ARGV[4]  margin in milliseconds for clock differences between nodes
--
-- A pending mark protects the memberships only until its deadline; a value
-- written later could lose them to a flush, so it is refused and the
-- caller starts again with step 1. Returns 1, or -1 when refused.

if now_ms() > tonumber(ARGV[3]) - tonumber(ARGV[4]) then
  return -1
end
local ttl = tonumber(ARGV[2])
if ttl > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
else
  redis.call('SET', KEYS[1], ARGV[1])
end
return 1
