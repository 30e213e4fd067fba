-- Sharded caches: garbage-collect one tag's index.
--
-- KEYS[1]  the tag's index           kv:c:NAME:i:{TAG}
-- KEYS[2]  the tag's pending marks   kv:c:NAME:p:{TAG}
-- ARGV     triples: id, the pending deadline read, verdict ("live" or
--          "gone", from reading the id's value after its deadline passed)
--
-- First drops expired members (their values are gone). Then settles
-- pending marks whose deadline passed (a Set stopped between its steps):
-- a value can no longer be written under such a mark (step 2 refuses
-- after the deadline), so if the mark is unchanged, a live value with the
-- tag keeps its membership (the mark is cleared, as step 3 would have) and
-- a missing one loses it. Returns the number of members removed and
-- whether the index is gone.

local now = now_ms()
local removed = prune_expired(KEYS[1], now)
for i = 1, #ARGV, 3 do
  local id = ARGV[i]
  local d = redis.call('ZSCORE', KEYS[2], id)
  if d and tonumber(d) == tonumber(ARGV[i + 1]) and tonumber(d) < now then
    redis.call('ZREM', KEYS[2], id)
    if ARGV[i + 2] == 'gone' then
      removed = removed + redis.call('ZREM', KEYS[1], id)
    end
  end
end
-- Marks of members that expired from the index are stale.
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. (now - GRACE))) do
  if not redis.call('ZSCORE', KEYS[1], id) then
    redis.call('ZREM', KEYS[2], id)
  end
end
return {removed, 1 - redis.call('EXISTS', KEYS[1])}
