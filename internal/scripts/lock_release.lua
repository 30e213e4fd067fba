-- Release a lease and wake one waiter.
--
-- KEYS[1]  owner          kv:{l:NAME}
-- KEYS[2]  shared holders kv:{l:NAME}:r
-- KEYS[4]  wake list      kv:{l:NAME}:w
-- (KEYS[3] is unused here; the key list matches lock_acquire.lua)
-- ARGV[1]  token
-- ARGV[2]  mode: "x" or "s"
-- ARGV[3]  wake list TTL in milliseconds
--
-- Only the lease's own token releases it. The wake list holds at most one
-- token and expires, so it never leaks; a token nobody was waiting for
-- costs the next waiter one extra attempt.
-- Returns 1 if the lease was held, else 0 (nothing changed).

local token, mode = ARGV[1], ARGV[2]
if mode == 'x' then
  if redis.call('GET', KEYS[1]) ~= token then
    return 0
  end
  redis.call('DEL', KEYS[1])
else
  if redis.call('ZREM', KEYS[2], token) == 0 then
    return 0
  end
  if redis.call('ZCARD', KEYS[2]) > 0 then
    return 1 -- other readers still hold it: nobody can get in yet
  end
end
redis.call('DEL', KEYS[4])
redis.call('RPUSH', KEYS[4], '1')
redis.call('PEXPIRE', KEYS[4], ARGV[3])
return 1
