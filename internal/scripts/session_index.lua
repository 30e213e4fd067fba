-- Drop expired members from a session index and list the live ones.
--
-- KEYS[1]  an index (zset member -> expiry ms): kv:{s:PREFIX}:idx or a user index
--
-- Uses this server's clock, the one the scores were written with.
-- Returns the live members, soonest expiry first.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)
return redis.call('ZRANGE', KEYS[1], 0, -1)
