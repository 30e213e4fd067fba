-- Sharded caches, step 3 of Set: the value is written; clear the pending
-- mark and raise the member's score by 1, so that a flush that read the
-- score before the value was written does not remove the member.
--
-- KEYS[1]  the tag's index           kv:c:NAME:i:{TAG}
-- KEYS[2]  the tag's pending marks   kv:c:NAME:p:{TAG}
-- ARGV[1]  the id

local cur = redis.call('ZSCORE', KEYS[1], ARGV[1])
if cur then
  redis.call('ZADD', KEYS[1], tonumber(cur) + 1, ARGV[1])
end
return redis.call('ZREM', KEYS[2], ARGV[1])
