-- Sharded caches, step 1 of Set: add an id to one tag's index, marked
-- pending until its value is written.
--
-- KEYS[1]  the tag's index (sorted set)    kv:c:NAME:i:{TAG}
-- KEYS[2]  the tag's pending marks         kv:c:NAME:p:{TAG}
-- ARGV[1]  the id
-- ARGV[2]  the entry's lifetime in milliseconds; "0" means unlimited
-- ARGV[3]  slack in milliseconds
--
-- The score is when the membership may be dropped: this server's time +
-- lifetime + slack (UNLIMITED when unlimited). It always rises by at least
-- 1 on every add, so a flush that read a score removes the member only if
-- nobody tagged the id since. The pending mark (score: now + slack, the
-- deadline for writing the value) keeps a flush from removing the member
-- while the value may still be written; step 3 (cache_tag_commit.lua)
-- clears it. Expired members are pruned here too.
-- Returns the deadline.

local now = now_ms()
prune_expired(KEYS[1], now)
local ttl, slack = tonumber(ARGV[2]), tonumber(ARGV[3])
local score = UNLIMITED
if ttl > 0 then
  score = now + ttl + slack
end
local cur = redis.call('ZSCORE', KEYS[1], ARGV[1])
if cur and tonumber(cur) >= score then
  score = tonumber(cur) + 1
end
redis.call('ZADD', KEYS[2], now + slack, ARGV[1])
redis.call('ZADD', KEYS[1], score, ARGV[1])
return now + slack
