package lock

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/keyvalue-go/keyvalue/internal/scripts"
	"github.com/keyvalue-go/keyvalue/internal/wake"
)

// Cohorts: the callers of one Locker that want the same exclusive lock
// take turns in this process first (a FIFO queue here), and one of them at
// a time deals with the server. When the holder unlocks and a caller of
// its cohort waits, one script hands the lock straight to it (release and
// acquire in one round trip, with a new fencing token), unless a waiter of
// another process has waited Options.FairAfter: then the lock is released
// in the usual way, to the server's queue in order, and the local caller
// queues there. So within a process the lock moves at one round trip per
// holder with no BLPOP and no re-registration (Go's sync.Mutex lets a
// running goroutine take the lock in its normal mode for the same
// reason), and a waiter elsewhere waits at most FairAfter plus one holder
// before it is served in queue order (sync.Mutex's starvation mode). Shared
// leases, and locks with Options.WaitReplicas, do not take part.

// DefaultFairAfter is Options.FairAfter when it is zero: sync.Mutex's
// starvation threshold.
const DefaultFairAfter = time.Millisecond

// cohort is the queue of one lock's exclusive callers in this process.
type cohort struct {
	l    *Locker
	name string
	mu   sync.Mutex
	// busy: a caller of this process holds the lock, or is acquiring it on
	// the server; the others queue here.
	busy  bool
	queue []*cohortWaiter
}

// cohortWaiter is a caller queued in its cohort.
type cohortWaiter struct {
	token string // its lease's token: given by a hand-over, or used to acquire
	ttl   time.Duration
	start time.Time
	turn  chan cohortTurn // buffered: the hand-over never blocks
}

// turn is what an acquisition carries for its lease: the cohort whose
// turn it has (nil for none) and the token to use ("" for a new one).
type turn struct {
	token  string
	cohort *cohort
}

// cohortTurn ends a cohort waiter's wait: with a lease handed over, or
// (lease nil) the turn to acquire on the server itself.
type cohortTurn struct{ lease *Lease }

// cohortFor returns the cohort of the lock called name.
func (l *Locker) cohortFor(name string) *cohort {
	if v, ok := l.cohorts.Load(name); ok {
		return v.(*cohort)
	}
	v, _ := l.cohorts.LoadOrStore(name, &cohort{l: l, name: name})
	return v.(*cohort)
}

// usesCohorts reports whether exclusive acquisitions take turns in
// cohorts (not with WaitReplicas, whose acknowledgement a hand-over would
// have to wait for too).
func (l *Locker) usesCohorts() bool { return l.opts.WaitReplicas <= 0 && l.opts.FairAfter >= 0 }

// lockInCohort is acquireOp for an exclusive lease: it takes the cohort's
// turn, or queues in the cohort while another caller of this process has
// it.
//
// A TryLock while the cohort is busy asks the server outside the cohort:
// its answer is fresh even when this process's holder lost the lock
// without knowing it yet (ForceRelease, say).
func (l *Locker) lockInCohort(ctx context.Context, k keys, wait bool, ttl time.Duration) (*Lease, error) {
	if ttl < time.Millisecond || ctx.Err() != nil {
		return l.acquireOp(ctx, k, false, wait, ttl, turn{}) // its errors
	}
	c := l.cohortFor(k.name)
	c.mu.Lock()
	if !c.busy {
		c.busy = true
		c.mu.Unlock()
		return l.serverTurn(ctx, k, c, wait, ttl, "")
	}
	if !wait {
		c.mu.Unlock()
		return l.acquireOp(ctx, k, false, false, ttl, turn{})
	}
	w := &cohortWaiter{token: newToken(), ttl: ttl, start: time.Now(), turn: make(chan cohortTurn, 1)}
	c.queue = append(c.queue, w)
	c.mu.Unlock()
	select {
	case t := <-w.turn:
		if t.lease != nil {
			return t.lease, nil
		}
		return l.serverTurn(ctx, k, c, wait, ttl, w.token)
	case <-ctx.Done():
		c.mu.Lock()
		if i := slices.Index(c.queue, w); i >= 0 {
			c.queue = slices.Delete(c.queue, i, i+1)
			c.mu.Unlock()
			return nil, &notAcquiredError{name: k.name, cause: ctx.Err()}
		}
		c.mu.Unlock()
		// Its turn came as it gave up: a lease goes back (acquire gives
		// back a lease to a caller whose context is done), a turn to the
		// next caller.
		t := <-w.turn
		if t.lease != nil {
			return t.lease, nil
		}
		c.pass()
		return nil, &notAcquiredError{name: k.name, cause: ctx.Err()}
	}
}

// serverTurn acquires on the server for the caller that has the cohort's
// turn (with token, when a hand-over that may have happened failed); if
// that fails, the turn passes on.
func (l *Locker) serverTurn(ctx context.Context, k keys, c *cohort, wait bool, ttl time.Duration, token string) (*Lease, error) {
	lease, err := l.acquireOp(ctx, k, false, wait, ttl, turn{token: token, cohort: c})
	if err != nil {
		c.pass()
		return nil, err
	}
	return lease, nil
}

// pass gives the cohort's turn to its next caller, to acquire on the
// server, or frees it (and forgets the cohort: a process may use many
// lock names once each). A caller that found the forgotten cohort still
// takes turns in it; one that comes later starts a new one: both then
// meet on the server, which is all a cohort saves.
func (c *cohort) pass() {
	c.mu.Lock()
	if len(c.queue) == 0 {
		c.busy = false
		c.l.cohorts.CompareAndDelete(c.name, c)
		c.mu.Unlock()
		return
	}
	w := c.queue[0]
	c.queue = c.queue[1:]
	c.mu.Unlock()
	w.turn <- cohortTurn{}
}

// next takes the cohort's next caller out of the queue, if any.
func (c *cohort) next() *cohortWaiter {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queue) == 0 {
		return nil
	}
	w := c.queue[0]
	c.queue = c.queue[1:]
	return w
}

// handOver ends an exclusive lease of a cohort: to the cohort's next
// caller in one round trip when there is one and no waiter elsewhere is
// owed the lock, else by the usual release (and the next caller, if any,
// acquires on the server). It reports whether the lease's token held the
// lock.
func (ls *Lease) handOver(ctx context.Context) (bool, error) {
	c, l := ls.cohort, ls.l
	w := c.next()
	if w == nil {
		held, err := ls.releaseRetrying(ctx)
		c.pass() // a caller that queued meanwhile acquires on the server
		return held, err
	}
	sent := time.Now()
	res, err := ls.transferRetrying(ctx, w)
	switch {
	case err != nil:
		// The hand-over may have happened: the caller acquires with the
		// token it would have had (the acquire script finds it the holder).
		w.turn <- cohortTurn{}
		return false, err
	case len(res) == 3 && res[0] == 1:
		lease := newLease(l, ls.k, w.token, false, res[1], sent, w.ttl, w.ttl, c)
		lease.base = res[2]
		lease.member = w.token + "|" + strconv.FormatInt(w.ttl.Milliseconds(), 10)
		l.tel.Add(ctx, "handoffs", 1)
		l.event(Event{Kind: EventAcquired, Name: ls.k.name, Token: res[1], Waited: time.Since(w.start)})
		w.turn <- cohortTurn{lease: lease}
		return true, nil
	case len(res) == 1 && res[0] == -1:
		// A waiter elsewhere is owed the lock: release in queue order; the
		// caller of this cohort queues on the server.
		held, err := ls.releaseRetrying(ctx)
		w.turn <- cohortTurn{}
		return held, err
	default: // the lease no longer held the lock
		w.turn <- cohortTurn{}
		return false, nil
	}
}

// transferRetrying runs the transfer script, sending it again after a
// lost connection as releaseRetrying does (it is idempotent: once the
// lock moved, the old token no longer holds it).
func (ls *Lease) transferRetrying(ctx context.Context, w *cohortWaiter) ([]int64, error) {
	l, k := ls.l, ls.k
	keys := []string{k.all[0], k.all[2], k.all[3], k.all[4], k.alive, k.seqs, k.all[5], k.counter}
	args := []string{ls.token, w.token, strconv.FormatInt(w.ttl.Milliseconds(), 10), strconv.FormatInt(l.fairAfter().Microseconds(), 10)}
	deadline := time.Now().Add(ls.ttl + l.grantSlack())
	var backoff time.Duration
	for {
		res, err := scripts.LockTransfer.Exec(ctx, l.c, keys, args).AsIntSlice()
		if err == nil || !wake.Retryable(ctx, err) || time.Now().After(deadline) {
			return res, err
		}
		wake.Pause(ctx, &backoff)
	}
}

// fairAfter is Options.FairAfter with its default.
func (l *Locker) fairAfter() time.Duration {
	if l.opts.FairAfter == 0 {
		return DefaultFairAfter
	}
	return l.opts.FairAfter
}
