package lock_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/kvtest"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/servertest"
	"github.com/keyvalue-go/keyvalue/lock"
)

// TestLockAvailableAfterFrozenPrimary: three processes (clients) take a
// lock in turns on a Sentinel set; the primary is frozen (SIGSTOP) for
// six seconds and then resumes. The resumed primary runs what was queued
// on it — a holder's Unlock, which there hands the lock to a waiter —
// before it learns it was demoted; that waiter's place in the queue also
// lives on the promoted replica. Once the failover is done, the lock must
// be taken again within its TTL: a release on the new primary must not
// hand it to a waiter that no longer waits there (its place expires when
// it stops renewing it), and the Unlock that failed on the frozen primary
// is sent again to the new one.
func TestLockAvailableAfterFrozenPrimary(t *testing.T) {
	if testing.Short() {
		t.Skip("failover takes several seconds")
	}
	t.Parallel()
	set := servertest.Sentinel(t)
	const ttl = 5 * time.Second
	var (
		mu     sync.Mutex
		takes  []time.Time
		active atomic.Int32
		double atomic.Int32
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 3 {
		c := kvtest.Open(t, keyvalue.Config{Mode: keyvalue.ModeSentinel, Addrs: set.SentinelAddrs(),
			Sentinel:  keyvalue.SentinelConfig{Master: set.Master, RefreshInterval: 300 * time.Millisecond},
			IOTimeout: 2 * time.Second, Logger: quiet})
		m := mutex(t, lock.New(c, lock.Options{TTL: ttl, Logger: quiet}), "frozen")
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				lctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
				lease, err := m.Lock(lctx)
				cancel()
				if err != nil {
					time.Sleep(50 * time.Millisecond)
					continue
				}
				if active.Add(1) > 1 && lease.Context().Err() == nil {
					double.Add(1)
				}
				mu.Lock()
				takes = append(takes, time.Now())
				mu.Unlock()
				select {
				case <-lease.Context().Done():
				case <-time.After(time.Duration(20+rand.IntN(30)) * time.Millisecond):
				}
				active.Add(-1)
				uctx, ucancel := context.WithTimeout(t.Context(), 10*time.Second)
				if err := lease.Unlock(uctx); err != nil && !errors.Is(err, lock.ErrNotHeld) {
					t.Logf("unlock: %v", err)
				}
				ucancel()
			}
		})
	}
	time.Sleep(time.Second)
	victim, frozenAt := set.FreezePrimary(t)
	var promotedAt time.Time
	servertest.WaitFor(t, 30*time.Second, "sentinel promotion", func() error {
		a, err := set.MasterAddr()
		if err != nil {
			return err
		}
		if a == victim.Addr() {
			return errors.New("master unchanged")
		}
		promotedAt = time.Now()
		return nil
	})
	time.Sleep(6*time.Second - time.Since(frozenAt))
	if err := victim.Thaw(); err != nil {
		t.Fatal(err)
	}
	thawedAt := time.Now()
	time.Sleep(3 * ttl)
	close(stop)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	failover := promotedAt.Sub(frozenAt)
	var worst time.Duration
	var worstAt time.Time
	last := frozenAt
	for _, at := range takes {
		if at.Before(frozenAt) {
			continue
		}
		if gap := at.Sub(last); gap > worst {
			worst, worstAt = gap, last
		}
		last = at
	}
	if gap := time.Since(last); gap > worst {
		worst, worstAt = gap, last
	}
	t.Logf("%d acquisitions; failover took %s; thawed %s after the freeze; longest time without a holder: %s (from %s after the freeze)",
		len(takes), failover.Round(time.Millisecond), thawedAt.Sub(frozenAt).Round(time.Millisecond), worst.Round(time.Millisecond), worstAt.Sub(frozenAt).Round(time.Millisecond))
	if bound := ttl + failover + 2*time.Second; worst > bound {
		t.Errorf("the lock went %s without a holder; want at most TTL (%s) + failover (%s) + 2 s", worst.Round(time.Millisecond), ttl, failover.Round(time.Millisecond))
	}
	if n := double.Load(); n > 0 {
		t.Logf("%d holds began while another hold's context was live (possible only around a failover that lost a lock; fencing tokens cover it)", n)
	}
}

// TestDeadWaiterIsNotHandedTheLock: a waiter whose process dies while it
// waits (its client closes; its queue entry stays, the leave it would send
// cannot reach the server) must not be handed the lock by the next
// release: its place expires once it stops renewing it, and a live waiter
// behind it gets the lock at once, not after the dead one's TTL.
func TestDeadWaiterIsNotHandedTheLock(t *testing.T) {
	t.Parallel()
	s := servertest.Standalone(t)
	const ttl = 10 * time.Second
	holder, err := mutex(t, lock.New(connect(t, s, "h"), lock.Options{TTL: ttl, Logger: quiet}), "dead").Lock(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	doomed := connect(t, s, "w")
	w := mutex(t, lock.New(doomed, lock.Options{TTL: ttl, Logger: quiet}), "dead")
	go func() { _, _ = w.Lock(ctx(t)) }()
	waitQueued(t, s, 1)
	b := mutex(t, lock.New(connect(t, s, "b"), lock.Options{TTL: ttl, Logger: quiet}), "dead")
	got := make(chan time.Time, 1)
	go func() {
		lease, err := b.Lock(ctx(t))
		if err != nil {
			t.Error(err)
			return
		}
		got <- time.Now()
		_ = lease.Unlock(ctx(t))
	}()
	waitQueued(t, s, 2)
	doomed.Close() // the waiter's process is gone
	time.Sleep(2500 * time.Millisecond)
	released := time.Now()
	if err := holder.Unlock(ctx(t)); err != nil {
		t.Fatal(err)
	}
	select {
	case at := <-got:
		t.Logf("the live waiter got the lock %s after the release", at.Sub(released).Round(time.Millisecond))
		if d := at.Sub(released); d > time.Second {
			t.Errorf("the live waiter got the lock %s after the release; the dead waiter was handed it first", d)
		}
	case <-time.After(ttl + 5*time.Second):
		t.Fatal("the live waiter never got the lock")
	}
}

// waitQueued waits until n writers wait for the lock "dead".
func waitQueued(t *testing.T, s *servertest.Server, n int) {
	t.Helper()
	servertest.WaitFor(t, 5*time.Second, "waiters queued", func() error {
		got, err := s.Do("ZCARD", "kv:{l:dead}:qx")
		if err == nil && got != strconv.Itoa(n) {
			return errors.New("queue length " + got)
		}
		return err
	})
}
