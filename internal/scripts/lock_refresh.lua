-- Extend a lease to a new TTL if it is still held by this token, or, with
-- TTL 0, only check that it is.
--
-- KEYS[1]  owner          kv:{l:NAME}
-- KEYS[2]  shared holders kv:{l:NAME}:r
-- ARGV[1]  token
-- ARGV[2]  TTL in milliseconds; "0": check only
-- ARGV[3]  mode: "x" or "s"
--
-- Returns the ms the lease has left (after extending), or 0 if it was lost
-- (expired, deleted or taken).

local token, ttl = ARGV[1], tonumber(ARGV[2])
if ARGV[3] == 'x' then
  if redis.call('GET', KEYS[1]) ~= token then
    return 0
  end
  if ttl > 0 then
    redis.call('PEXPIRE', KEYS[1], ttl)
  end
  return math.max(redis.call('PTTL', KEYS[1]), 0)
end
local score = redis.call('ZSCORE', KEYS[2], token)
if not score or tonumber(score) <= now then
  return 0
end
if ttl == 0 then
  return math.floor(tonumber(score)) - now
end
redis.call('ZADD', KEYS[2], 'XX', now + ttl, token)
expire_at_max(KEYS[2])
return ttl
