-- The end of a Flush that nothing was written during: unlink the indexes
-- its walk found, at once, without reading their members.
--
-- KEYS[1]   flush stamps      kv:{c:NAME}:f  (see cache_flush_stamp.lua)
-- KEYS[2..] indexes           kv:{c:NAME}:i:TAG
-- ARGV[1]   the flush's stamp, which its write mark " w" holds while no
--           Set ran since (cache_set.lua removes the mark)
-- ARGV[2]   "1" on the flush's last call: the mark is removed
--
-- The flush unlinked every value that existed when it stamped (SCAN
-- returns every key present for its whole walk). If no Set ran since, no
-- value is live, so no index lists a live entry and all of them can go;
-- the check and the removal are one script, so no Set runs in between.
-- Otherwise (the mark is gone, or another flush's) nothing is touched and
-- the caller checks each member instead (cache_prune.lua). Returns {-1},
-- or {the number of keys unlinked, the names among them that held another
-- type than an index (not written by the cache: the caller reports them)}.

local mark = redis.call('ZSCORE', KEYS[1], ' w')
if not mark or tonumber(mark) ~= tonumber(ARGV[1]) then
  return {-1}
end
local out = {0}
for i = 2, #KEYS do
  local card = redis.pcall('ZCARD', KEYS[i]) -- an error: another type
  if type(card) == 'table' and card.err then
    out[#out + 1] = KEYS[i]
  end
end
if #KEYS > 1 then
  out[1] = redis.call('UNLINK', unpack(KEYS, 2))
end
if ARGV[2] == '1' then
  redis.call('ZREM', KEYS[1], ' w')
end
return out
