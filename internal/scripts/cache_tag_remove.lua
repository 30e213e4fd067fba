-- Sharded caches: remove ids from a tag's index unless they were tagged
-- again or a Set of them is in progress.
--
-- KEYS[1]  the tag's index           kv:c:NAME:i:{TAG}
-- KEYS[2]  the tag's pending marks   kv:c:NAME:p:{TAG}
-- ARGV     pairs: id, the score the caller read for it before deleting
--          its value
--
-- Every add and every commit raises a member's score, so a member whose
-- score did not rise and that is not pending was not written since the
-- caller read it: its value is the one the caller deleted. Returns the
-- number of ids removed and whether the index is gone.

local removed = 0
for i = 1, #ARGV, 2 do
  local cur = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if cur and tonumber(cur) <= tonumber(ARGV[i + 1]) and not redis.call('ZSCORE', KEYS[2], ARGV[i]) then
    removed = removed + redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return {removed, 1 - redis.call('EXISTS', KEYS[1])}
