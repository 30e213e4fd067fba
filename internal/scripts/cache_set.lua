-- Set one cache entry with its tags, atomically, in one round trip.
--
-- KEYS[1]   value key                     kv:{c:NAME}:v:ID
-- KEYS[2]   flush stamps                  kv:{c:NAME}:f   (see cache_flush_stamp.lua)
-- KEYS[3]   the entry's computing lease   kv:{c:NAME}:l:ID (see cache_lease.lua)
-- KEYS[4]   the lease's wake-up list      kv:{c:NAME}:n:ID
-- KEYS[5..] indexes of the entry's tags   kv:{c:NAME}:i:TAG
-- ARGV[1]   the value: header, tags, payload
-- ARGV[2]   lifetime in milliseconds; "0" means unlimited
-- ARGV[3]   the id
-- ARGV[4]   "" or, for a computed value, when its computation began (µs, this
--           server's clock, from cache_lease.lua)
-- ARGV[5]   "" or the computing lease's token: released (waking its waiters)
--           once the value is written, or when it is refused
-- ARGV[6]   how long flush stamps are kept (µs): an older computation is refused
-- ARGV[7..] the entry's tags, in the order of KEYS[5..]
--
-- A computed value is refused, and nothing is written, when the whole
-- cache or one of its tags was flushed at or after its computation began
-- (it may have been computed from data the flush was meant to purge), or
-- when the computation took longer than the stamps are kept. Returns
-- {"refused"}, or {"stored", tags the entry left...}.
--
-- Order (any prefix keeps the cache's invariant, "a live value is in the
-- index of each of its tags"): first a Flush's write mark goes (see
-- cache_flush_indexes.lua), then the id joins every tag's index (an
-- index also drops members that expired, see below), then the value is
-- written. Tags
-- the entry had before but not now are returned: their indexes are only
-- known now, so the caller removes the id from them in a second call
-- (cache_prune.lua) that declares them; until then they hold a surplus
-- member, which is allowed.

if ARGV[4] ~= '' then
  local since = tonumber(ARGV[4])
  local tags = {}
  for i = 7, #ARGV do
    tags[#tags + 1] = ARGV[i]
  end
  if now_us() - since > tonumber(ARGV[6]) or flushed_since(KEYS[2], since, tags) then
    if ARGV[5] ~= '' then
      release_lease(KEYS[3], KEYS[4], ARGV[5])
    end
    return {'refused'}
  end
end

-- A flush in progress learns that something was written during it: its
-- write mark goes (a no-op, and no write, when there is none).
redis.call('ZREM', KEYS[2], ' w')

local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local ttl = tonumber(ARGV[2])
local score = UNLIMITED
if ttl > 0 then
  score = now + ttl
end
if #KEYS > 5 then
  score = score + MULTI
end
local old = tags_of(KEYS[1])

-- Each index is pruned by about one Set in eight (chosen by the clock's
-- microseconds), in the band this Set writes to (see prune_band): under
-- churn an index then holds its live members plus the few that expired
-- since its last pruning. Measured, a call is most of a tag's server
-- time: pruning one Set in four, both bands, took 60 of 115µs of a Set
-- with 20 tags.
local us = tonumber(clock[2])
local multi = #KEYS > 5
for i = 5, #KEYS do
  if (us + i) % 8 == 0 then
    prune_band(KEYS[i], now, multi)
  end
  redis.call('ZADD', KEYS[i], score, ARGV[3])
end

if ttl > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
else
  redis.call('SET', KEYS[1], ARGV[1])
end

if ARGV[5] ~= '' then
  release_lease(KEYS[3], KEYS[4], ARGV[5])
end

for i = 7, #ARGV do
  old[ARGV[i]] = nil
end
local out = {'stored'}
for t in pairs(old) do
  out[#out + 1] = t
end
return out
