-- Remove from one tag set the ids whose entry has expired.
--
-- KEYS[1]  the tag->ids set    kv:{c:NAME}:g:TAG
-- ARGV[1]  data key prefix     kv:{c:NAME}:d:
-- ARGV[2..] candidate ids (members of KEYS[1] read by SSCAN)
--
-- The existence check and the removal happen together, so an entry written
-- again in between is never dropped from its tag. Data keys share KEYS[1]'s
-- hash tag, so they are in the same slot.
-- Returns the number of ids removed.

local removed = 0
for i = 2, #ARGV do
  if redis.call('EXISTS', ARGV[1] .. ARGV[i]) == 0 then
    removed = removed + redis.call('SREM', KEYS[1], ARGV[i])
  end
end
return removed
