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
