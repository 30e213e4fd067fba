-- Remove cache entries: their values, then their memberships in the tags
-- being flushed.
--
-- KEYS[1..k]  indexes of the k tags being flushed   kv:{c:NAME}:i:TAG
-- KEYS[k+1..] the entries' value keys               kv:{c:NAME}:v:ID
-- ARGV[1]     k
-- ARGV[2..k+1] the k tags
-- then k groups, one per flushed tag: COUNT, then COUNT ids of this batch
--             that were read from that tag's index
-- then one character per value key: "1" if the entry may have other tags
--             (read from an index's multi-tag band), "0" if not
--
-- Values go first (one UNLINK), so stopping anywhere leaves at most surplus
-- memberships. When tags are being flushed (k > 0), a value is removed
-- only if it still carries one of them (an index may list an entry that
-- left the tag). Its other tags are returned: the caller removes the id
-- from their indexes in a second call (cache_prune.lua) that declares
-- them. Entries read from the single-tag band are removed without reading
-- them (if one was written again meanwhile with more tags, it is removed
-- all the same and its other memberships are surplus, which is allowed).
-- The flushed tags' indexes lose the listed ids only (an entry that joined
-- a tag after the caller read its index keeps its membership); each listed
-- id is removed here or no longer carries the tag. Returns the number of
-- values removed, then pairs: position of the value key among the value
-- keys (1-based), its other tags joined by "\n".

local k = tonumber(ARGV[1])
local pos = k + 2
local groups = {}
for j = 1, k do
  local count = tonumber(ARGV[pos])
  groups[j] = {pos + 1, pos + count}
  pos = pos + 1 + count
end
local flushing = {}
for j = 1, k do
  flushing[ARGV[j + 1]] = true
end
local flags = ARGV[pos] or ''

local out = {0}
local values = {}
for i = k + 1, #KEYS do
  local head = ''
  if k > 0 and string.byte(flags, i - k) == 48 then -- '0': single tag
    values[#values + 1] = KEYS[i]
  else
    head = redis.pcall('GETRANGE', KEYS[i], 0, 4)
  end
  if type(head) ~= 'string' then
    if k == 0 then
      values[#values + 1] = KEYS[i] -- not a value keyvalue wrote: Remove deletes it
    end
  elseif #head == 5 and string.byte(head, 1) >= 128 then
    local n = string.byte(head, 2) * 16777216 + string.byte(head, 3) * 65536
      + string.byte(head, 4) * 256 + string.byte(head, 5)
    local others, hit = {}, k == 0
    for t in string.gmatch(redis.call('GETRANGE', KEYS[i], 5, 4 + n), '[^\n]+') do
      if flushing[t] then
        hit = true
      else
        others[#others + 1] = t
      end
    end
    if hit then
      values[#values + 1] = KEYS[i]
      if #others > 0 then
        out[#out + 1] = i - k
        out[#out + 1] = table.concat(others, '\n')
      end
    end
  elseif head ~= '' and k == 0 then
    values[#values + 1] = KEYS[i] -- a value without tags
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
