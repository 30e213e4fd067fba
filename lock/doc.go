// Package lock is a distributed lock on Redis or Valkey: try-lock,
// blocking wait without client polling, exclusive and shared (read/write)
// modes, TTL leases with refresh and an optional watchdog, and fencing
// tokens.
//
// # Key layout
//
// Every key of lock NAME shares the hash tag {l:NAME}, so each script is
// atomic on one slot of a Cluster too:
//
//	kv:{l:NAME}      string  exclusive holder's lease token, with the TTL
//	kv:{l:NAME}:r    zset    shared holders: lease token -> expiry (ms)
//	kv:{l:NAME}:f    string  fencing counter (INCR on every acquisition; no TTL)
//	kv:{l:NAME}:qx   zset    waiting writers: lease token -> deadline (keeps new readers out)
//	kv:{l:NAME}:qs   zset    waiting readers: lease token -> deadline
//	kv:{l:NAME}:w:T  list    waiter T's grant list: its fencing token once granted, with a TTL
//
// # How waiting works
//
// Acquiring is one script: it takes the lock, or registers the caller as a
// waiter (writers and readers in separate queues) and returns the holder's
// remaining TTL. Lock then blocks in BLPOP on its own grant list, on a
// connection of valkey-go's blocking pool (never the shared pipeline), for
// at most that TTL or the context's deadline. Release is one script that
// checks the lease token, deletes it and hands the lock straight to the
// longest-waiting writer (or to every waiting reader): it makes the waiter
// the holder and pushes the fencing token onto its grant list, so the
// woken waiter needs no further round trip. A holder that dies is replaced
// when its TTL runs out, not before: its waiters' BLPOPs time out then and
// they try again. Cancelling the context ends the wait promptly, removes
// the waiter from the queue and gives back a lock granted meanwhile; the
// blocked connection is freed with CLIENT UNBLOCK (without that ACL
// permission it is closed and replaced instead). Behind a proxy that may
// route one connection to different servers, CLIENT UNBLOCK could reach the
// wrong server: use locks against the servers directly.
//
// # Guarantees and their limits
//
//   - Mutual exclusion holds while the server keeps its data. Unlock and
//     Refresh by anyone but the holder (or after expiry) fail with
//     ErrNotHeld and change nothing.
//   - Lease.Context is cancelled no later than the server drops the lease,
//     so work tied to it stops before another owner can start.
//   - Replication to replicas is asynchronous. If the primary fails right
//     after granting a lock, a promoted replica may not know the lock and
//     grant it again: two holders for a while. Options.WaitReplicas (WAIT)
//     makes this less likely, not impossible. Fencing tokens are the real
//     protection: the fencing counter only grows, so a resource that rejects
//     tokens lower than the highest it has seen turns a stale holder away.
//     (After a failover the counter may repeat values the old primary had
//     not replicated; use WaitReplicas where that matters.)
package lock
