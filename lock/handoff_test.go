package lock_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
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
	seqA   int64 // A's sequence number
}

// newHandoffFixture builds the fixture; beforeB, if set, runs between
// A's registration and B's.
func newHandoffFixture(t *testing.T, tokenA string, beforeB func(s *servertest.Server)) *handoffFixture {
	s := servertest.Standalone(t)
	c := connect(t, s, "fwd")
	l := lock.New(c, lock.Options{TTL: 20 * time.Second, Logger: quiet})
	m := mutex(t, l, "fwd")
	p := "kv:{l:fwd}"
	holder, err := m.Lock(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	// The queue is ordered by registration (sequence numbers): A before B.
	// A does not renew its place: its registration lasts 30 s.
	keys := []string{p, p + ":r", p + ":f", p + ":qx", p + ":qs", p + ":g", p + ":w:" + tokenA, p + ":n", p + ":s", p + ":qd"}
	res, err := scripts.LockAcquire.Exec(ctx(t), c, keys, []string{tokenA, "20000", "x", "30000", ""}).AsIntSlice()
	if err != nil || res[0] != 0 {
		t.Fatalf("A's registration = %v, %v; want queued", res, err)
	}
	if beforeB != nil {
		beforeB(s)
	}
	bctx, cancel := context.WithCancel(ctx(t))
	f := &handoffFixture{holder: holder, l: l, b: make(chan error, 1), cancel: cancel, prefix: p, tokenA: tokenA, seqA: res[2],
		read: func(cmd ...string) (string, error) { return s.Do(cmd...) }}
	// B waits through another Locker (as another process would: callers of
	// the holder's Locker queue in-process, see cohorts).
	mb := mutex(t, lock.New(c, lock.Options{TTL: 20 * time.Second, Logger: quiet}), "fwd")
	go func() {
		lease, err := mb.Lock(bctx) // B
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
// and its grant is on its numbered grant list (the list the release
// declares for the waiter that queued right after the holder: handed over
// in the release's own round trip), and that B is still waiting.
func (f *handoffFixture) checkAHolds(t *testing.T) {
	t.Helper()
	numbered := f.prefix + ":w:s:" + strconv.FormatInt(f.seqA, 10)
	servertest.WaitFor(t, 5*time.Second, "A's grant on A's numbered list", func() error {
		v, err := f.read("LRANGE", numbered, "0", "-1")
		if err == nil && !strings.HasPrefix(v, f.tokenA+"|") {
			return errors.New("list holds " + strconv.Quote(v))
		}
		return err
	})
	if v, _ := f.read("LLEN", f.prefix+":w:"+f.tokenA); v != "0" {
		t.Errorf("A's token list holds %s elements; want none (no second call)", v)
	}
	f.checkOwnerAndB(t)
}

// checkOwnerAndB checks that A holds the lock and B is still waiting.
func (f *handoffFixture) checkOwnerAndB(t *testing.T) {
	t.Helper()
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
// the release grants A (first in the queue) on A's own numbered list, in
// its own script; B, blocked on its own lists, does not get it; when A's
// lease is dropped, B gets the lock.
func TestHandoffWithOtherWaitersGoesToTheGrantedList(t *testing.T) {
	t.Parallel()
	f := newHandoffFixture(t, "tokenA", nil)
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

// TestHandoffForwardedOnADuplicateNumber: the sequence counter was lost
// (a failover that did not replicate it) after A queued, so B gets A's
// number and blocks on the same numbered list. The release puts A's grant
// there; B pops it, sees another token, forwards it to A's token list
// (read back independently) and keeps waiting.
func TestHandoffForwardedOnADuplicateNumber(t *testing.T) {
	t.Parallel()
	f := newHandoffFixture(t, "tokenA", func(s *servertest.Server) {
		if _, err := s.Do("DEL", "kv:{l:fwd}:n"); err != nil {
			t.Fatal(err)
		}
	})
	if seqB, _ := f.read("HGET", f.prefix+":s", "tokenA"); seqB != strconv.FormatInt(f.seqA, 10) {
		t.Fatalf("A's number is %s, want %d", seqB, f.seqA)
	}
	if err := f.holder.Unlock(ctx(t)); err != nil {
		t.Fatal(err)
	}
	servertest.WaitFor(t, 5*time.Second, "A's grant forwarded to A's token list", func() error {
		v, err := f.read("LRANGE", f.prefix+":w:tokenA", "0", "-1")
		if err == nil && v == "" {
			return errors.New("empty")
		}
		return err
	})
	if n, _ := f.read("LLEN", f.prefix+":w:s:"+strconv.FormatInt(f.seqA, 10)); n != "0" {
		t.Errorf("the numbered list still holds %s elements; want A's grant taken off by B", n)
	}
	f.checkOwnerAndB(t)
	f.cancel()
	select {
	case err := <-f.b:
		if err == nil {
			t.Fatal("B got the lock A holds")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("B did not return after its context ended")
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

// TestContendedHandoffsLoseNoGrant: 8 goroutines contend in rounds, on
// one Locker (hand-offs in-process) and on four clients (hand-offs through
// the server, by numbered list or second call); no Lock waits anywhere
// near the TTL (a lost grant shows up as a wait of a whole TTL, until the
// waiter finds its grant itself), and no two leases overlap.
func TestContendedHandoffsLoseNoGrant(t *testing.T) {
	t.Parallel()
	s := servertest.Standalone(t)
	for _, clients := range []int{1, 4} {
		lockers := make([]*lock.Locker, clients)
		for i := range lockers {
			lockers[i] = lock.New(connect(t, s, fmt.Sprintf("contend%d", i)), lock.Options{TTL: 10 * time.Second, Logger: quiet})
		}
		for round := range 3 {
			name := fmt.Sprintf("contend-%d-%d", clients, round)
			var mu sync.Mutex
			var worst time.Duration
			var inside, overlaps atomic.Int32
			var wg sync.WaitGroup
			for g := range 8 {
				m := mutex(t, lockers[g%clients], name)
				wg.Go(func() {
					for range 50 {
						start := time.Now()
						lease, err := m.Lock(ctx(t))
						took := time.Since(start)
						if err != nil {
							t.Error(err)
							return
						}
						if inside.Add(1) > 1 {
							overlaps.Add(1)
						}
						inside.Add(-1)
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
			t.Logf("%d client(s), round %d: longest Lock %s", clients, round, worst)
			if worst > 3*time.Second {
				t.Errorf("%d client(s), round %d: a Lock waited %s with 8 contenders; a grant was lost", clients, round, worst)
			}
			if n := overlaps.Load(); n > 0 {
				t.Errorf("%d client(s), round %d: %d overlapping leases", clients, round, n)
			}
		}
	}
}
