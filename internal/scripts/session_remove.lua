-- Remove session records and their index entries.
--
-- KEYS[1]  expiry index          kv:{s:PREFIX}:idx
-- KEYS[2]  user index, or kv:{s:PREFIX}:u: when none
-- KEYS[3..] the records          kv:{s:PREFIX}:HASH
-- ARGV[1]  "1" if KEYS[2] is a real user index
-- ARGV[2]  "1": KEYS[2] must hold exactly the members ARGV[3..] (log out
--          everywhere: a session renewed meanwhile must not escape)
-- ARGV[3..] the members (HASH), in the order of KEYS[3..]
--
-- Returns the number of records removed, or -1 if the user index changed
-- since the caller read it (the caller reads it again and retries).

if ARGV[2] == '1' then
  local now = redis.call('ZRANGE', KEYS[2], 0, -1)
  if #now ~= #ARGV - 2 then return -1 end
  local want = {}
  for i = 3, #ARGV do want[ARGV[i]] = true end
  for _, m in ipairs(now) do
    if not want[m] then return -1 end
  end
end

local removed = 0
for i = 3, #KEYS do
  removed = removed + redis.call('DEL', KEYS[i])
  redis.call('ZREM', KEYS[1], ARGV[i])
  if ARGV[1] == '1' then
    redis.call('ZREM', KEYS[2], ARGV[i])
  end
end
return removed
