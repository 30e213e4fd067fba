-- Release a lease, or give up waiting, and hand the lock to the next
-- waiter directly.
--
-- KEYS[1]  owner                      kv:{l:NAME}
-- KEYS[2]  shared holders             kv:{l:NAME}:r
-- KEYS[3]  fencing counter            kv:{l:NAME}:f
-- KEYS[4]  waiting writers            kv:{l:NAME}:qx
-- KEYS[5]  waiting readers            kv:{l:NAME}:qs
-- ARGV[1]  token
-- ARGV[2]  mode: "x" (release exclusive), "s" (release shared),
--          "leave" (a waiter gives up: leave the queues, and release what
--          it may have been granted meanwhile), "force" (drop all holders)
-- ARGV[3]  lease TTL in milliseconds
-- ARGV[4]  grant slack in milliseconds (see below)
-- ARGV[5]  key prefix of the waiters' grant lists: kv:{l:NAME}:w:
--
-- Hand-off: when the lock becomes free, the longest-waiting writer gets it
-- (else every waiting reader): the script makes it the holder, takes its
-- fencing token and pushes the token onto that waiter's own list
-- kv:{l:NAME}:w:TOKEN, where the waiter blocks in BLPOP. That list's name
-- is only known here; it shares KEYS[1]'s hash tag, so it is in the same
-- slot. A granted lease lasts TTL + slack on the server; the waiter counts
-- TTL from when its BLPOP returns, so it gives the lease up first as long
-- as the grant reaches it within the slack.
-- Returns 1 if the token held (or was granted) the lock, else 0.

local token, mode = ARGV[1], ARGV[2]
local ttl, slack, wprefix = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local function expire_at_max(key)
  local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if #last == 2 then
    redis.call('PEXPIREAT', key, math.floor(tonumber(last[2])) + 1)
  end
end

local function give(tok)
  local f = redis.call('INCR', KEYS[3])
  local list = wprefix .. tok
  redis.call('DEL', list)
  redis.call('RPUSH', list, f)
  redis.call('PEXPIRE', list, ttl + slack)
end

local function grant()
  if redis.call('EXISTS', KEYS[1]) == 1 then return end
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  if redis.call('ZCARD', KEYS[2]) > 0 then return end
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now)
  local w = redis.call('ZRANGE', KEYS[4], 0, 0)
  if #w == 1 then
    redis.call('ZREM', KEYS[4], w[1])
    redis.call('SET', KEYS[1], w[1], 'PX', ttl + slack)
    give(w[1])
    return
  end
  local readers = redis.call('ZRANGE', KEYS[5], 0, -1)
  for _, r in ipairs(readers) do
    redis.call('ZADD', KEYS[2], now + ttl + slack, r)
    give(r)
  end
  if #readers > 0 then
    redis.call('DEL', KEYS[5])
    expire_at_max(KEYS[2])
  end
end

local held = 0
if mode == 'force' then
  redis.call('DEL', KEYS[1], KEYS[2])
  held = 1
else
  if mode == 'leave' then
    redis.call('ZREM', KEYS[4], token)
    redis.call('ZREM', KEYS[5], token)
    redis.call('DEL', wprefix .. token)
  end
  if (mode == 'x' or mode == 'leave') and redis.call('GET', KEYS[1]) == token then
    redis.call('DEL', KEYS[1])
    held = 1
  end
  if (mode == 's' or mode == 'leave') and redis.call('ZREM', KEYS[2], token) == 1 then
    held = 1
  end
end
if held == 1 then
  grant()
end
return held
