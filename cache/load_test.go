package cache_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/cache"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/servertest"
)

// helperEnv names the variable that makes the test binary a helper
// process: "compute ADDR CACHE ID" starts a GetOrSet whose computation
// never ends, after printing "computing" (the parent then kills it).
const helperEnv = "KV_CACHE_TEST_HELPER"

func runHelper() int {
	args := strings.Fields(os.Getenv(helperEnv))
	if len(args) != 4 || args[0] != "compute" {
		fmt.Fprintln(os.Stderr, "helper: want: compute ADDR CACHE ID")
		return 2
	}
	c, err := keyvalue.Open(keyvalue.Config{Addrs: []string{args[1]}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer c.Close()
	b, err := cache.New(c, args[2], cache.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	typed := cache.NewTypedWith[string](b, cache.JSON, cache.LoadOptions{Lease: time.Second})
	_, err = typed.GetOrSet(context.Background(), args[3], func(ctx context.Context) (string, []string, time.Duration, error) {
		fmt.Println("computing")
		select {} // until killed
	})
	fmt.Fprintln(os.Stderr, "helper: GetOrSet returned", err)
	return 1
}

// typedView is what one process sees: its own Typed (its own in-process
// deduplication) over its own client.
func typedView(t *testing.T, addr, name string, o cache.LoadOptions) *cache.Typed[string] {
	t.Helper()
	c := connect(t, keyvalue.Config{Addrs: []string{addr}})
	return cache.NewTypedWith[string](newBackend(t, c, name, cache.Options{}), cache.JSON, o)
}

// TestGetOrSetComputesOnceAcrossProcesses: 64 callers over 4 clients (as
// 4 processes) miss the same key; one computation runs, every caller gets
// its value.
func TestGetOrSetComputesOnceAcrossProcesses(t *testing.T) {
	t.Parallel()
	s, _ := standalone(t)
	var views []*cache.Typed[string]
	for range 4 {
		views = append(views, typedView(t, s.Addr(), "stampede", cache.LoadOptions{}))
	}
	checkComputesOnce(t, views, 64)
}

// checkComputesOnce has callers spread over views (as over processes)
// miss one key whose computation takes 50ms: one computation must run,
// every caller get its value, and the waiters be woken by the write (not
// by the 10s lease running out).
func checkComputesOnce(t *testing.T, views []*cache.Typed[string], callers int) {
	t.Helper()
	var calls atomic.Int32
	load := func(ctx context.Context) (string, []string, time.Duration, error) {
		calls.Add(1)
		time.Sleep(50 * time.Millisecond)
		return "computed", []string{"a", "b"}, time.Minute, nil
	}
	var wg sync.WaitGroup
	start := time.Now()
	for i := range callers {
		wg.Go(func() {
			v, err := views[i%len(views)].GetOrSet(ctx(t), "hot", load)
			if err != nil || v != "computed" {
				t.Errorf("GetOrSet = %q, %v", v, err)
			}
		})
	}
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Errorf("%d computations for %d callers over %d clients, want 1", n, callers, len(views))
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("%d callers returned after %s; the computation takes 50ms", callers, took)
	}
}

// TestGetOrSetTakesOverFromAKilledProcess: a helper process holds the
// lease and is killed (SIGKILL) in the middle of its computation; a
// waiting caller computes within the lease TTL.
func TestGetOrSetTakesOverFromAKilledProcess(t *testing.T) {
	t.Parallel()
	s, _ := standalone(t)
	const lease = time.Second
	helper := exec.Command(os.Args[0], "-test.run=^$")
	helper.Env = append(os.Environ(), helperEnv+"=compute "+s.Addr()+" killed hot")
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = helper.Process.Kill(); _ = helper.Wait() })
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(out).ReadString('\n')
		line <- l
	}()
	select {
	case l := <-line:
		if strings.TrimSpace(l) != "computing" {
			t.Fatalf("helper said %q", l)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the helper process did not start computing")
	}
	view := typedView(t, s.Addr(), "killed", cache.LoadOptions{Lease: lease})
	done := make(chan error, 1)
	var took time.Duration
	go func() {
		start := time.Now()
		v, err := view.GetOrSet(ctx(t), "hot", func(ctx context.Context) (string, []string, time.Duration, error) {
			return "taken over", nil, time.Minute, nil
		})
		took = time.Since(start)
		if err == nil && v != "taken over" {
			err = fmt.Errorf("got %q", v)
		}
		done <- err
	}()
	time.Sleep(100 * time.Millisecond) // the caller is waiting for the helper
	if err := helper.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting caller did not take over")
	}
	t.Logf("took over after %s (lease %s)", took, lease)
	if took > lease+500*time.Millisecond {
		t.Errorf("the waiting caller computed after %s, over the %s lease", took, lease)
	}
}

// TestGetOrSetFailedComputationHandsOver: when the computing caller's
// load fails, it releases the lease at once: a waiter in another process
// computes without waiting for the lease to expire.
func TestGetOrSetFailedComputationHandsOver(t *testing.T) {
	t.Parallel()
	s, _ := standalone(t)
	a := typedView(t, s.Addr(), "handover", cache.LoadOptions{Lease: 10 * time.Second})
	b := typedView(t, s.Addr(), "handover", cache.LoadOptions{Lease: 10 * time.Second})
	started := make(chan struct{})
	errA := make(chan error, 1)
	go func() {
		_, err := a.GetOrSet(ctx(t), "k", func(ctx context.Context) (string, []string, time.Duration, error) {
			close(started)
			time.Sleep(200 * time.Millisecond)
			return "", nil, 0, errors.New("database down")
		})
		errA <- err
	}()
	<-started
	start := time.Now()
	v, err := b.GetOrSet(ctx(t), "k", func(ctx context.Context) (string, []string, time.Duration, error) {
		return "from b", nil, time.Minute, nil
	})
	if err != nil || v != "from b" {
		t.Fatalf("b: %q, %v", v, err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("b computed after %s: the failed computation did not hand over", took)
	}
	if err := <-errA; err == nil || !strings.Contains(err.Error(), `cache handover: load "k": database down`) {
		t.Errorf("a: %v", err)
	}
}

// TestGetOrSetNotStoredAfterFlush is the set-after-invalidate race: a
// computation that straddles a flush of its tag (or of the whole cache),
// in this process or another, returns its value but does not store it;
// the next read computes again.
func TestGetOrSetNotStoredAfterFlush(t *testing.T) {
	t.Parallel()
	s, c := standalone(t)
	flushers := map[string]func(b *cache.Backend) error{
		"FlushByTags": func(b *cache.Backend) error { _, err := b.FlushByTags(ctx(t), "page_7"); return err },
		"Flush":       func(b *cache.Backend) error { _, err := b.Flush(ctx(t), nil); return err },
	}
	for what, flush := range flushers {
		for _, where := range []string{"same process", "other process"} {
			t.Run(what+"/"+where, func(t *testing.T) {
				name := strings.NewReplacer("/", "-", " ", "-").Replace("straddle-" + what + "-" + where)
				view := typedView(t, s.Addr(), name, cache.LoadOptions{})
				flusher := view.Backend()
				if where == "other process" {
					flusher = newBackend(t, c, name, cache.Options{})
				}
				v, err := view.GetOrSet(ctx(t), "page", func(ctx context.Context) (string, []string, time.Duration, error) {
					// The render read the old record; the editor saves and purges.
					if err := flush(flusher); err != nil {
						return "", nil, 0, err
					}
					return "old page", []string{"page_7", "menu"}, time.Hour, nil
				})
				if err != nil || v != "old page" {
					t.Fatalf("GetOrSet = %q, %v; want the computed value returned", v, err)
				}
				if _, err := view.Get(ctx(t), "page"); !errors.Is(err, cache.ErrNotFound) {
					t.Fatalf("after a flush during the computation, Get = %v; want ErrNotFound (the old page must not be stored)", err)
				}
				v, err = view.GetOrSet(ctx(t), "page", func(ctx context.Context) (string, []string, time.Duration, error) {
					return "new page", []string{"page_7", "menu"}, time.Hour, nil
				})
				if err != nil || v != "new page" {
					t.Fatalf("next GetOrSet = %q, %v", v, err)
				}
				if got, err := view.Get(ctx(t), "page"); err != nil || got != "new page" {
					t.Fatalf("a computation that began after the flush is stored: Get = %q, %v", got, err)
				}
			})
		}
	}
	t.Run("other tag", func(t *testing.T) {
		view := typedView(t, s.Addr(), "straddle-other", cache.LoadOptions{})
		if _, err := view.GetOrSet(ctx(t), "page", func(ctx context.Context) (string, []string, time.Duration, error) {
			_, err := view.Backend().FlushByTags(ctx, "unrelated")
			return "page", []string{"page_7"}, time.Hour, err
		}); err != nil {
			t.Fatal(err)
		}
		if got, err := view.Get(ctx(t), "page"); err != nil || got != "page" {
			t.Fatalf("a flush of another tag refused the write: %q, %v", got, err)
		}
	})
}

// TestGetOrSetTooLongComputationNotStored: a computation longer than
// Options.MaxLoadTime (the flush stamps' retention) is returned, not stored.
func TestGetOrSetTooLongComputationNotStored(t *testing.T) {
	t.Parallel()
	_, c := standalone(t)
	b := newBackend(t, c, "slowload", cache.Options{MaxLoadTime: 100 * time.Millisecond})
	view := cache.NewTyped[string](b, cache.JSON)
	v, err := view.GetOrSet(ctx(t), "k", func(ctx context.Context) (string, []string, time.Duration, error) {
		time.Sleep(200 * time.Millisecond)
		return "slow", []string{"t"}, time.Hour, nil
	})
	if err != nil || v != "slow" {
		t.Fatalf("GetOrSet = %q, %v", v, err)
	}
	if _, err := view.Get(ctx(t), "k"); !errors.Is(err, cache.ErrNotFound) {
		t.Errorf("a computation over MaxLoadTime was stored: %v", err)
	}
}

// TestStaleWhileRevalidate: within the grace period a stale value is
// returned at once, and one caller across two processes recomputes it in
// the background.
func TestStaleWhileRevalidate(t *testing.T) {
	t.Parallel()
	s, _ := standalone(t)
	o := cache.LoadOptions{Grace: 5 * time.Second}
	views := []*cache.Typed[string]{typedView(t, s.Addr(), "swr", o), typedView(t, s.Addr(), "swr", o)}
	var calls atomic.Int32
	load := func(ctx context.Context) (string, []string, time.Duration, error) {
		n := calls.Add(1)
		time.Sleep(100 * time.Millisecond)
		return fmt.Sprintf("v%d", n), []string{"t"}, 200 * time.Millisecond, nil
	}
	if v, err := views[0].GetOrSet(ctx(t), "k", load); err != nil || v != "v1" {
		t.Fatalf("first GetOrSet = %q, %v", v, err)
	}
	time.Sleep(300 * time.Millisecond) // stale now, within its grace
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			start := time.Now()
			v, err := views[i%2].GetOrSet(ctx(t), "k", load)
			if err != nil || v != "v1" {
				t.Errorf("stale read = %q, %v; want v1 at once", v, err)
			}
			if took := time.Since(start); took > 90*time.Millisecond {
				t.Logf("a stale read took %s (the computation takes 100ms)", took)
			}
		})
	}
	wg.Wait()
	servertest.WaitFor(t, 5*time.Second, "the background refresh stored v2", func() error {
		if v, err := views[1].Get(ctx(t), "k"); err != nil || v != "v2" {
			return fmt.Errorf("%q, %v", v, err)
		}
		return nil
	})
	if n := calls.Load(); n != 2 {
		t.Errorf("%d computations; want 2 (the first and one refresh for 20 stale reads over 2 processes)", n)
	}
	// Past lifetime + grace the entry is gone: a plain miss.
	if ttl, err := views[0].Backend().Has(ctx(t), "k"); err != nil || !ttl {
		t.Fatalf("refreshed entry: %v, %v", ttl, err)
	}
}

// TestEarlyRefresh: with Beta, a fresh entry whose computation is slow
// relative to its remaining lifetime is recomputed before it turns
// stale; without Beta it is not.
func TestEarlyRefresh(t *testing.T) {
	t.Parallel()
	s, _ := standalone(t)
	for _, beta := range []float64{0, 1000} {
		view := typedView(t, s.Addr(), fmt.Sprintf("xfetch%v", beta), cache.LoadOptions{Beta: beta})
		var calls atomic.Int32
		load := func(ctx context.Context) (string, []string, time.Duration, error) {
			n := calls.Add(1)
			time.Sleep(20 * time.Millisecond)
			return fmt.Sprintf("v%d", n), nil, 2 * time.Second, nil
		}
		if _, err := view.GetOrSet(ctx(t), "k", load); err != nil {
			t.Fatal(err)
		}
		// 20ms·1000·(−ln u) passes the 2s left for all but u > e^-0.1 (10%
		// of reads); 30 reads all missing it has a chance of 1e-30.
		for range 30 {
			if v, err := view.GetOrSet(ctx(t), "k", load); err != nil || v == "" {
				t.Fatalf("read = %q, %v", v, err)
			}
			if calls.Load() > 1 {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		if beta == 0 {
			time.Sleep(100 * time.Millisecond)
			if n := calls.Load(); n != 1 {
				t.Errorf("beta 0: %d computations before expiry, want 1", n)
			}
			continue
		}
		servertest.WaitFor(t, 2*time.Second, "early refresh stored v2", func() error {
			if v, err := view.Get(ctx(t), "k"); err != nil || v != "v2" {
				return fmt.Errorf("%q, %v", v, err)
			}
			return nil
		})
	}
}

// TestGetOrSetNotStoredAfterFlushOnCluster: the same promise on a Cluster
// (the standalone layout: the stamps, the lease and the entry share the
// cache's slot), with the flush sent by another client.
func TestGetOrSetNotStoredAfterFlushOnCluster(t *testing.T) {
	t.Parallel()
	cl := servertest.Cluster(t, 3)
	cfg := keyvalue.Config{Mode: keyvalue.ModeCluster, Addrs: cl.Addrs()}
	view := cache.NewTyped[string](newBackend(t, connect(t, cfg), "straddle-cluster", cache.Options{}), cache.JSON)
	flusher := newBackend(t, connect(t, cfg), "straddle-cluster", cache.Options{})
	v, err := view.GetOrSet(ctx(t), "page", func(ctx context.Context) (string, []string, time.Duration, error) {
		_, err := flusher.FlushByTags(ctx, "page_7")
		return "old page", []string{"page_7"}, time.Hour, err
	})
	if err != nil || v != "old page" {
		t.Fatalf("GetOrSet = %q, %v", v, err)
	}
	if _, err := view.Get(ctx(t), "page"); !errors.Is(err, cache.ErrNotFound) {
		t.Fatalf("after a flush during the computation, Get = %v; want ErrNotFound", err)
	}
}

// TestGetOrSetBadResultHandsOver: a computation whose result cannot be
// stored (an invalid tag) returns the value with the error and releases
// the lease: a waiter in another process does not wait for it to expire.
func TestGetOrSetBadResultHandsOver(t *testing.T) {
	t.Parallel()
	s, _ := standalone(t)
	a := typedView(t, s.Addr(), "badresult", cache.LoadOptions{Lease: 10 * time.Second})
	b := typedView(t, s.Addr(), "badresult", cache.LoadOptions{Lease: 10 * time.Second})
	started := make(chan struct{})
	errA := make(chan error, 1)
	go func() {
		v, err := a.GetOrSet(ctx(t), "k", func(ctx context.Context) (string, []string, time.Duration, error) {
			close(started)
			time.Sleep(200 * time.Millisecond)
			return "value", []string{"bad tag"}, time.Minute, nil
		})
		if v != "value" {
			err = fmt.Errorf("value %q with %v", v, err)
		}
		errA <- err
	}()
	<-started
	start := time.Now()
	if v, err := b.GetOrSet(ctx(t), "k", func(ctx context.Context) (string, []string, time.Duration, error) {
		return "from b", nil, time.Minute, nil
	}); err != nil || v != "from b" {
		t.Fatalf("b: %q, %v", v, err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("b computed after %s: the unstorable result did not hand over", took)
	}
	err := <-errA
	t.Logf("a: %v", err)
	if !errors.Is(err, cache.ErrInvalidTag) {
		t.Errorf("a: %v; want the value with an ErrInvalidTag error", err)
	}
}

// TestStaleRefreshNotStoredAfterFlush: a background refresh (stale-while-
// revalidate) that straddles a flush of the entry's tag does not store
// its result: after the flush no read serves the old page, stale or not.
func TestStaleRefreshNotStoredAfterFlush(t *testing.T) {
	t.Parallel()
	s, _ := standalone(t)
	view := typedView(t, s.Addr(), "swr-flush", cache.LoadOptions{Grace: time.Minute})
	refreshing, flushed := make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	load := func(ctx context.Context) (string, []string, time.Duration, error) {
		if calls.Add(1) == 2 { // the background refresh
			close(refreshing)
			<-flushed
			return "page rendered before the purge", []string{"page_7"}, time.Hour, nil
		}
		return fmt.Sprintf("page %d", calls.Load()), []string{"page_7"}, 100 * time.Millisecond, nil
	}
	if _, err := view.GetOrSet(ctx(t), "p", load); err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond) // stale, within its grace
	if v, err := view.GetOrSet(ctx(t), "p", load); err != nil || v != "page 1" {
		t.Fatalf("stale read = %q, %v", v, err)
	}
	<-refreshing
	if _, err := view.Backend().FlushByTags(ctx(t), "page_7"); err != nil {
		t.Fatal(err)
	}
	close(flushed)
	time.Sleep(100 * time.Millisecond) // the refresh finishes and is refused
	if v, err := view.Get(ctx(t), "p"); !errors.Is(err, cache.ErrNotFound) {
		t.Fatalf("after the purge, Get = %q, %v; want ErrNotFound", v, err)
	}
	if v, err := view.GetOrSet(ctx(t), "p", load); err != nil || v != "page 3" {
		t.Fatalf("next read = %q, %v; want a fresh computation", v, err)
	}
}

// TestWaitersWakeUnderRacingPurges: twelve processes read three entries
// through GetOrSet (computations of 0–10 ms) while their tags are flushed
// every 0–5 ms, so computations keep starting anew. A waiter registers on
// the server in one round trip and blocks in the next: a wake-up pushed in
// between must not be lost when the next computation takes the lease, or
// the waiter sleeps through a whole lease (10 s here) although the value
// it waits for was stored milliseconds later.
func TestWaitersWakeUnderRacingPurges(t *testing.T) {
	t.Parallel()
	s, _ := standalone(t)
	const lease = 10 * time.Second
	var views []*cache.Typed[string]
	for range 12 {
		views = append(views, typedView(t, s.Addr(), "racing", cache.LoadOptions{Lease: lease}))
	}
	stop := time.Now().Add(4 * time.Second)
	var wg sync.WaitGroup
	wg.Go(func() {
		for time.Now().Before(stop) {
			if _, err := views[0].Backend().FlushByTags(ctx(t), "t0", "t1", "t2"); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(time.Duration(rand.IntN(5)) * time.Millisecond)
		}
	})
	var worst atomic.Int64
	var calls atomic.Int64
	for r := range 36 {
		wg.Go(func() {
			view := views[r%len(views)]
			for i := 0; time.Now().Before(stop); i++ {
				id := strconv.Itoa((r + i) % 3)
				start := time.Now()
				_, err := view.GetOrSet(ctx(t), "e"+id, func(ctx context.Context) (string, []string, time.Duration, error) {
					time.Sleep(time.Duration(rand.IntN(10)) * time.Millisecond)
					return "v" + id, []string{"t" + id}, time.Minute, nil
				})
				if err != nil {
					t.Error(err)
					return
				}
				calls.Add(1)
				if took := time.Since(start); took > time.Duration(worst.Load()) {
					worst.Store(int64(took))
				}
			}
		})
	}
	wg.Wait()
	took := time.Duration(worst.Load())
	t.Logf("%d GetOrSet calls under racing flushes; the slowest took %s (lease %s)", calls.Load(), took, lease)
	if took > 2*time.Second {
		t.Errorf("a GetOrSet took %s: a waiter slept through a lease instead of being woken by the write", took)
	}
}

// TestSlowComputationIsDoneOnce: a computation that takes five times the
// lease is done once across three processes: its caller renews the lease
// while it computes, and the others wait for its value.
func TestSlowComputationIsDoneOnce(t *testing.T) {
	t.Parallel()
	s, _ := standalone(t)
	var views []*cache.Typed[string]
	for range 3 {
		views = append(views, typedView(t, s.Addr(), "slow", cache.LoadOptions{Lease: 200 * time.Millisecond}))
	}
	var calls atomic.Int32
	var wg sync.WaitGroup
	for i := range 9 {
		wg.Go(func() {
			v, err := views[i%3].GetOrSet(ctx(t), "report", func(ctx context.Context) (string, []string, time.Duration, error) {
				calls.Add(1)
				time.Sleep(time.Second)
				return "done", nil, time.Minute, nil
			})
			if err != nil || v != "done" {
				t.Errorf("GetOrSet = %q, %v", v, err)
			}
		})
	}
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Errorf("%d computations of a 1 s value with a 200 ms lease; want 1", n)
	}
}
