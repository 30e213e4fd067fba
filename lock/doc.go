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
//	kv:{l:NAME}:f    string  fencing counter (no TTL; see Lease.Token)
//	kv:{l:NAME}:qx   zset    waiting writers: "token|ttl" -> when it queued (keeps new readers out)
//	kv:{l:NAME}:qs   zset    waiting readers: "token|ttl" -> when it queued
//	kv:{l:NAME}:qd   zset    every waiter's place: "token|ttl" -> deadline (renewed while it waits)
//	kv:{l:NAME}:g    hash    grants made but not yet delivered: token -> fencing token
//	kv:{l:NAME}:w:T  list    waiter T's grant list: its fencing token once granted, with a TTL
//	kv:{l:NAME}:n    string  waiter sequence counter (expires with the longest wait)
//	kv:{l:NAME}:s    hash    waiting token -> its sequence number
//	kv:{l:NAME}:w:s:N list   waiter N's numbered grant list: "token|fencing token", with a TTL
//
// Every key a script touches is passed to it in KEYS.
//
// # How waiting works
//
// Acquiring is one script: it takes the lock, or registers the caller as a
// waiter (writers and readers in separate queues) and returns the holder's
// remaining TTL and, to a waiter, a sequence number (the next of the
// lock's counter, kept across rounds). Lock then blocks in BLPOP on its two
// grant lists (by token and by number, both its own), on a connection of
// valkey-go's blocking pool (never the shared pipeline), until a release
// hands it the lock, the holder's TTL runs out — timed by the client
// (within a few milliseconds of the expiry), not by the server's timeout
// sweep, which runs only every 1/hz seconds — or a second has passed:
// then it runs the acquire script again, which renews its place. A place
// lasts two seconds unless renewed, so a waiter that stopped waiting (its
// process died, it waits on another server after a failover) drops out of
// the queue within two seconds and is never handed the lock; a waiter
// keeps its place in the order (when it first queued) across renewals. Release is one script that
// checks the lease token, deletes it and makes the longest-waiting writer
// (or every waiting reader) the holder, recording the grant. A holder
// knows a sequence base (its own number, or the counter when it took the
// lock at once), and its release declares the numbered lists of the next
// four numbers: when the new holder is one of them — a waiter that queued
// after it, the usual case — the script pushes the grant there, and Unlock
// costs one round trip. Otherwise the new holder's list is only known
// after the script, and a second call delivers the fencing token onto its
// token list: two round trips — unless that waiter is in the same Locker:
// then the release hands it the fencing token in-process instead of making
// the call (its BLPOP is cancelled), and the new holder takes that
// undelivered grant out of kv:{l:NAME}:g when it releases. A waiter only ever pops its own lists,
// so a cancelled wait cannot take another waiter's grant; should a lost
// counter give one number twice, the waiter that pops another token's
// grant forwards it to that waiter's token list. A waiter that misses the
// push (the releaser died between the calls) finds the grant when its wait
// times out. Cancelling the context ends the wait
// promptly, removes the waiter from the queue and gives back a lock granted
// meanwhile: Lock never returns a lease to a caller whose context was done
// before it returned (a context already done is not tried at all); closing
// the client ends the wait too. Unlock that fails on a lost connection is
// sent again until it runs (it compares the token, so running it twice is
// harmless), which after a failover reaches the new primary, and every
// release also takes the holder's own queue entry out, in case a promoted
// replica kept it. The blocked connection is
// freed with CLIENT UNBLOCK (without that ACL permission it is closed and
// replaced instead). Behind a proxy that may route one connection to
// different servers, CLIENT UNBLOCK could reach the wrong server: use locks
// against the servers directly.
//
// # Cohorts: fast within a process, fair across processes
//
// A FIFO hand-off through the server costs every new holder a wake-up and
// a round trip, and every waiter a registration and a BLPOP: with many
// callers in one process that is half the throughput of a polling lock.
// So a Locker's callers of one exclusive lock queue in the process first
// (a cohort, FIFO), and only one of them at a time deals with the server.
// When the holder unlocks and a caller of its cohort waits, one script
// (lock_transfer.lua) releases and acquires for it in one round trip, with
// a new fencing token: no BLPOP, no registration. Like sync.Mutex's normal
// mode, this favours the callers already running; like its starvation
// mode, it stops as soon as a waiter of another process has waited
// Options.FairAfter (1ms by default): the script then changes nothing and
// the lock is released to the server's queue in order, the local caller
// queueing there too. So another process waits at most FairAfter plus one
// hold of this process before the queue order serves it. Measured on this
// machine (8 callers, loopback): 2× the lock+unlock throughput of the FIFO
// hand-off with a lower p99 wait; the callers of the other process in the
// tests waited 17ms at worst against four busy callers. A lease lost
// without Unlock (its TTL ran out) passes the cohort's turn on; TryLock
// while the cohort is busy asks the server outside it; shared leases and
// Locker with WaitReplicas do not take part.
//
// # Guarantees and their limits
//
//   - Mutual exclusion holds while the server keeps its data. Unlock and
//     Refresh by anyone but the holder (or after expiry) fail with
//     ErrNotHeld and change nothing.
//   - Lease.Context ends before another owner can start: Unlock cancels it
//     before it releases; otherwise a local timer cancels it no later than
//     the server drops the lease (the TTL counts from before the request
//     was sent).
//   - A lease taken away on the server (DEL, FLUSHDB, ForceRelease,
//     PEXPIRE, a failover that lost it) is noticed by a periodic check,
//     one read every Options.CheckInterval (default a third of the TTL),
//     or by the watchdog's refresh: Context is cancelled then. Between the
//     loss and the check, two processes may both believe they hold the
//     lock; fencing tokens protect the resource in that window.
//   - Fencing tokens strictly increase per lock name, and never fall below
//     the server's clock in microseconds: a lost counter (FLUSHDB, a
//     failover that did not replicate it) does not make them repeat, as
//     long as the servers' clocks move forward.
//   - Liveness: a waiter waits for the holder's release plus about one
//     round trip (a release hands the lock over in its own script), for
//     the holder's TTL when the holder died, and, after a failover, at
//     most the TTL plus the failover time (tested with a primary frozen
//     for six seconds, then resumed: it runs a holder's queued Unlock,
//     which there hands the lock to a waiter, before it learns it was
//     demoted).
//   - Replication to replicas is asynchronous. If the primary fails right
//     after granting a lock, a promoted replica may not know the lock and
//     grant it again: two holders for a while. Options.WaitReplicas (WAIT)
//     makes this less likely, not impossible; fencing tokens are the real
//     protection.
//
// # Under faults
//
// Tested in this package and in internal/netfaults (2-core machine,
// loopback):
//
//	fault                             what holds                                measured
//	holder dies (crash)               waiters get the lock at its TTL's end      within ms of the expiry
//	waiter dies while queued          its place expires within 2 s; a release    the live waiter got it
//	                                  never hands it the lock                    1–3 ms after the release
//	                                                                             (11 s before this rule)
//	primary frozen 6 s, failover,     no two live holds; the lock is taken       longest gap 4.1 s
//	old primary resumes               again within TTL + failover                (TTL 5 s, failover 2.5 s)
//	holder's network cut              its Context ends before another process    ended 23–44 ms before the
//	                                  acquires (DriftMargin earlier than the     next Lock returned (TTL 2 s,
//	                                  TTL); the fenced resource refuses it       watchdog on and off)
//	Sentinel split (primary and a     with WaitReplicas 1, no hold on the        0 overlapping holds in 31
//	client on the minority side)      minority side: no overlap                  (the minority's refused)
//	waiter's context ends as the      the lock is given back; Lock returns the   0 of 600 (3–5 of 300 before)
//	lock is granted                   context's error, never a lease
//	client closed while a Lock        the wait ends with keyvalue.ErrClosed      at once; io_timeout when a
//	waits                                                                        renewal is in flight
package lock
