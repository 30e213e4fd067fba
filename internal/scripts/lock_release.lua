-- Release a lease, or give up waiting, and make the next waiter the holder.
--
-- KEYS[1]  owner                      kv:{l:NAME}
-- KEYS[2]  shared holders             kv:{l:NAME}:r
-- KEYS[3]  fencing counter            kv:{l:NAME}:f
-- KEYS[4]  waiting writers            kv:{l:NAME}:qx
-- KEYS[5]  waiting readers            kv:{l:NAME}:qs
-- KEYS[6]  grants not yet delivered   kv:{l:NAME}:g
-- KEYS[7]  the caller's grant list    kv:{l:NAME}:w:TOKEN
-- KEYS[8]  waiters' sequence numbers  kv:{l:NAME}:s (see lock_acquire.lua)
-- KEYS[9]  waiters' liveness          kv:{l:NAME}:qd
-- KEYS[10..] the grant lists of the waiters numbered ARGV[5]+1, +2, ...
--                                     kv:{l:NAME}:w:s:N
-- ARGV[1]  token
-- ARGV[2]  mode: "x" (release exclusive), "s" (release shared),
--          "leave" (a waiter gives up: leave the queues, and release what
--          it may have been granted meanwhile), "force" (drop all holders)
-- ARGV[3]  the caller's queue member ("token|ttl"): taken out of the
--          queues in every mode but "force" (a holder's own entry may
--          survive on a promoted replica that never saw it leave)
-- ARGV[4]  grant slack in milliseconds (see below)
-- ARGV[5]  the caller's sequence base ("" for none): KEYS[10..] follow it
--
-- Hand-off: when the lock becomes free, the longest-waiting writer gets it
-- (else every waiting reader) that still renews its place (waiters whose
-- deadline passed are dropped first): this script makes it the holder, with its
-- own TTL plus the slack, takes its fencing token and records it in
-- KEYS[6]. When the new holder's sequence number is one the caller
-- declared (a waiter that queued just after it: the usual case), the
-- grant ("token|fencing token") goes onto that waiter's numbered list
-- here: one round trip. Otherwise its grant list is only known now, so the
-- caller delivers the grant in a second call (lock_grant.lua) that
-- declares it. A waiter that misses both finds the grant in KEYS[6] when
-- its wait times out. Returns {held, pushed, then pairs: granted token,
-- fencing token, for the caller to deliver}; held is 1 if the token held
-- (or was granted) the lock, pushed the number of grants already put on
-- numbered lists.

local token, mode, member, slack, base = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local out = {0, 0} -- held, grants pushed onto numbered lists, then pairs to deliver

local function grant()
  if redis.call('EXISTS', KEYS[1]) == 1 then return end
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  if redis.call('ZCARD', KEYS[2]) > 0 then return end
  prune_waiters(KEYS[4], KEYS[5], KEYS[9], KEYS[8])
  local longest = 0
  local function give(m)
    local sep = string.find(m, '|', 1, true)
    local tok, ttl = string.sub(m, 1, sep - 1), tonumber(string.sub(m, sep + 1))
    local f = next_fence(KEYS[3])
    redis.call('HSET', KEYS[6], tok, string.format('%d', f))
    longest = math.max(longest, ttl + slack)
    local n = tonumber(redis.call('HGET', KEYS[8], tok))
    redis.call('HDEL', KEYS[8], tok)
    redis.call('ZREM', KEYS[9], m)
    local at = n and base and 9 + n - base
    if at and at >= 10 and at <= #KEYS then
      redis.call('RPUSH', KEYS[at], tok .. '|' .. string.format('%d', f))
      redis.call('PEXPIRE', KEYS[at], ttl + slack)
      out[2] = out[2] + 1
    else
      out[#out + 1] = tok
      out[#out + 1] = f
    end
    return tok, ttl
  end
  local w = redis.call('ZRANGE', KEYS[4], 0, 0)
  if #w == 1 then
    redis.call('ZREM', KEYS[4], w[1])
    local tok, ttl = give(w[1])
    redis.call('SET', KEYS[1], tok, 'PX', ttl + slack)
  else
    local readers = redis.call('ZRANGE', KEYS[5], 0, -1)
    for _, m in ipairs(readers) do
      local tok, ttl = give(m)
      redis.call('ZADD', KEYS[2], now + ttl + slack, tok)
    end
    if #readers > 0 then
      redis.call('DEL', KEYS[5])
      expire_at_max(KEYS[2])
    end
  end
  if longest > 0 then
    redis.call('PEXPIRE', KEYS[6], longest)
  end
end

local held = 0
if mode == 'force' then
  redis.call('DEL', KEYS[1], KEYS[2])
  held = 1
else
  if member ~= '' then
    unqueue(KEYS[4], KEYS[5], KEYS[9], member)
  end
  if mode == 'leave' then
    redis.call('DEL', KEYS[7])
    redis.call('HDEL', KEYS[6], token)
    redis.call('HDEL', KEYS[8], token)
  end
  if mode ~= 'leave' then
    -- A grant handed over in-process (see lock.go) was never taken out of
    -- the pending grants: its holder does it now.
    redis.call('HDEL', KEYS[6], token)
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
out[1] = held
return out
