package lock

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/keyvalue-go/keyvalue/internal/scripts"
)

// Lease is a held lock. Its methods are safe for concurrent use.
type Lease struct {
	l      *Locker
	k      keys
	token  string
	fence  int64
	shared bool

	ctx    context.Context
	cancel context.CancelCauseFunc

	mu       sync.Mutex
	timer    *time.Timer
	stopDog  chan struct{}
	released bool
}

func newLease(l *Locker, k keys, token string, shared bool, fence int64, sent time.Time) *Lease {
	ctx, cancel := context.WithCancelCause(context.Background())
	ls := &Lease{l: l, k: k, token: token, fence: fence, shared: shared, ctx: ctx, cancel: cancel}
	ls.mu.Lock()
	ls.extendLocked(sent)
	ls.mu.Unlock()
	if l.opts.Watchdog {
		ls.stopDog = make(chan struct{})
		go ls.watchdog()
	}
	return ls
}

// Token returns the fencing token: strictly increasing per lock name across
// all acquisitions, exclusive and shared. A resource protected by the lock
// should remember the highest token it has seen and reject writes carrying
// a lower one, which keeps out a holder that lost its lease (a long pause,
// a failover) but does not know it yet.
func (ls *Lease) Token() int64 { return ls.fence }

// Name returns the lock's name.
func (ls *Lease) Name() string { return ls.k.name }

// Context is cancelled when the lease ends: unlocked, or lost because its
// TTL ran out without a refresh or a refresh found it taken over.
// context.Cause tells which (ErrNotHeld when lost).
func (ls *Lease) Context() context.Context { return ls.ctx }

// extendLocked restarts the local expiry timer after a successful acquire
// or refresh sent at time sent. The server started its TTL after sent, so
// the timer fires no later than the server drops the lease: Context is
// cancelled before anyone else can take the lock.
func (ls *Lease) extendLocked(sent time.Time) {
	if ls.timer != nil {
		ls.timer.Stop()
	}
	ls.timer = time.AfterFunc(time.Until(sent.Add(ls.l.opts.TTL)), func() { ls.lost("TTL ran out without a refresh") })
}

func (ls *Lease) lost(why string) {
	ls.mu.Lock()
	if ls.released {
		ls.mu.Unlock()
		return
	}
	ls.released = true
	if ls.timer != nil {
		ls.timer.Stop()
	}
	ls.mu.Unlock()
	ls.stopWatchdog()
	ls.l.log.Warn("lock lease lost", "lock", ls.k.name, "token", ls.fence, "why", why)
	ls.l.event(Event{Kind: EventLost, Name: ls.k.name, Shared: ls.shared, Token: ls.fence})
	ls.cancel(fmt.Errorf("lock %s: %w: %s", ls.k.name, ErrNotHeld, why))
}

func (ls *Lease) stopWatchdog() {
	if ls.stopDog != nil {
		select {
		case <-ls.stopDog:
		default:
			close(ls.stopDog)
		}
	}
}

// Refresh extends the lease to a full TTL from now. It fails with
// ErrNotHeld, changing nothing, if the lease expired or was taken over.
func (ls *Lease) Refresh(ctx context.Context) error {
	sent := time.Now()
	ok, err := scripts.LockRefresh.Exec(ctx, ls.l.c, ls.k.all[:2],
		[]string{ls.token, strconv.FormatInt(ls.l.opts.TTL.Milliseconds(), 10), mode(ls.shared)}).AsInt64()
	if err != nil {
		return fmt.Errorf("lock %s: refresh: %w", ls.k.name, err)
	}
	if ok != 1 {
		ls.lost("refresh found the lease expired or taken over")
		return fmt.Errorf("lock %s: refresh: %w", ls.k.name, ErrNotHeld)
	}
	ls.mu.Lock()
	if !ls.released {
		ls.extendLocked(sent)
	}
	ls.mu.Unlock()
	return nil
}

func (ls *Lease) watchdog() {
	every := ls.l.opts.TTL / 3
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ls.stopDog:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(ls.ctx, every)
			err := ls.Refresh(ctx)
			cancel()
			if errors.Is(err, ErrNotHeld) {
				return
			}
			if err != nil {
				ls.l.log.Warn("lock watchdog refresh failed; retrying", "lock", ls.k.name, "error", err)
			}
		}
	}
}

// Unlock releases the lease and wakes one waiter. It fails with
// ErrNotHeld, changing nothing, if the lease expired or was taken over.
func (ls *Lease) Unlock(ctx context.Context) error {
	ls.stopWatchdog()
	ok, err := ls.l.release(ctx, ls.k, ls.token, mode(ls.shared))
	if err != nil {
		return fmt.Errorf("lock %s: unlock: %w", ls.k.name, err)
	}
	ls.mu.Lock()
	wasReleased := ls.released
	ls.released = true
	if ls.timer != nil {
		ls.timer.Stop()
	}
	ls.mu.Unlock()
	if ok != 1 {
		if !wasReleased {
			ls.cancel(fmt.Errorf("lock %s: %w", ls.k.name, ErrNotHeld))
		}
		return fmt.Errorf("lock %s: unlock: %w", ls.k.name, ErrNotHeld)
	}
	ls.cancel(context.Canceled)
	ls.l.event(Event{Kind: EventReleased, Name: ls.k.name, Shared: ls.shared, Token: ls.fence})
	return nil
}
