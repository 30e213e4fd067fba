-- Remove cache entries and their tag memberships.
--
-- KEYS      pairs: data key, id->tags set (kv:{c:NAME}:d:ID, kv:{c:NAME}:t:ID), ...
-- ARGV[1]   tag-set key prefix  kv:{c:NAME}:g:
-- ARGV[2]   k, the number of tags being flushed (0 for a plain remove)
-- then k groups: TAG, COUNT, COUNT ids of this batch that are in TAG's set
-- then the ids, in the order of the KEYS pairs
--
-- The flushed tags' sets lose exactly their listed members (not the whole
-- set: an entry tagged after the caller read the set keeps its tag). The
-- entries' other tags are read with one SUNION of their id->tags sets; when
-- they are few, each loses the whole batch in one SREM, otherwise each id
-- leaves its own tags. Then UNLINK drops data and id->tags keys. Tag sets
-- share the entries' hash tag, so they are in the same slot; emptied sets
-- vanish. Returns the number of entries whose data existed.

local prefix = ARGV[1]
local k = tonumber(ARGV[2])
local pos = 3
local flushing = {}
for _ = 1, k do
  local tag, count = ARGV[pos], tonumber(ARGV[pos + 1])
  flushing[tag] = true
  if count > 0 then
    redis.call('SREM', prefix .. tag, unpack(ARGV, pos + 2, pos + 1 + count))
  end
  pos = pos + 2 + count
end

local first = pos
local n = #ARGV - first + 1
if n <= 0 then
  return 0
end
local dkeys, tkeys = {}, {}
for j = 1, n do
  dkeys[j] = KEYS[2 * j - 1]
  tkeys[j] = KEYS[2 * j]
end

local others = {}
for _, tag in ipairs(redis.call('SUNION', unpack(tkeys))) do
  if not flushing[tag] then
    others[#others + 1] = tag
  end
end
if #others > 0 and #others <= 32 then
  for _, tag in ipairs(others) do
    redis.call('SREM', prefix .. tag, unpack(ARGV, first))
  end
elseif #others > 32 then
  for j = 1, n do
    local id = ARGV[first + j - 1]
    for _, tag in ipairs(redis.call('SMEMBERS', tkeys[j])) do
      if not flushing[tag] then
        redis.call('SREM', prefix .. tag, id)
      end
    end
  end
end

local removed = redis.call('UNLINK', unpack(dkeys))
redis.call('DEL', unpack(tkeys)) -- small sets: DEL frees them at once, cheaper than UNLINK
return removed
