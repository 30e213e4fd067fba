package lock_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyvalue-go/keyvalue/internal/testsupport/servertest"
	"github.com/keyvalue-go/keyvalue/lock"
)

// TestContextEndsBeforeHandOff: A holds, B waits, A unlocks. When B's Lock
// returns, A's Context must already be done (lock/doc.go's promise).
func TestContextEndsBeforeHandOff(t *testing.T) {
	t.Parallel()
	s := servertest.Standalone(t)
	la := lock.New(connect(t, s, "a"), lock.Options{TTL: 5 * time.Second, Logger: quiet})
	lb := lock.New(connect(t, s, "b"), lock.Options{TTL: 5 * time.Second, Logger: quiet})
	ma, mb := mutex(t, la, "handoff"), mutex(t, lb, "handoff")
	live := 0
	for range 50 {
		a, err := ma.Lock(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan *lock.Lease)
		go func() {
			b, err := mb.Lock(ctx(t))
			if err != nil {
				t.Error(err)
			}
			if a.Context().Err() == nil {
				live++
			}
			got <- b
		}()
		time.Sleep(5 * time.Millisecond) // let B block
		if err := a.Unlock(ctx(t)); err != nil {
			t.Fatal(err)
		}
		b := <-got
		if err := b.Unlock(ctx(t)); err != nil {
			t.Fatal(err)
		}
	}
	if live > 0 {
		t.Errorf("in %d of 50 hand-offs the old holder's Context was live when the next holder's Lock returned", live)
	}
}

func TestNilLeaseAndTimedOutLock(t *testing.T) {
	t.Parallel()
	s := servertest.Standalone(t)
	l := lock.New(connect(t, s, "n"), lock.Options{TTL: 5 * time.Second, Logger: quiet})
	m := mutex(t, l, "busy")
	held, err := m.Lock(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Unlock(ctx(t)) //nolint:errcheck // test cleanup
	none, err := m.TryLock(ctx(t))
	if !errors.Is(err, lock.ErrNotAcquired) {
		t.Fatalf("TryLock = %v", err)
	}
	if err := none.Unlock(ctx(t)); !errors.Is(err, lock.ErrNotHeld) {
		t.Errorf("Unlock on the nil lease of a failed TryLock = %v, want ErrNotHeld (and no panic)", err)
	}
	if none.Context().Err() == nil || none.Refresh(ctx(t)) == nil || none.Token() != 0 {
		t.Error("a nil lease must look ended")
	}
	short, cancel := context.WithTimeout(ctx(t), 100*time.Millisecond)
	defer cancel()
	_, err = m.Lock(short)
	t.Logf("timed-out Lock: %v", err)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, lock.ErrNotAcquired) {
		t.Errorf("timed-out Lock = %v, want it to match both context.DeadlineExceeded and ErrNotAcquired", err)
	}
	_, err = m.TryLockFor(ctx(t), 500*time.Microsecond)
	if !errors.Is(err, lock.ErrInvalidTTL) || !strings.Contains(err.Error(), "lock busy: invalid TTL: 500µs is under a millisecond") {
		t.Errorf("sub-millisecond TTL: %v", err)
	}
}

// TestWaiterWakesWhenCrashedHolderExpires: a holder that never unlocks
// (it crashed) is replaced within milliseconds of its lease's expiry, not
// at the server's next timeout sweep (100ms with hz 10).
//
// The server runs with hz 1, so a wait that relied on the server's own
// timeout sweep would take up to a second; the bound below leaves room for
// a loaded machine (the whole suite under the race detector) and still
// tells the two apart.
func TestWaiterWakesWhenCrashedHolderExpires(t *testing.T) {
	t.Parallel()
	s := servertest.Standalone(t, servertest.WithArgs("--hz", "1"))
	crashed := lock.New(connect(t, s, "crashed"), lock.Options{TTL: 300 * time.Millisecond, Logger: quiet, CheckInterval: -1})
	waiter := lock.New(connect(t, s, "waiter"), lock.Options{TTL: 5 * time.Second, Logger: quiet})
	var delays []time.Duration
	for i := range 7 {
		name := "crash" + string(rune('a'+i))
		start := time.Now()
		if _, err := mutex(t, crashed, name).Lock(ctx(t)); err != nil {
			t.Fatal(err)
		}
		expiry := start.Add(300 * time.Millisecond)
		lease, err := mutex(t, waiter, name).Lock(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		delays = append(delays, time.Since(expiry))
		_ = lease.Unlock(ctx(t))
	}
	slices.Sort(delays)
	median := delays[len(delays)/2]
	t.Logf("wake-up after a crashed holder's lease expired: median %s, worst %s (the server's own timeout sweep at hz 1: up to 1s)", median, delays[len(delays)-1])
	if median > 150*time.Millisecond {
		t.Errorf("waiters took a median %s after the holder's lease expired, want a few ms", median)
	}
}

// TestLeaseDeletedFromOutside: without the watchdog, a lease deleted on the
// server (DEL, FLUSHDB, ForceRelease) cancels Context within the check
// interval, and fencing tokens keep rising even after FLUSHDB.
func TestLeaseDeletedFromOutside(t *testing.T) {
	t.Parallel()
	s := servertest.Standalone(t)
	c := connect(t, s, "outside")
	l := lock.New(c, lock.Options{TTL: 10 * time.Second, CheckInterval: 50 * time.Millisecond, Logger: quiet})
	m := mutex(t, l, "deleted")
	lease, err := m.Lock(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Do("FLUSHDB"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	select {
	case <-lease.Context().Done():
		t.Logf("lease lost to FLUSHDB noticed after %s: %v", time.Since(start), context.Cause(lease.Context()))
	case <-time.After(2 * time.Second):
		t.Fatal("a lease deleted by FLUSHDB still looks held after 2s")
	}
	next, err := m.Lock(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	defer next.Unlock(ctx(t)) //nolint:errcheck // test cleanup
	if next.Token() <= lease.Token() {
		t.Errorf("token after FLUSHDB %d, before %d: tokens must keep rising", next.Token(), lease.Token())
	}
	// A per-acquisition TTL and RefreshFor.
	short, err := mutex(t, l, "ttl").LockFor(ctx(t), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if ms, _ := c.Do(ctx(t), c.B().Pttl().Key("kv:{l:ttl}").Build()).AsInt64(); ms > 2000 || ms < 1000 {
		t.Errorf("LockFor(2s): PTTL %dms", ms)
	}
	if err := short.RefreshFor(ctx(t), 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if ms, _ := c.Do(ctx(t), c.B().Pttl().Key("kv:{l:ttl}").Build()).AsInt64(); ms < 15000 {
		t.Errorf("RefreshFor(20s): PTTL %dms", ms)
	}
	_ = short.Unlock(ctx(t))
}

// TestCloseWakesWaiters: closing the client ends a blocked Lock promptly.
func TestCloseWakesWaiters(t *testing.T) {
	t.Parallel()
	s := servertest.Standalone(t)
	holder := lock.New(connect(t, s, "holder"), lock.Options{TTL: 30 * time.Second, Logger: quiet})
	if _, err := mutex(t, holder, "closing").Lock(ctx(t)); err != nil {
		t.Fatal(err)
	}
	c := connect(t, s, "waiter")
	waiter := lock.New(c, lock.Options{TTL: 30 * time.Second, Logger: quiet})
	done := make(chan error)
	go func() {
		_, err := mutex(t, waiter, "closing").Lock(ctx(t))
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	c.Close()
	select {
	case err := <-done:
		t.Logf("Lock after Close: %v after %s", err, time.Since(start))
		if err == nil {
			t.Error("Lock succeeded after Close")
		}
	case <-time.After(3 * time.Second):
		t.Fatal("a blocked Lock did not return within 3s of Close")
	}
}
