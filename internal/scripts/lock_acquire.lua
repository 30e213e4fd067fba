-- Acquire a lock in exclusive ("x") or shared ("s") mode.
--
-- KEYS[1]  owner (exclusive holder's token)   kv:{l:NAME}
-- KEYS[2]  shared holders: token -> expiry ms kv:{l:NAME}:r
-- KEYS[3]  fencing counter                     kv:{l:NAME}:f
-- KEYS[4]  waiting writers: token -> deadline  kv:{l:NAME}:qx
-- KEYS[5]  waiting readers: token -> deadline  kv:{l:NAME}:qs
-- ARGV[1]  token (unique per lease)
-- ARGV[2]  lease TTL in milliseconds
-- ARGV[3]  mode: "x" or "s"
-- ARGV[4]  if > 0: on failure, register as a waiter until now + ARGV[4] ms
--
-- Writers are not starved: while a writer waits, new readers do not get in.
-- Returns {1, fencing token} on success, or {0, ms until the holder's TTL
-- runs out} (the longest a waiter needs to block before trying again).

local token, ttl, mode, wait = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now)

local function expire_at_max(key)
  local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if #last == 2 then
    redis.call('PEXPIREAT', key, math.floor(tonumber(last[2])) + 1)
  end
end

local function remaining()
  local p = redis.call('PTTL', KEYS[1])
  if p > 0 then
    return p
  end
  local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
  if #last == 2 then
    return math.max(1, math.floor(tonumber(last[2])) - now)
  end
  return 1
end

local free
if mode == 'x' then
  free = redis.call('EXISTS', KEYS[1]) == 0 and redis.call('ZCARD', KEYS[2]) == 0
else
  -- A reader waits while a writer holds the lock or waits for it.
  free = redis.call('EXISTS', KEYS[1]) == 0 and redis.call('ZCARD', KEYS[4]) == 0
end

local queue = KEYS[5]
if mode == 'x' then
  queue = KEYS[4]
end

if free then
  if mode == 'x' then
    redis.call('SET', KEYS[1], token, 'PX', ttl)
  else
    redis.call('ZADD', KEYS[2], now + ttl, token)
    expire_at_max(KEYS[2])
  end
  redis.call('ZREM', queue, token)
  return {1, redis.call('INCR', KEYS[3])}
end

if wait > 0 then
  redis.call('ZADD', queue, now + wait, token)
  expire_at_max(queue)
end
return {0, remaining()}
