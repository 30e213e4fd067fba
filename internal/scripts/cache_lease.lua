-- Fleet-wide single computation of an entry (Typed.GetOrSet): one caller
-- across all processes computes a missing entry under a short lease, which
-- it extends while it computes (cache_lease_extend.lua); the others wait
-- on the server (BLPOP on the wake-up list) until it is written, or take
-- over when the lease expires (its holder died).
--
-- The wake-up list (kv:{c:NAME}:n:ID, which this script does not touch)
-- is shared by every round of computations of the entry and is never
-- cleared when a new lease is taken: a waiter registers here
-- and blocks in BLPOP in its next round trip, and the wake-up a release
-- pushed for it in between must still be there (else it would sleep
-- through the next lease). An element left by a waiter that gave up only
-- makes a later waiter look again; the list expires 10 s after the last
-- release.
--
-- KEYS[1]  value key       kv:{c:NAME}:v:ID
-- KEYS[2]  lease           kv:{c:NAME}:l:ID  hash: o = owner token, w = waiters; with the lease TTL
-- ARGV[1]  the caller's token (new for each computation)
-- ARGV[2]  lease TTL in milliseconds
-- ARGV[3]  "wait": return the value if there is one, else take the lease or wait
--          "miss": the value is unusable (undecodable): take the lease or wait
--          "refresh": take the lease if free (a stale or early refresh), never wait
--
-- Returns {1, value}: the value exists ("wait" only); {2, now}: the
-- caller holds the lease, now being this server's clock in microseconds
-- (the stamp its write is checked against: a flush stamped at or after it
-- refuses the write); {3, ms}: another caller holds the lease for up to ms
-- more, the caller is registered as its waiter; {4}: another caller is
-- refreshing ("refresh" only).

local mode = ARGV[3]
if mode == 'wait' then
  local v = redis.call('GET', KEYS[1])
  if v then
    return {1, v}
  end
end
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('HSET', KEYS[2], 'o', ARGV[1], 'w', 0)
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  return {2, now_us()}
end
if mode == 'refresh' then
  return {4}
end
redis.call('HINCRBY', KEYS[2], 'w', 1)
return {3, math.max(redis.call('PTTL', KEYS[2]), 1)}
