-- Remove ids from one tag's index unless their entry is live with the tag.
--
-- KEYS[1]   the tag's index             kv:{c:NAME}:i:TAG
-- KEYS[2..] the ids' value keys         kv:{c:NAME}:v:ID
-- ARGV[1]   the tag
-- ARGV[2..] the ids, in the order of KEYS[2..]
--
-- The check and the removal happen in one script, so an entry written
-- again meanwhile keeps its membership. Returns the number of ids removed
-- and whether the index is gone (it vanishes with its last member).

local removed = 0
if #KEYS > 1 and redis.call('EXISTS', unpack(KEYS, 2)) == 0 then
  -- None of the values exists (the common case after a flush): one call.
  removed = redis.call('ZREM', KEYS[1], unpack(ARGV, 2))
else
  for i = 2, #KEYS do
    local tags, exists = tags_of(KEYS[i])
    if not (exists and tags[ARGV[1]]) then
      removed = removed + redis.call('ZREM', KEYS[1], ARGV[i])
    end
  end
end
return {removed, 1 - redis.call('EXISTS', KEYS[1])}
