package lock

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyvalue-go/keyvalue/internal/scripts"
	"github.com/keyvalue-go/keyvalue/internal/wake"
)

// errNilLease is returned by the methods of a nil *Lease (the result of a
// failed TryLock or Lock).
var errNilLease = fmt.Errorf("lock: no lease (the acquisition failed): %w", ErrNotHeld)

// Lease is a held lock. Its methods are safe for concurrent use; on a nil
// *Lease (what a failed acquisition returns) they report ErrNotHeld.
type Lease struct {
	l      *Locker
	k      keys
	token  string
	fence  int64
	shared bool
	ttl    time.Duration // what Refresh extends the lease to
	base   int64         // sequence base: the waiters after it get the lock in one round trip
	member string        // its queue entry while it waited ("token|ttl"): a release takes it out
	// cohort, for an exclusive lease of a cohort: Unlock hands the lock
	// to its next caller; turnDone tells that the lease passed the
	// cohort's turn on (by Unlock, or when it was lost), exactly once.
	cohort   *cohort
	turnDone atomic.Bool

	ctx    context.Context
	cancel context.CancelCauseFunc

	mu       sync.Mutex
	timer    *time.Timer
	stop     chan struct{} // closed when the lease ends: stops the watchdog or the check
	released bool
}

// newLease starts a lease of ttl that the server keeps for left from about
// sent; c is its cohort (nil for none).
func newLease(l *Locker, k keys, token string, shared bool, fence int64, sent time.Time, ttl, left time.Duration, c *cohort) *Lease {
	ctx, cancel := context.WithCancelCause(context.Background())
	ls := &Lease{l: l, k: k, token: token, fence: fence, shared: shared, ttl: ttl, ctx: ctx, cancel: cancel, stop: make(chan struct{}), cohort: c}
	ls.mu.Lock()
	ls.extendLocked(sent, left)
	ls.mu.Unlock()
	switch {
	case l.opts.Watchdog:
		go ls.every(ttl/3, func(ctx context.Context) error { return ls.Refresh(ctx) })
	case l.opts.CheckInterval >= 0:
		every := l.opts.CheckInterval
		if every == 0 {
			every = left / 3
		}
		go ls.every(every, ls.check)
	}
	return ls
}

// Token returns the fencing token: strictly increasing per lock name across
// all acquisitions, exclusive and shared, and never below the server's
// clock in microseconds, so it keeps rising even when the server lost the
// counter (FLUSHDB, a failover that did not replicate it) as long as the
// server's clock moves forward. A resource protected by the lock should
// remember the highest token it has seen and reject writes carrying a
// lower one, which keeps out a holder that lost its lease (a long pause, a
// failover) but does not know it yet.
func (ls *Lease) Token() int64 {
	if ls == nil {
		return 0
	}
	return ls.fence
}

// Name returns the lock's name.
func (ls *Lease) Name() string {
	if ls == nil {
		return ""
	}
	return ls.k.name
}

// Context is cancelled when the lease ends, always before the server can
// give the lock to someone else: by Unlock (before it releases), when its
// TTL runs out without a refresh, or when a refresh or the periodic check
// (Options.CheckInterval) finds it gone. context.Cause tells which
// (ErrNotHeld when lost). A nil lease's context is already cancelled.
func (ls *Lease) Context() context.Context {
	if ls == nil {
		ctx, cancel := context.WithCancelCause(context.Background())
		cancel(errNilLease)
		return ctx
	}
	return ls.ctx
}

// extendLocked restarts the local expiry timer for a lease the server
// keeps for left from after sent: the timer fires the drift margin
// (Options.DriftMargin) before the earliest moment the server can drop the
// lease, so Context is cancelled before anyone else can take the lock
// even when this machine's clock runs that much slower than the
// server's.
func (ls *Lease) extendLocked(sent time.Time, left time.Duration) {
	if ls.timer != nil {
		ls.timer.Stop()
	}
	end := sent.Add(left - ls.l.driftMargin(ls.ttl))
	ls.timer = time.AfterFunc(time.Until(end), func() { ls.lost("TTL ran out without a refresh") })
}

// end marks the lease released and cancels its context with cause; it
// reports whether this call ended it.
func (ls *Lease) end(cause error) bool {
	ls.mu.Lock()
	if ls.released {
		ls.mu.Unlock()
		return false
	}
	ls.released = true
	if ls.timer != nil {
		ls.timer.Stop()
	}
	close(ls.stop)
	ls.mu.Unlock()
	ls.cancel(cause)
	return true
}

func (ls *Lease) lost(why string) {
	if !ls.end(fmt.Errorf("lock %s: %w: %s", ls.k.name, ErrNotHeld, why)) {
		return
	}
	if ls.cohort != nil && ls.turnDone.CompareAndSwap(false, true) {
		ls.cohort.pass() // the cohort's next caller tries the server
	}
	ls.l.log.Warn("lock lease lost", "lock", ls.k.name, "token", ls.fence, "why", why)
	ls.l.event(Event{Kind: EventLost, Name: ls.k.name, Shared: ls.shared, Token: ls.fence})
}

// Refresh extends the lease to its TTL from now. It fails with ErrNotHeld,
// changing nothing, if the lease expired or was taken over.
func (ls *Lease) Refresh(ctx context.Context) error {
	if ls == nil {
		return errNilLease
	}
	return ls.RefreshFor(ctx, ls.ttl)
}

// RefreshFor extends the lease to ttl from now (at least a millisecond);
// later Refresh calls and the watchdog use ttl too.
func (ls *Lease) RefreshFor(ctx context.Context, ttl time.Duration) error {
	if ls == nil {
		return errNilLease
	}
	if ttl < time.Millisecond {
		return fmt.Errorf("lock %s: refresh: %w: %s is under a millisecond", ls.k.name, ErrInvalidTTL, ttl)
	}
	sent := time.Now()
	left, err := ls.run(ctx, ttl)
	if err != nil {
		return fmt.Errorf("lock %s: refresh: %w", ls.k.name, err)
	}
	if left <= 0 {
		ls.lost("refresh found the lease expired or taken over")
		return fmt.Errorf("lock %s: refresh: %w", ls.k.name, ErrNotHeld)
	}
	ls.mu.Lock()
	if !ls.released {
		ls.ttl = ttl
		ls.extendLocked(sent, left)
	}
	ls.mu.Unlock()
	return nil
}

// check asks the server whether it still has the lease (without extending
// it) and ends the lease if not.
func (ls *Lease) check(ctx context.Context) error {
	sent := time.Now()
	left, err := ls.run(ctx, 0)
	if err != nil {
		return err
	}
	if left <= 0 {
		ls.lost("the server no longer has the lease (deleted or shortened from outside?)")
		return ErrNotHeld
	}
	ls.mu.Lock()
	if !ls.released {
		ls.extendLocked(sent, left) // shortened from outside: fire earlier
	}
	ls.mu.Unlock()
	return nil
}

// run runs the refresh script: ttl 0 checks only. It returns the lease's
// time left, 0 when it is gone.
func (ls *Lease) run(ctx context.Context, ttl time.Duration) (time.Duration, error) {
	ms, err := scripts.LockRefresh.Exec(ctx, ls.l.c, ls.k.all[:2],
		[]string{ls.token, strconv.FormatInt(ttl.Milliseconds(), 10), mode(ls.shared)}).AsInt64()
	return time.Duration(ms) * time.Millisecond, err
}

// every runs fn every interval until the lease ends; fn's ErrNotHeld ends
// the loop (fn has ended the lease), other errors are logged and retried.
func (ls *Lease) every(interval time.Duration, fn func(context.Context) error) {
	interval = max(interval, time.Millisecond)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ls.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(ls.ctx, interval)
			err := fn(ctx)
			cancel()
			if errors.Is(err, ErrNotHeld) {
				return
			}
			if err != nil && ls.ctx.Err() == nil {
				ls.l.log.Warn("lock lease refresh or check failed; retrying", "lock", ls.k.name, "error", err)
			}
		}
	}
}

// Unlock ends the lease: it cancels Context first, then releases the lock
// on the server and hands it to the next waiter, so work tied to Context
// stops before another owner starts. It fails with ErrNotHeld if the lease
// had expired or was taken over. A release that fails on a lost
// connection is sent again (it is idempotent: it compares the lease's
// token), with backoff, until it runs, ctx ends or the lease's TTL has
// passed (then the server has dropped the lease anyway): after a failover
// it reaches the new primary. If the server cannot be reached, the lease
// still ends here and the server drops it at the end of its TTL.
func (ls *Lease) Unlock(ctx context.Context) (err error) {
	if ls == nil {
		return errNilLease
	}
	ctx, sp := ls.l.tel.Start(ctx, "unlock")
	defer func() { sp.End(ctx, err) }()
	wasHeld := ls.end(context.Canceled)
	var held bool
	if ls.cohort != nil && ls.turnDone.CompareAndSwap(false, true) {
		held, err = ls.handOver(ctx)
	} else {
		held, err = ls.releaseRetrying(ctx)
	}
	if err != nil {
		return fmt.Errorf("lock %s: unlock: %w (the server drops the lease when its TTL runs out)", ls.k.name, err)
	}
	if !held {
		return fmt.Errorf("lock %s: unlock: %w", ls.k.name, ErrNotHeld)
	}
	if wasHeld {
		ls.l.event(Event{Kind: EventReleased, Name: ls.k.name, Shared: ls.shared, Token: ls.fence})
	}
	return nil
}

// releaseRetrying runs the release script until it gets an answer, sending
// it again after a lost connection until ctx ends or the lease's TTL (plus
// the grant slack) has passed since Unlock was called.
func (ls *Lease) releaseRetrying(ctx context.Context) (bool, error) {
	deadline := time.Now().Add(ls.ttl + ls.l.grantSlack())
	var backoff time.Duration
	for {
		held, err := ls.l.release(ctx, ls.k, ls.token, mode(ls.shared), ls.member, ls.base)
		if err == nil || !wake.Retryable(ctx, err) || time.Now().After(deadline) {
			return held, err
		}
		wake.Pause(ctx, &backoff)
	}
}
