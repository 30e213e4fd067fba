-- Drop expired members from a session index. The listing sends ZRANGE
-- right behind it in the same round trip (a script returning hundreds of
-- members costs the server more than twice a plain ZRANGE of them).
--
-- KEYS[1]  an index (zset member -> expiry ms): kv:{s:PREFIX}:idx or a user index
--
-- Uses this server's clock, the one the scores were written with.
-- Returns how many members it dropped.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)
