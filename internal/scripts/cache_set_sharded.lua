-- Sharded caches: write one entry and its tag list (the tag sets were
-- updated before, by cache_tag_add.lua).
--
-- KEYS[1]  data key        kv:c:NAME:{ID}:d
-- KEYS[2]  id->tags set    kv:c:NAME:{ID}:t
-- ARGV[1]  payload
-- ARGV[2]  lifetime in milliseconds; "0" means unlimited
-- ARGV[3..] the entry's tags
--
-- Tags the entry no longer has keep the id in their sets until it expires
-- there or the tag is flushed: that can only over-invalidate, never miss.

redis.call('DEL', KEYS[2])
local ttl = tonumber(ARGV[2])
if ttl > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
else
  redis.call('SET', KEYS[1], ARGV[1])
end
if #ARGV >= 3 then
  redis.call('SADD', KEYS[2], unpack(ARGV, 3))
  if ttl > 0 then
    redis.call('PEXPIRE', KEYS[2], ttl)
  end
end
return 1
