-- Deliver grants made by lock_release.lua to the waiters.
--
-- KEYS[1]   grants not yet delivered   kv:{l:NAME}:g
-- KEYS[2..] the waiters' grant lists   kv:{l:NAME}:w:TOKEN
-- ARGV[1]   the lists' TTL in milliseconds
-- ARGV[2..] pairs: token, fencing token, in the order of KEYS[2..]
--
-- Each grant goes onto its waiter's list (where it blocks in BLPOP) only if
-- it is still undelivered (a waiter whose wait timed out may have taken it
-- from KEYS[1] itself). Returns the number delivered.

local n = 0
for i = 2, #KEYS do
  local tok, f = ARGV[2 * i - 2], ARGV[2 * i - 1]
  if redis.call('HGET', KEYS[1], tok) == f then
    redis.call('HDEL', KEYS[1], tok)
    redis.call('DEL', KEYS[i])
    redis.call('RPUSH', KEYS[i], f)
    redis.call('PEXPIRE', KEYS[i], tonumber(ARGV[1]))
    n = n + 1
  end
end
return n
