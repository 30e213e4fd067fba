-- Shared by the lock and session scripts (prepended when they are loaded).

-- expire_at_max gives a sorted set scored by deadlines (ms) the expiry of
-- its last deadline.
local function expire_at_max(key)
  local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if #last == 2 then
    redis.call('PEXPIREAT', key, math.floor(tonumber(last[2])) + 1)
  end
end
