-- Sharded caches: read one tag's pending marks with this server's time.
--
-- KEYS[1]  the tag's pending marks   kv:c:NAME:p:{TAG}
--
-- Returns the time (ms), then pairs: id, deadline.

local out = {tostring(now_ms())}
local marks = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 1, #marks do
  out[#out + 1] = marks[i]
end
return out
