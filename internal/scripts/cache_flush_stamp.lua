-- Stamp a flush before it removes anything: a computation that began
-- before the stamp (Typed.GetOrSet) must not store its result as fresh
-- after it (cache_set.lua checks the stamps).
--
-- KEYS[1]  flush stamps    kv:{c:NAME}:f  sorted set: tag -> when it was last flushed (µs,
--                          this server's clock); member "" for a flush of the whole cache
-- ARGV[1]  how long stamps are kept, in microseconds (the longest a computation may take
--          and still be stored)
-- ARGV[2..] the flushed tags, or "" for the whole cache
--
-- A flush of the whole cache also sets the write mark (member " w", no tag
-- contains whitespace) to its stamp: every Set removes the mark
-- (cache_set.lua), so the flush finds it unchanged at its end only if
-- nothing was written meanwhile (cache_flush_indexes.lua).
--
-- Also drops stamps older than ARGV[1]; the key expires when no flush
-- happened for that long. Returns the stamp.

local now = now_us()
local keep = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - keep))
local args = {}
for i = 2, #ARGV do
  args[#args + 1] = now
  args[#args + 1] = ARGV[i]
  if ARGV[i] == '' then
    args[#args + 1] = now
    args[#args + 1] = ' w'
  end
  if #args >= 1000 or i == #ARGV then
    redis.call('ZADD', KEYS[1], unpack(args))
    args = {}
  end
end
redis.call('PEXPIRE', KEYS[1], math.floor(keep / 1000) + 1000)
return now
