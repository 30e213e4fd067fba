package lock_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/kvtest"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/servertest"
	"github.com/keyvalue-go/keyvalue/lock"
)

var quiet = kvtest.Quiet

func connect(t *testing.T, s *servertest.Server, name string) *keyvalue.Client {
	return kvtest.Open(t, keyvalue.Config{Addrs: []string{s.Addr()}, ClientName: name})
}

func ctx(t *testing.T) context.Context { return kvtest.Ctx(t, 0) }

func mutex(t *testing.T, l *lock.Locker, name string) *lock.Mutex {
	t.Helper()
	m, err := l.Mutex(name)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMutualExclusionAndFencing(t *testing.T) {
	t.Parallel()
	s := servertest.Standalone(t)
	var (
		counter   int // deliberately not atomic: the lock must protect it
		lastToken int64
		tokenErrs atomic.Int32
		wg        sync.WaitGroup
	)
	const clients, perClient, rounds = 3, 6, 15
	for c := range clients {
		l := lock.New(connect(t, s, fmt.Sprintf("c%d", c)), lock.Options{TTL: 5 * time.Second, Logger: quiet})
		m := mutex(t, l, "counter")
		for range perClient {
			wg.Go(func() {
				for range rounds {
					lease, err := m.Lock(ctx(t))
					if err != nil {
						t.Error(err)
						return
					}
					// The resource checks fencing tokens.
					if lease.Token() <= lastToken {
						tokenErrs.Add(1)
					}
					lastToken = lease.Token()
					v := counter
					time.Sleep(100 * time.Microsecond)
					counter = v + 1
					if err := lease.Unlock(ctx(t)); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	if want := clients * perClient * rounds; counter != want {
		t.Errorf("counter = %d, want %d: mutual exclusion broken", counter, want)
	}
	if n := tokenErrs.Load(); n != 0 {
		t.Errorf("%d fencing tokens were not strictly increasing", n)
	}
}

func TestTryLockAndNonOwner(t *testing.T) {
	t.Parallel()
	s := servertest.Standalone(t)
	l := lock.New(connect(t, s, "a"), lock.Options{TTL: 300 * time.Millisecond, Logger: quiet})
	m := mutex(t, l, "job:42")
	a, err := m.TryLock(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.TryLock(ctx(t)); !errors.Is(err, lock.ErrNotAcquired) {
		t.Fatalf("second TryLock = %v, want ErrNotAcquired", err)
	}
	// a's lease expires; b takes over; a's Unlock and Refresh must not touch b's.
	time.Sleep(400 * time.Millisecond)
	b, err := m.TryLock(ctx(t))
	if err != nil {
		t.Fatalf("TryLock after expiry: %v", err)
	}
	if err := a.Unlock(ctx(t)); !errors.Is(err, lock.ErrNotHeld) {
		t.Errorf("stale Unlock = %v, want ErrNotHeld", err)
	}
	if err := a.Refresh(ctx(t)); !errors.Is(err, lock.ErrNotHeld) {
		t.Errorf("stale Refresh = %v, want ErrNotHeld", err)
	}
	t.Logf("error a user sees: %v", a.Unlock(ctx(t)))
	if _, err := m.TryLock(ctx(t)); !errors.Is(err, lock.ErrNotAcquired) {
		t.Errorf("b's lease was disturbed by a's stale calls: %v", err)
	}
	if b.Token() <= a.Token() {
		t.Errorf("tokens %d then %d: not increasing", a.Token(), b.Token())
	}
	if err := b.Unlock(ctx(t)); err != nil {
		t.Error(err)
	}
}

func TestCrashedHolderIsReplacedAfterTTL(t *testing.T) {
	t.Parallel()
	s := servertest.Standalone(t)
	const ttl = 700 * time.Millisecond
	holder := lock.New(connect(t, s, "holder"), lock.Options{TTL: ttl, Logger: quiet})
	waiter := lock.New(connect(t, s, "waiter"), lock.Options{TTL: ttl, Logger: quiet})
	if _, err := mutex(t, holder, "r").Lock(ctx(t)); err != nil { // never unlocked: the holder "crashes"
		t.Fatal(err)
	}
	acquired := time.Now()
	lease, err := mutex(t, waiter, "r").Lock(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(acquired)
	if took < ttl-20*time.Millisecond {
		t.Errorf("waiter got the lock %s after a crashed holder took it; TTL is %s", took, ttl)
	}
	if took > ttl+300*time.Millisecond {
		t.Errorf("waiter needed %s after a %s TTL", took, ttl)
	}
	t.Logf("crashed holder replaced after %s (TTL %s)", took.Round(time.Millisecond), ttl)
	_ = lease.Unlock(ctx(t))
}

func TestWakeUpIsImmediate(t *testing.T) {
	t.Parallel()
	s := servertest.Standalone(t)
	// A long TTL: a poll loop or a TTL-bound wait would show up as seconds.
	l := lock.New(connect(t, s, "w"), lock.Options{TTL: 20 * time.Second, Logger: quiet})
	m := mutex(t, l, "handoff")
	var lat []time.Duration
	for range 20 {
		held, err := m.Lock(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan time.Time, 1)
		go func() {
			lease, err := m.Lock(ctx(t))
			if err != nil {
				t.Error(err)
				got <- time.Now()
				return
			}
			got <- time.Now()
			_ = lease.Unlock(ctx(t))
		}()
		time.Sleep(30 * time.Millisecond) // let the waiter block in BLPOP
		released := time.Now()
		if err := held.Unlock(ctx(t)); err != nil {
			t.Fatal(err)
		}
		lat = append(lat, (<-got).Sub(released))
	}
	worst := lat[0]
	for _, d := range lat {
		worst = max(worst, d)
	}
	if worst > 250*time.Millisecond {
		t.Errorf("release→acquire hand-off took up to %s; want milliseconds", worst)
	}
	t.Logf("release→acquire hand-off: %v", lat)
}

func TestReadersShareWriterNotStarved(t *testing.T) {
	t.Parallel()
	s := servertest.Standalone(t)
	c := connect(t, s, "rw")
	l := lock.New(c, lock.Options{TTL: 10 * time.Second, Logger: quiet})
	rw, err := l.RWMutex("doc")
	if err != nil {
		t.Fatal(err)
	}
	r1, err := rw.RLock(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	r2, err := rw.TryRLock(ctx(t))
	if err != nil {
		t.Fatalf("second reader: %v", err)
	}
	if _, err := rw.TryLock(ctx(t)); !errors.Is(err, lock.ErrNotAcquired) {
		t.Fatalf("writer got in beside readers: %v", err)
	}
	writerIn := make(chan *lock.Lease, 1)
	go func() {
		w, err := rw.Lock(ctx(t))
		if err != nil {
			t.Error(err)
		}
		writerIn <- w
	}()
	servertest.WaitFor(t, 5*time.Second, "writer queued", func() error {
		n, err := c.Do(ctx(t), c.B().Zcard().Key("kv:{l:doc}:qx").Build()).AsInt64()
		if err != nil || n != 1 {
			return fmt.Errorf("waiting writers = %d, %v", n, err)
		}
		return nil
	})
	// New readers keep out while the writer waits.
	if _, err := rw.TryRLock(ctx(t)); !errors.Is(err, lock.ErrNotAcquired) {
		t.Fatalf("a new reader overtook the waiting writer: %v", err)
	}
	readerIn := make(chan *lock.Lease, 1)
	go func() {
		r, err := rw.RLock(ctx(t))
		if err != nil {
			t.Error(err)
		}
		readerIn <- r
	}()
	_ = r1.Unlock(ctx(t))
	_ = r2.Unlock(ctx(t))
	var w *lock.Lease
	select {
	case w = <-writerIn:
	case <-time.After(5 * time.Second):
		t.Fatal("writer not admitted after the readers left")
	}
	select {
	case <-readerIn:
		t.Fatal("a reader got in while the writer holds the lock")
	case <-time.After(100 * time.Millisecond):
	}
	_ = w.Unlock(ctx(t))
	select {
	case r := <-readerIn:
		_ = r.Unlock(ctx(t))
	case <-time.After(5 * time.Second):
		t.Fatal("waiting reader not admitted after the writer left")
	}
}

func TestCancelWhileWaiting(t *testing.T) {
	t.Parallel()
	s := servertest.Standalone(t)
	c := connect(t, s, "cancel")
	l := lock.New(c, lock.Options{TTL: 20 * time.Second, Logger: quiet})
	m := mutex(t, l, "busy")
	held, err := m.Lock(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Unlock(ctx(t))

	dctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = m.Lock(dctx)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
		t.Fatalf("Lock with a 200ms deadline: %v after %s", err, time.Since(start))
	}
	t.Logf("error a user sees: %v", err)

	cctx, cancel2 := context.WithCancel(t.Context())
	go func() { time.Sleep(150 * time.Millisecond); cancel2() }()
	start = time.Now()
	_, err = m.Lock(cctx)
	if !errors.Is(err, context.Canceled) || time.Since(start) > time.Second {
		t.Fatalf("Lock cancelled after 150ms: %v after %s", err, time.Since(start))
	}
	// No waiter state is left behind.
	for _, k := range []string{"kv:{l:busy}:qx", "kv:{l:busy}:qs"} {
		if n, _ := c.Do(ctx(t), c.B().Exists().Key(k).Build()).AsInt64(); n != 0 {
			t.Errorf("%s left behind after cancelled waits", k)
		}
	}
}

func TestLeaseContextAndWatchdog(t *testing.T) {
	t.Parallel()
	s := servertest.Standalone(t)
	c := connect(t, s, "ctx")
	const ttl = 300 * time.Millisecond
	plain := lock.New(c, lock.Options{TTL: ttl, Logger: quiet})
	lease, err := mutex(t, plain, "a").Lock(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-lease.Context().Done():
		if !errors.Is(context.Cause(lease.Context()), lock.ErrNotHeld) {
			t.Errorf("cause = %v", context.Cause(lease.Context()))
		}
	case <-time.After(ttl + 200*time.Millisecond):
		t.Fatal("Context not cancelled when the lease ran out")
	}

	dog := lock.New(c, lock.Options{TTL: ttl, Watchdog: true, Logger: quiet})
	kept, err := mutex(t, dog, "b").Lock(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(4 * ttl)
	if kept.Context().Err() != nil {
		t.Fatalf("watchdog lease lost: %v", context.Cause(kept.Context()))
	}
	if _, err := mutex(t, dog, "b").TryLock(ctx(t)); !errors.Is(err, lock.ErrNotAcquired) {
		t.Fatalf("lease kept by the watchdog was taken: %v", err)
	}
	if err := kept.Unlock(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if kept.Context().Err() == nil {
		t.Error("Context not cancelled by Unlock")
	}

	// Taken over behind its back: the next refresh cancels the Context.
	lost, _ := mutex(t, plain, "c").Lock(ctx(t))
	if err := c.Do(ctx(t), c.B().Set().Key("kv:{l:c}").Value("someone-else").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	if err := lost.Refresh(ctx(t)); !errors.Is(err, lock.ErrNotHeld) || lost.Context().Err() == nil {
		t.Errorf("refresh of a taken-over lease: %v, ctx %v", err, lost.Context().Err())
	}
}

func TestInvalidNamesAndReplicaAck(t *testing.T) {
	t.Parallel()
	s := servertest.Standalone(t)
	l := lock.New(connect(t, s, "n"), lock.Options{Logger: quiet})
	for _, name := range []string{"", "has space", "a{b}", string(make([]byte, 201)), "tab\t"} {
		_, err := l.Mutex(name)
		if !errors.Is(err, lock.ErrInvalidName) {
			t.Errorf("Mutex(%q) = %v", name, err)
		}
	}
	_, err := l.Mutex("has space")
	t.Logf("error a user sees: %v", err)

	acked := lock.New(connect(t, s, "n"), lock.Options{WaitReplicas: 1, WaitTimeout: 50 * time.Millisecond, Logger: quiet})
	_, err = mutex(t, acked, "needs-replica").Lock(ctx(t))
	if !errors.Is(err, lock.ErrNotReplicated) {
		t.Fatalf("WaitReplicas on a server without replicas: %v", err)
	}
	t.Logf("error a user sees: %v", err)
	if _, err := mutex(t, l, "needs-replica").TryLock(ctx(t)); err != nil {
		t.Errorf("lock not released after the failed acknowledgement: %v", err)
	}
}

func TestLockOnCluster(t *testing.T) {
	t.Parallel()
	cl := servertest.Cluster(t, 3)
	c, err := keyvalue.Open(keyvalue.Config{Mode: keyvalue.ModeCluster, Addrs: cl.Addrs(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	l := lock.New(c, lock.Options{TTL: 5 * time.Second, Logger: quiet})
	for i := range 10 {
		rw, err := l.RWMutex(fmt.Sprintf("res-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		w, err := rw.Lock(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			r, err := rw.RLock(ctx(t))
			if err == nil {
				err = r.Unlock(ctx(t))
			}
			done <- err
		}()
		time.Sleep(10 * time.Millisecond)
		if err := w.Unlock(ctx(t)); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

func TestInspectNamesForceRelease(t *testing.T) {
	t.Parallel()
	s := servertest.Standalone(t)
	l := lock.New(connect(t, s, "admin"), lock.Options{TTL: 10 * time.Second, Logger: quiet})
	if done, err := mutex(t, l, "aaa").Lock(ctx(t)); err != nil || done.Unlock(ctx(t)) != nil {
		t.Fatalf("aaa: %v", err)
	}
	held, _ := mutex(t, l, "jobs").Lock(ctx(t))
	rw, _ := l.RWMutex("docs")
	r1, _ := rw.RLock(ctx(t))
	r2, _ := rw.RLock(ctx(t))
	info, err := l.Inspect(ctx(t), "jobs")
	if err != nil || !info.Held() || info.TTL <= 9*time.Second || info.Fence != held.Token() {
		t.Fatalf("Inspect(jobs) = %+v, %v", info, err)
	}
	if info, _ := l.Inspect(ctx(t), "docs"); info.Readers != 2 || info.Holder != "" {
		t.Errorf("Inspect(docs) = %+v", info)
	}
	names, err := l.Names(ctx(t))
	if err != nil || fmt.Sprint(names) != "[aaa docs jobs]" {
		t.Errorf("Names = %v, %v", names, err)
	}
	// List: every lock's state, held ones first, in one walk.
	infos, complete, err := l.List(ctx(t), 0)
	var listed []string
	for _, i := range infos {
		listed = append(listed, fmt.Sprintf("%s:%v:%d", i.Name, i.Holder != "", i.Readers))
	}
	if err != nil || !complete || fmt.Sprint(listed) != "[docs:false:2 jobs:true:0 aaa:false:0]" {
		t.Errorf("List = %v, complete %v, %v", listed, complete, err)
	}
	if infos, complete, err := l.List(ctx(t), 1); err != nil || complete || len(infos) > 3 {
		t.Errorf("List(1) = %d locks, complete %v, %v; want an incomplete walk", len(infos), complete, err)
	}
	if err := l.ForceRelease(ctx(t), "jobs"); err != nil {
		t.Fatal(err)
	}
	if _, err := mutex(t, l, "jobs").TryLock(ctx(t)); err != nil {
		t.Errorf("TryLock after ForceRelease: %v", err)
	}
	if err := held.Unlock(ctx(t)); !errors.Is(err, lock.ErrNotHeld) {
		t.Errorf("old holder's Unlock after ForceRelease = %v", err)
	}
	_, _ = r1, r2
}

// TestManyWaitersDoNotStarveOtherTraffic: waiters block on valkey-go's
// blocking connections, so the shared pipeline keeps serving.
func TestManyWaitersDoNotStarveOtherTraffic(t *testing.T) {
	t.Parallel()
	s := servertest.Standalone(t)
	c := connect(t, s, "starve")
	l := lock.New(c, lock.Options{TTL: 20 * time.Second, Logger: quiet})
	m := mutex(t, l, "hot")
	held, err := m.Lock(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx(t))
	var wg sync.WaitGroup
	for range 50 {
		// A Locker each, as 50 processes would wait (a Locker's own callers
		// queue in-process, see cohorts).
		other := mutex(t, lock.New(c, lock.Options{TTL: 20 * time.Second, Logger: quiet}), "hot")
		wg.Go(func() {
			if lease, err := other.Lock(wctx); err == nil {
				_ = lease.Unlock(ctx(t))
			}
		})
	}
	servertest.WaitFor(t, 10*time.Second, "50 waiters queued", func() error {
		n, err := c.Do(ctx(t), c.B().Zcard().Key("kv:{l:hot}:qx").Build()).AsInt64()
		if err != nil || n != 50 {
			return fmt.Errorf("%d waiters, %v", n, err)
		}
		return nil
	})
	var worst time.Duration
	for range 50 {
		start := time.Now()
		if err := c.Do(ctx(t), c.B().Ping().Build()).Error(); err != nil {
			t.Fatal(err)
		}
		worst = max(worst, time.Since(start))
	}
	// A PING queued behind a blocked BLPOP would wait until the waiters
	// are cancelled (below, after this loop): it would never return here.
	// The bound only separates that from a loaded machine's noise.
	if worst > 2*time.Second {
		t.Errorf("with 50 lock waiters blocked, a PING on the same client took %s", worst)
	}
	t.Logf("50 blocked waiters; slowest of 50 PINGs on the same client: %s", worst)
	cancelled := time.Now()
	cancel()
	wg.Wait()
	if took := time.Since(cancelled); took > 2*time.Second {
		t.Errorf("cancelling 50 waiters took %s; they must return promptly", took)
	} else {
		t.Logf("all 50 waiters returned %s after cancel", took)
	}
	_ = held.Unlock(ctx(t))
}
