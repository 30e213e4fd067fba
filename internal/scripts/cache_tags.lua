-- Read an entry's tags.
--
-- KEYS[1]  the value key
--
-- Returns the tags (an empty list for an entry without tags), or false when
-- there is no value.

local tags, exists = tags_of(KEYS[1])
if not exists then
  return false
end
local out = {}
for t in pairs(tags) do
  out[#out + 1] = t
end
return out
