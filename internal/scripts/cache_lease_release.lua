-- End a computing lease without a value (the computation failed, or its
-- result went to a sharded cache's own write path), waking the waiters:
-- one of them takes the lease next.
--
-- KEYS[1]  lease           kv:{c:NAME}:l:ID
-- KEYS[2]  wake-up list    kv:{c:NAME}:n:ID
-- ARGV[1]  the lease's token
--
-- Returns 1 if the lease was released, 0 if it was no longer the caller's.

return release_lease(KEYS[1], KEYS[2], ARGV[1])
