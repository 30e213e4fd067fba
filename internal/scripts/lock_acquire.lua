-- Acquire a lock in exclusive ("x") or shared ("s") mode.
--
-- KEYS[1]  owner (exclusive holder's token)       kv:{l:NAME}
-- KEYS[2]  shared holders: token -> expiry ms     kv:{l:NAME}:r
-- KEYS[3]  fencing counter                        kv:{l:NAME}:f
-- KEYS[4]  waiting writers: "token|ttl" -> when it queued (µs)  kv:{l:NAME}:qx
-- KEYS[5]  waiting readers: "token|ttl" -> when it queued (µs)  kv:{l:NAME}:qs
-- KEYS[6]  grants not yet delivered: token -> fencing token  kv:{l:NAME}:g
-- KEYS[7]  this caller's grant list              kv:{l:NAME}:w:TOKEN
-- KEYS[8]  waiter sequence counter                kv:{l:NAME}:n
-- KEYS[9]  waiters' sequence numbers: token -> n  kv:{l:NAME}:s
-- KEYS[10] waiters' liveness: "token|ttl" -> deadline ms  kv:{l:NAME}:qd
-- ARGV[1]  token (unique per lease)
-- ARGV[2]  lease TTL in milliseconds
-- ARGV[3]  mode: "x" or "s"
-- ARGV[4]  if > 0: on failure, register as a waiter (or renew the
--          registration) until now + ARGV[4] ms; a waiter calls again
--          before that, every round of its wait, or leaves the queue
-- ARGV[5]  "" or the sequence number this waiter got in an earlier round
--
-- Sequence numbers: a waiter gets the next one when it first registers and
-- also blocks on kv:{l:NAME}:w:s:N. A holder learns a base (its own number,
-- or the counter when it took the lock at once); waiters that queued after
-- it have the numbers just above, so its release can declare their lists
-- and hand the lock over in the same script (lock_release.lua).
--
-- The caller may already hold the lock (see below). Writers are not starved: while a writer waits, new readers
-- do not get in. Returns {1, fencing token, ms the lease has left} on
-- success, or {0, ms until the holder's TTL runs out} (the longest a
-- waiter needs to block before trying again); both with the sequence
-- number (a waiter's) or base (a holder's) appended when ARGV[4] > 0 or
-- the caller had one.

local token, ttl, mode, wait = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local member = token .. '|' .. ARGV[2]

redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
prune_waiters(KEYS[4], KEYS[5], KEYS[10], KEYS[9])

-- Held already? A release may have made this waiter the holder without
-- it seeing the grant message (KEYS[7]), or the reply to an earlier
-- acquisition may have been lost with its connection: the fencing token
-- is then the grant's, or the counter's (nobody else can have taken one
-- while this token holds the lock exclusively).
local left = 0
if mode == 'x' then
  if redis.call('GET', KEYS[1]) == token then
    left = redis.call('PTTL', KEYS[1])
  end
else
  local s = redis.call('ZSCORE', KEYS[2], token)
  if s then
    left = math.floor(tonumber(s)) - now
  end
end
local granted = redis.call('HGET', KEYS[6], token) or redis.call('LPOP', KEYS[7])
redis.call('HDEL', KEYS[6], token)
local seq = ARGV[5]
if seq == '' then
  seq = redis.call('HGET', KEYS[9], token) or ''
end

-- base: this holder's sequence number, or the counter when it never waited.
local function holding(fence, ms)
  redis.call('HDEL', KEYS[9], token)
  unqueue(KEYS[4], KEYS[5], KEYS[10], member)
  local base = tonumber(seq) or tonumber(redis.call('GET', KEYS[8]) or 0)
  return {1, fence, ms, base}
end

if left > 0 then
  return holding(tonumber(granted or redis.call('GET', KEYS[3]) or 0), left)
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
  return holding(next_fence(KEYS[3]), ttl)
end

if wait > 0 then
  if seq == '' then
    seq = redis.call('INCR', KEYS[8])
  end
  -- The queue keeps the waiter's place (when it first queued) across
  -- rounds; the deadline is renewed.
  redis.call('ZADD', queue, 'NX', now_us, member)
  redis.call('ZADD', KEYS[10], now + wait, member)
  redis.call('HSET', KEYS[9], token, seq)
  -- These keys live as long as a waiter renews (never shortened: a
  -- counter that restarted could give a number twice).
  for _, k in ipairs({KEYS[8], KEYS[9], queue, KEYS[10]}) do
    redis.call('PEXPIRE', k, wait, 'NX')
    redis.call('PEXPIRE', k, wait, 'GT')
  end
  return {0, remaining(), tonumber(seq)}
end
return {0, remaining()}
