package lock_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyvalue-go/keyvalue/internal/testsupport/servertest"
	"github.com/keyvalue-go/keyvalue/lock"
)

// TestCohortHandsOverInProcess: callers of one Locker hand the lock to
// each other in one round trip (no BLPOP), still one holder at a time,
// with fencing tokens that rise at every hold.
func TestCohortHandsOverInProcess(t *testing.T) {
	t.Parallel()
	s := servertest.Standalone(t)
	m := mutex(t, lock.New(connect(t, s, "cohort"), lock.Options{TTL: 10 * time.Second, Logger: quiet}), "c")
	if _, err := s.Do("CONFIG", "RESETSTAT"); err != nil {
		t.Fatal(err)
	}
	var (
		inside atomic.Int32
		mu     sync.Mutex
		tokens []int64
		wg     sync.WaitGroup
	)
	for range 8 {
		wg.Go(func() {
			for range 100 {
				lease, err := m.Lock(ctx(t))
				if err != nil {
					t.Error(err)
					return
				}
				if inside.Add(1) != 1 {
					t.Error("two holders at once")
				}
				mu.Lock()
				tokens = append(tokens, lease.Token())
				mu.Unlock()
				inside.Add(-1)
				if err := lease.Unlock(ctx(t)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if !slices.IsSorted(tokens) || len(slices.Compact(slices.Clone(tokens))) != len(tokens) {
		t.Error("fencing tokens did not rise at every hold")
	}
	blpops, err := s.Calls("blpop")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("800 holds by 8 callers of one Locker: %d BLPOPs", blpops)
	if blpops != 0 {
		t.Errorf("%d BLPOPs: callers of one Locker waited on the server", blpops)
	}
}

// TestCohortIsFairToOtherProcesses: while four callers of one Locker pass
// the lock among themselves, a caller of another Locker (another process)
// waits about FairAfter plus one hold, not as long as they keep it busy.
func TestCohortIsFairToOtherProcesses(t *testing.T) {
	t.Parallel()
	s := servertest.Standalone(t)
	busy := mutex(t, lock.New(connect(t, s, "busy"), lock.Options{TTL: 10 * time.Second, FairAfter: 5 * time.Millisecond, Logger: quiet}), "f")
	other := mutex(t, lock.New(connect(t, s, "other"), lock.Options{TTL: 10 * time.Second, Logger: quiet}), "f")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				lease, err := busy.Lock(ctx(t))
				if err != nil {
					t.Error(err)
					return
				}
				time.Sleep(time.Millisecond) // a short hold
				_ = lease.Unlock(ctx(t))
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	var worst time.Duration
	for range 20 {
		start := time.Now()
		lease, err := other.Lock(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		worst = max(worst, time.Since(start))
		_ = lease.Unlock(ctx(t))
		time.Sleep(2 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	t.Logf("another process's longest wait over 20 acquisitions, against 4 callers passing the lock: %s", worst)
	if worst > time.Second {
		t.Errorf("another process waited %s for a lock held 1ms at a time", worst)
	}
}

// TestCohortTurnPassesWhenALeaseIsLost: a holder that never unlocks does
// not keep the callers of its own Locker waiting beyond its TTL.
func TestCohortTurnPassesWhenALeaseIsLost(t *testing.T) {
	t.Parallel()
	s := servertest.Standalone(t)
	m := mutex(t, lock.New(connect(t, s, "lost"), lock.Options{TTL: 300 * time.Millisecond, CheckInterval: -1, Logger: quiet}), "l")
	if _, err := m.Lock(ctx(t)); err != nil { // never unlocked
		t.Fatal(err)
	}
	start := time.Now()
	lease, err := m.Lock(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	defer lease.Unlock(ctx(t)) //nolint:errcheck // test cleanup
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("the next caller of the Locker got the lock %s after a holder that never unlocked (TTL 300ms)", took)
	}
}

// TestCohortWaiterGivesUp: a caller queued in its Locker whose context
// ends leaves the queue, and the lock still goes round.
func TestCohortWaiterGivesUp(t *testing.T) {
	t.Parallel()
	s := servertest.Standalone(t)
	m := mutex(t, lock.New(connect(t, s, "giveup"), lock.Options{TTL: 10 * time.Second, Logger: quiet}), "g")
	held, err := m.Lock(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx(t), 50*time.Millisecond)
	defer cancel()
	_, err = m.Lock(short)
	if !errors.Is(err, lock.ErrNotAcquired) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a queued caller whose context ended = %v", err)
	}
	next := make(chan error, 1)
	go func() {
		lease, err := m.Lock(ctx(t))
		if err == nil {
			err = lease.Unlock(ctx(t))
		}
		next <- err
	}()
	time.Sleep(20 * time.Millisecond)
	if err := held.Unlock(ctx(t)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-next:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the next caller did not get the lock after the one that gave up left")
	}
}
