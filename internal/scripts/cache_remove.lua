-- Remove cache entries: their values, then their memberships in the tags
-- being flushed.
--
-- KEYS[1..k]  indexes of the k tags being flushed   kv:{c:NAME}:i:TAG
-- KEYS[k+1..] the entries' value keys               kv:{c:NAME}:v:ID
-- ARGV[1]     k
-- ARGV[2..k+1] the k tags
-- then k groups, one per flushed tag: COUNT, then COUNT ids of this batch
--             that were read from that tag's index
-- then the ids, in the order of the value keys
--
-- Values go first (one UNLINK), so stopping anywhere leaves at most surplus
-- memberships. When tags are being flushed (k > 0), a value is removed only
-- if it carries one of them (an index may list an entry that left the tag).
-- The flushed tags' indexes lose the listed ids only (an entry that joined
-- a tag after the caller read its index keeps its membership); each listed
-- id is either removed here or does not carry the tag. Returns the number
-- of values removed, then for each id the tags it had besides the flushed
-- ones, joined by "\n" (empty for a value that was kept): their indexes
-- are only known now, so the caller cleans them up in a second call
-- (cache_prune.lua).

local k = tonumber(ARGV[1])
local pos = k + 2
local groups = {}
for j = 1, k do
  local count = tonumber(ARGV[pos])
  groups[j] = {pos + 1, pos + count}
  pos = pos + 1 + count
end
local first = pos
local flushing = {}
for j = 1, k do
  flushing[ARGV[j + 1]] = true
end

local out = {0}
local values = {}
for i = k + 1, #KEYS do
  local tags, exists = tags_of(KEYS[i])
  local others, hit = {}, k == 0
  for t in pairs(tags) do
    if flushing[t] then
      hit = true
    else
      others[#others + 1] = t
    end
  end
  if exists and hit then
    out[#out + 1] = table.concat(others, '\n')
    values[#values + 1] = KEYS[i]
  else
    out[#out + 1] = ''
  end
end
if #values > 0 then
  out[1] = redis.call('UNLINK', unpack(values))
end

for j = 1, k do
  local lo, hi = groups[j][1], groups[j][2]
  if hi >= lo then
    redis.call('ZREM', KEYS[j], unpack(ARGV, lo, hi))
  end
end
return out
