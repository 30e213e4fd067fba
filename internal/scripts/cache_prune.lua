-- Remove ids from tags' indexes unless their entry is live with the tag.
-- One call serves several indexes, so that a flush of entries that each
-- have their own other tag (pages tagged with their page id) cleans them
-- all in one script instead of one script per tag.
--
-- KEYS[1..k]  the tags' indexes            kv:{c:NAME}:i:TAG
-- KEYS[k+1..] the ids' value keys, grouped by tag in the order of the indexes
--                                          kv:{c:NAME}:v:ID
-- ARGV[1]     k
-- ARGV[2..k+1]     the tags, in the order of KEYS[1..k]
-- ARGV[k+2..2k+1]  how many ids each tag has
-- ARGV[2k+2..]     the ids, in the order of KEYS[k+1..]
--
-- The check and the removal happen in one script, so an entry written
-- again meanwhile keeps its membership. Returns, per tag, the number of
-- ids removed and whether its index is gone (it vanishes with its last
-- member): {removed_1, gone_1, removed_2, gone_2, ...}.

local k = tonumber(ARGV[1])
local first_id = 2 * k + 2
local out = {}
-- None of the values exists (the common case after a flush): one ZREM
-- per index, no per-entry check.
local none = #KEYS == k or redis.call('EXISTS', unpack(KEYS, k + 1)) == 0
local at = 0 -- ids consumed so far
for t = 1, k do
  local n = tonumber(ARGV[k + 1 + t])
  local removed = 0
  if n > 0 then
    if none then
      removed = redis.call('ZREM', KEYS[t], unpack(ARGV, first_id + at, first_id + at + n - 1))
    else
      local tag = ARGV[1 + t]
      for i = at + 1, at + n do
        local tags, exists = tags_of(KEYS[k + i])
        if not (exists and tags[tag]) then
          removed = removed + redis.call('ZREM', KEYS[t], ARGV[first_id + i - 1])
        end
      end
    end
  end
  at = at + n
  out[#out + 1] = removed
  out[#out + 1] = 1 - redis.call('EXISTS', KEYS[t])
end
return out
