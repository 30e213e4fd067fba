-- Sharded caches: add an id to a tag set before its entry is written.
--
-- KEYS[1]  tag set (sorted set)  kv:c:NAME:g:{TAG}
-- ARGV[1]  the id
-- ARGV[2]  the entry's lifetime in milliseconds; "0" means unlimited
-- ARGV[3]  slack in milliseconds added to the expiry
--
-- The score is when the membership may be garbage-collected: this
-- server's time + lifetime + slack (a far-future constant when unlimited).
-- It never goes down and always goes up by at least 1 on every add, so a
-- flush that read a score can remove the member only if nobody tagged the
-- id again since (see cache_tag_remove.lua).
-- Returns the new score.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
local score = 1e15 -- unlimited: about the year 33658
if ttl > 0 then
  score = now + ttl + tonumber(ARGV[3])
end
local cur = redis.call('ZSCORE', KEYS[1], ARGV[1])
if cur then
  cur = tonumber(cur)
  if cur >= score then
    score = cur + 1
  end
end
redis.call('ZADD', KEYS[1], score, ARGV[1])
return tostring(score)
