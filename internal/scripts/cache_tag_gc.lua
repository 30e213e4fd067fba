-- Sharded caches: drop memberships whose entries have expired.
--
-- KEYS[1]  tag set (sorted set)  kv:c:NAME:g:{TAG}
--
-- Scores are expiry times on this server's clock plus slack (see
-- cache_tag_add.lua), so everything scored before now belongs to entries
-- that no longer exist. Returns the number of ids removed.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)
