-- Extend a computing lease (cache_lease.lua) while its computation runs:
-- the holder calls this every third of the lease, so a process that dies
-- mid-computation is taken over within one lease, and a computation that
-- takes longer than the lease is still done once.
--
-- KEYS[1]  lease           kv:{c:NAME}:l:ID
-- ARGV[1]  the lease's token
-- ARGV[2]  lease TTL in milliseconds
--
-- Returns 1 if the lease was extended, 0 if it is no longer the caller's.

if redis.call('HGET', KEYS[1], 'o') ~= ARGV[1] then
  return 0
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
