-- Shared by the cache scripts (prepended when they are loaded).
--
-- A cache value starts with a header byte; when its bit 7 is set, a 4-byte
-- big-endian length and the entry's tags joined by "\n" follow (tags never
-- contain whitespace). tags_of(key) returns those tags as a set
-- ({tag = true}) and whether the key exists. A key of another type (not a
-- value keyvalue wrote) exists with no tags, so that Set can overwrite it
-- and Remove delete it.
local function tags_of(key)
  local head = redis.pcall('GETRANGE', key, 0, 4)
  if type(head) ~= 'string' then
    return {}, true
  end
  if head == '' then
    return {}, false
  end
  local tags = {}
  if #head == 5 and string.byte(head, 1) >= 128 then
    local n = string.byte(head, 2) * 16777216 + string.byte(head, 3) * 65536
      + string.byte(head, 4) * 256 + string.byte(head, 5)
    if n > 0 then
      for t in string.gmatch(redis.call('GETRANGE', key, 5, 4 + n), '[^\n]+') do
        tags[t] = true
      end
    end
  end
  return tags, true
end

-- now_ms is this server's clock in milliseconds.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Members of a tag index score the expiry of their entry (ms, this
-- server's clock; UNLIMITED for entries without expiry), plus MULTI when the
-- entry has more than one tag (standalone layout): a flush reads the two
-- bands apart and looks up other tags only for the second. prune_expired
-- drops the members whose entries have expired, in both bands. Redis 7+ and Valkey give a
-- script's SET PX the time the script started, never later than TIME in
-- it, so a value never outlives its score; Redis 6 (no REDIS_VERSION_NUM)
-- takes the time at the SET itself, so there a second of grace covers it.
local UNLIMITED = 1e15
local MULTI = 2e15
local GRACE = 1000
if redis.REDIS_VERSION_NUM then
  GRACE = 0
end
local function prune_expired(index, now)
  return redis.call('ZREMRANGEBYSCORE', index, '-inf', '(' .. (now - GRACE))
    + redis.call('ZREMRANGEBYSCORE', index, MULTI, '(' .. (MULTI + now - GRACE))
end

-- prune_band drops the expired members of one band only (multi: the
-- band of entries with several tags), in one call: a Set prunes the band
-- it writes to, so each band is pruned by the writes that fill it.
local function prune_band(index, now, multi)
  if multi then
    return redis.call('ZREMRANGEBYSCORE', index, MULTI, '(' .. (MULTI + now - GRACE))
  end
  return redis.call('ZREMRANGEBYSCORE', index, '-inf', '(' .. (now - GRACE))
end

-- now_us is this server's clock in microseconds (exact in a Lua number).
local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- release_lease ends the computing lease of an entry (Typed.GetOrSet) if
-- token still owns it, and wakes every caller registered as its waiter
-- with one element each on the wake-up list (which expires soon: waiters
-- that gave up leave elements behind, and a stale element only makes a
-- later waiter look again). Returns 1 if the lease was released.
local function release_lease(lease, wakeups, token)
  if redis.call('HGET', lease, 'o') ~= token then
    return 0
  end
  local n = math.min(tonumber(redis.call('HGET', lease, 'w') or '0'), 100000)
  redis.call('DEL', lease)
  while n > 0 do
    local ones = {}
    for i = 1, math.min(n, 1000) do
      ones[i] = '1'
    end
    redis.call('RPUSH', wakeups, unpack(ones))
    n = n - #ones
  end
  redis.call('PEXPIRE', wakeups, 10000)
  return 1
end

-- flushed_since tells whether a flush of the whole cache (member "") or
-- of one of tags (a list) was stamped at or after since (microseconds,
-- this server's clock) in the stamps sorted set.
local function flushed_since(stamps, since, tags)
  local s = redis.call('ZSCORE', stamps, '')
  if s and tonumber(s) >= since then
    return true
  end
  for _, t in ipairs(tags) do
    s = redis.call('ZSCORE', stamps, t)
    if s and tonumber(s) >= since then
      return true
    end
  end
  return false
end
