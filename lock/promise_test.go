package lock_test

import (
	"context"
	"errors"
	"fmt"
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

// TestCancelledWaiterGetsNoLease: a waiter whose context ends while a
// release hands it the lock gives the lock back and reports that it gave
// up: Lock never returns a lease after its context is done, and the lock
// is free again at once. 300 rounds each between two processes and within
// one (the in-process hand-over), with the holder's Unlock and the end of
// the waiter's context within half a millisecond of each other, in both
// orders. When the context ends first, the only way to the lock is the
// hand-off of an Unlock that starts after it, so any lease Lock returns
// came to a caller whose context was already done: such rounds fail the
// test, whatever the scheduler does. When the Unlock starts first, Lock
// may return the lease or give it back; either way it must say which and
// leave the lock free when it gives up.
func TestCancelledWaiterGetsNoLease(t *testing.T) {
	t.Parallel()
	s := servertest.Standalone(t)
	hc := connect(t, s, "holder")
	gaps := []time.Duration{0, 200 * time.Microsecond, 500 * time.Microsecond}
	for _, sameProcess := range []bool{false, true} {
		lh := lock.New(hc, lock.Options{TTL: 5 * time.Second, Logger: quiet})
		lw := lh
		if !sameProcess {
			lw = lock.New(connect(t, s, "waiter"), lock.Options{TTL: 5 * time.Second, Logger: quiet})
		}
		name := fmt.Sprintf("cancelled-%v", sameProcess)
		mh, mw := mutex(t, lh, name), mutex(t, lw, name)
		late, given, taken := 0, 0, 0
		for i := range 300 {
			holder, err := mh.Lock(ctx(t))
			if err != nil {
				t.Fatal(err)
			}
			wctx, cancel := context.WithCancel(ctx(t))
			done := make(chan struct{})
			var lease *lock.Lease
			var lerr error
			go func() {
				lease, lerr = mw.Lock(wctx)
				close(done)
			}()
			time.Sleep(5 * time.Millisecond) // the waiter is waiting
			cancelFirst, gap := i%2 == 0, gaps[(i/2)%len(gaps)]
			if cancelFirst {
				cancel()
				time.Sleep(gap)
			}
			if err := holder.Unlock(ctx(t)); err != nil {
				t.Fatal(err)
			}
			if !cancelFirst {
				time.Sleep(gap)
				cancel()
			}
			<-done
			cancel() // already called; for vet's sake on every path
			if lerr == nil {
				if cancelFirst {
					late++
				} else {
					taken++
				}
				if err := lease.Unlock(ctx(t)); err != nil {
					t.Fatal(err)
				}
				continue
			}
			if !errors.Is(lerr, lock.ErrNotAcquired) || !errors.Is(lerr, context.Canceled) {
				t.Fatalf("round %d: Lock = %v; want it to match ErrNotAcquired and context.Canceled", i, lerr)
			}
			given++
			// The lock is free again: a TryLock gets it.
			again, err := mh.TryLock(ctx(t))
			if err != nil {
				t.Fatalf("round %d: the lock is not free after the waiter gave up: %v", i, err)
			}
			if err := again.Unlock(ctx(t)); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("same process %v: %d waiters gave up (the lock given back), %d took the lock handed to them before their context ended, %d leases returned after it ended",
			sameProcess, given, taken, late)
		if late > 0 {
			t.Errorf("same process %v: %d of 150 Lock calls whose context ended before the Unlock returned a lease", sameProcess, late)
		}
	}
}

// TestDoneContextOnAFreeLock: Lock and TryLock with a context that is
// already done do not try, and say so (not "held by another owner").
func TestDoneContextOnAFreeLock(t *testing.T) {
	t.Parallel()
	s := servertest.Standalone(t)
	m := mutex(t, lock.New(connect(t, s, "done"), lock.Options{Logger: quiet}), "free")
	done, cancel := context.WithCancel(ctx(t))
	cancel()
	for name, try := range map[string]func(context.Context) (*lock.Lease, error){"Lock": m.Lock, "TryLock": m.TryLock} {
		_, err := try(done)
		t.Logf("%s: %v", name, err)
		if !errors.Is(err, context.Canceled) || !errors.Is(err, lock.ErrNotAcquired) ||
			err.Error() != "lock free: not acquired: the context was done before the lock was tried: context canceled" {
			t.Errorf("%s with a done context = %v", name, err)
		}
	}
	if lease, err := m.TryLock(ctx(t)); err != nil {
		t.Errorf("the lock is not free: %v", err)
	} else {
		_ = lease.Unlock(ctx(t))
	}
}
