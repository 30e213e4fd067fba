-- Hand an exclusive lock from its holder to another caller of the same
-- process (lock cohorting, see cohort.go): release and acquire in one
-- atomic call, unless a waiter of another process has waited long enough
-- to be owed the lock (then nothing changes, and the caller releases in
-- the usual way, which hands the lock over in queue order).
--
-- KEYS[1]  owner (exclusive holder's token)      kv:{l:NAME}
-- KEYS[2]  fencing counter                        kv:{l:NAME}:f
-- KEYS[3]  waiting writers                        kv:{l:NAME}:qx
-- KEYS[4]  waiting readers                        kv:{l:NAME}:qs
-- KEYS[5]  waiters' liveness                      kv:{l:NAME}:qd
-- KEYS[6]  waiters' sequence numbers              kv:{l:NAME}:s
-- KEYS[7]  grants not yet delivered               kv:{l:NAME}:g
-- KEYS[8]  waiter sequence counter                kv:{l:NAME}:n
-- ARGV[1]  the holder's token
-- ARGV[2]  the new holder's token
-- ARGV[3]  the new holder's lease TTL in milliseconds
-- ARGV[4]  how long (µs) a waiter may wait before it is owed the lock
--
-- Returns {1, fencing token, sequence base}: the new holder has the lock
-- for its TTL (its base, the counter, lets its release hand the lock to
-- the waiters that queue after it in one round trip);
-- {0}: the holder no longer has the lock (nothing changed); {-1}: a waiter
-- of another process is owed it (nothing changed).

local holder, next_holder, ttl, owed = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
if redis.call('GET', KEYS[1]) ~= holder then
  return {0}
end
prune_waiters(KEYS[3], KEYS[4], KEYS[5], KEYS[6])
for _, q in ipairs({KEYS[3], KEYS[4]}) do
  local head = redis.call('ZRANGE', q, 0, 0, 'WITHSCORES')
  if #head == 2 and now_us - tonumber(head[2]) >= owed then
    return {-1}
  end
end
redis.call('SET', KEYS[1], next_holder, 'PX', ttl)
redis.call('HDEL', KEYS[7], holder)
return {1, next_fence(KEYS[2]), tonumber(redis.call('GET', KEYS[8]) or 0)}
