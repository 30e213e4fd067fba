package lock_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyvalue-go/keyvalue/internal/scripts"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/servertest"
	"github.com/keyvalue-go/keyvalue/lock"
)

// handoffFixture: a held lock "fwd", a raw waiter A queued through the
// acquire script but not blocked (a waiter whose BLPOP has not arrived
// yet), and a real waiter B queued behind it and blocked.
type handoffFixture struct {
	holder *lock.Lease
	l      *lock.Locker
	b      chan error // B's Lock result
	cancel context.CancelFunc
	read   func(cmd ...string) (string, error)
	prefix string
	tokenA string
}

func newHandoffFixture(t *testing.T, tokenA string) *handoffFixture {
	s := servertest.Standalone(t)
	c := connect(t, s, "fwd")
	l := lock.New(c, lock.Options{TTL: 20 * time.Second, Logger: quiet})
	m := mutex(t, l, "fwd")
	p := "kv:{l:fwd}"
	holder, err := m.Lock(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	// The queue is ordered by registration deadline: A's (30 s) comes
	// before B's (the Locker registers for 2 TTLs + 1 s).
	keys := []string{p, p + ":r", p + ":f", p + ":qx", p + ":qs", p + ":g", p + ":w:" + tokenA}
	res, err := scripts.LockAcquire.Exec(ctx(t), c, keys, []string{tokenA, "20000", "x", "30000"}).AsIntSlice()
	if err != nil || res[0] != 0 {
		t.Fatalf("A's registration = %v, %v; want queued", res, err)
	}
	bctx, cancel := context.WithCancel(ctx(t))
	f := &handoffFixture{holder: holder, l: l, b: make(chan error, 1), cancel: cancel, prefix: p, tokenA: tokenA,
		read: func(cmd ...string) (string, error) { return s.Do(cmd...) }}
	go func() {
		lease, err := m.Lock(bctx) // B
		if err == nil {
			err = lease.Unlock(ctx(t))
		}
		f.b <- err
	}()
	servertest.WaitFor(t, 5*time.Second, "B queued behind A", func() error {
		n, err := s.Do("ZCARD", p+":qx")
		if err == nil && n != "2" {
			return errors.New("queue length " + n)
		}
		return err
	})
	time.Sleep(50 * time.Millisecond) // B blocks in BLPOP
	return f
}

// checkAHolds checks, with an independent reader, that A holds the lock
// and its grant is on its own list, and that B is still waiting.
func (f *handoffFixture) checkAHolds(t *testing.T) {
	t.Helper()
	servertest.WaitFor(t, 5*time.Second, "A's grant on A's own list", func() error {
		v, err := f.read("LRANGE", f.prefix+":w:"+f.tokenA, "0", "-1")
		if err == nil && v == "" {
			return errors.New("empty")
		}
		return err
	})
	if owner, _ := f.read("GET", f.prefix); owner != f.tokenA {
		t.Fatalf("the lock is held by %q; want A (granted first)", owner)
	}
	select {
	case err := <-f.b:
		t.Fatalf("B returned (%v) while A holds the lock", err)
	case <-time.After(100 * time.Millisecond):
	}
}

// TestHandoffWithOtherWaitersGoesToTheGrantedList: with B waiting too,
// the release grants A (first in the queue) on A's own list; B, blocked,
// does not get it; when A's lease is dropped, B gets the lock.
func TestHandoffWithOtherWaitersGoesToTheGrantedList(t *testing.T) {
	t.Parallel()
	f := newHandoffFixture(t, "tokenA")
	if err := f.holder.Unlock(ctx(t)); err != nil {
		t.Fatal(err)
	}
	f.checkAHolds(t)
	if err := f.l.ForceRelease(ctx(t), "fwd"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-f.b:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("B did not get the lock after A's lease was dropped")
	}
}

// TestInProcessHandoffLeavesNoPendingGrants: goroutines of one Locker
// contend; grants handed over in-process are never delivered through the
// server, and each holder clears its pending grant when it releases: at
// the end the pending grants hash is gone (an independent read), and no
// two leases overlapped.
func TestInProcessHandoffLeavesNoPendingGrants(t *testing.T) {
	t.Parallel()
	s := servertest.Standalone(t)
	l := lock.New(connect(t, s, "inproc"), lock.Options{TTL: 10 * time.Second, Logger: quiet})
	m := mutex(t, l, "inproc")
	var inside, overlaps atomic.Int32
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			for range 50 {
				lease, err := m.Lock(ctx(t))
				if err != nil {
					t.Error(err)
					return
				}
				if inside.Add(1) > 1 {
					overlaps.Add(1)
				}
				inside.Add(-1)
				if err := lease.Unlock(ctx(t)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := overlaps.Load(); n > 0 {
		t.Errorf("%d overlapping leases", n)
	}
	for _, key := range []string{"kv:{l:inproc}:g", "kv:{l:inproc}", "kv:{l:inproc}:qx"} {
		if n, err := s.Do("EXISTS", key); err != nil || n != "0" {
			t.Errorf("EXISTS %s = %s, %v; want 0 once every lease is released", key, n, err)
		}
	}
}

// TestContendedHandoffsLoseNoGrant: goroutines of one Locker contend in
// rounds; no Lock waits anywhere near the TTL (a lost grant shows up as a
// wait of a whole TTL, until the waiter finds its grant itself).
func TestContendedHandoffsLoseNoGrant(t *testing.T) {
	t.Parallel()
	s := servertest.Standalone(t)
	c := connect(t, s, "contend")
	for round := range 4 {
		l := lock.New(c, lock.Options{TTL: 10 * time.Second, Logger: quiet})
		m := mutex(t, l, "contend-"+string(rune('a'+round)))
		var mu sync.Mutex
		var worst time.Duration
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 50 {
					start := time.Now()
					lease, err := m.Lock(ctx(t))
					took := time.Since(start)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					worst = max(worst, took)
					mu.Unlock()
					if err := lease.Unlock(ctx(t)); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		t.Logf("round %d: longest Lock %s", round, worst)
		if worst > 3*time.Second {
			t.Errorf("round %d: a Lock waited %s with 8 contenders; a grant was lost", round, worst)
		}
	}
}
