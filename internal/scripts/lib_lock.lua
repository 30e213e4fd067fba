-- Shared by the lock scripts (prepended when they are loaded, after
-- lib_expire.lua).

-- now_ms and now_us are this server's clock.
local T = redis.call('TIME')
local now = tonumber(T[1]) * 1000 + math.floor(tonumber(T[2]) / 1000)
local now_us = tonumber(T[1]) * 1000000 + tonumber(T[2])

-- next_fence takes the next fencing token from the counter at key. It is
-- never below this server's clock in microseconds, so tokens keep rising
-- even when the counter was lost (FLUSHDB, a failover that did not
-- replicate it) as long as the clock moves forward.
local function next_fence(key)
  local f = redis.call('INCR', key)
  if f < now_us then
    f = now_us
    redis.call('SET', key, string.format('%d', f))
  end
  return f
end

-- Waiters: the queues (waiting writers, waiting readers) are scored by when
-- the waiter first queued, so the head is the one that queued first; a
-- third sorted set holds each queue member's liveness deadline (ms), which
-- the waiter renews every round of its wait. prune_waiters drops the
-- members whose waiter stopped renewing them (it gave up, died, or waits
-- on another server after a failover), so a release never hands the lock
-- to a waiter that is no longer waiting.
local function prune_waiters(qx, qs, qd, seqs)
  local dead = redis.call('ZRANGEBYSCORE', qd, '-inf', now)
  if #dead == 0 then
    return
  end
  for _, m in ipairs(dead) do
    redis.call('ZREM', qx, m)
    redis.call('ZREM', qs, m)
    local sep = string.find(m, '|', 1, true)
    if sep then
      redis.call('HDEL', seqs, string.sub(m, 1, sep - 1))
    end
  end
  redis.call('ZREMRANGEBYSCORE', qd, '-inf', now)
end

-- unqueue takes member out of both queues and the deadlines.
local function unqueue(qx, qs, qd, member)
  redis.call('ZREM', qx, member)
  redis.call('ZREM', qs, member)
  redis.call('ZREM', qd, member)
end
