-- Extend a lease to a new TTL if it is still held by this token.
--
-- KEYS[1]  owner          kv:{l:NAME}
-- KEYS[2]  shared holders kv:{l:NAME}:r
-- ARGV[1]  token
-- ARGV[2]  TTL in milliseconds
-- ARGV[3]  mode: "x" or "s"
--
-- Returns 1 if extended, 0 if the lease was lost (expired or taken).

local token, ttl = ARGV[1], tonumber(ARGV[2])
if ARGV[3] == 'x' then
  if redis.call('GET', KEYS[1]) ~= token then
    return 0
  end
  redis.call('PEXPIRE', KEYS[1], ttl)
  return 1
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local score = redis.call('ZSCORE', KEYS[2], token)
if not score or tonumber(score) <= now then
  return 0
end
redis.call('ZADD', KEYS[2], 'XX', now + ttl, token)
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[2], math.floor(tonumber(last[2])) + 1)
return 1
