package netfaults_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/cache"
	"github.com/keyvalue-go/keyvalue/internal/netfaults"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/kvtest"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/servertest"
	"github.com/keyvalue-go/keyvalue/lock"
	"go.uber.org/goleak"
)

// The timeouts of the clients that go through a cut: short, so that the
// bounds they imply are short.
const (
	ioTimeout   = time.Second
	dialTimeout = 2 * time.Second
	healthCheck = 500 * time.Millisecond
	slack       = 600 * time.Millisecond // scheduling and the proxy's own delay, on two busy cores
)

// cutConfig is a client through proxy p with the short timeouts.
func cutConfig(p *netfaults.Proxy) keyvalue.Config {
	return keyvalue.Config{Addrs: []string{p.Addr()}, IOTimeout: ioTimeout, DialTimeout: dialTimeout,
		HealthCheckInterval: healthCheck, Logger: kvtest.Quiet}
}

// timed runs f and returns how long it took.
func timed(f func()) time.Duration {
	start := time.Now()
	f()
	return time.Since(start)
}

// checkUnreachable checks that err says the server could not be reached.
func checkUnreachable(t *testing.T, what string, err error) {
	t.Helper()
	var ce *keyvalue.ConnectError
	if !errors.Is(err, keyvalue.ErrUnreachable) || !errors.As(err, &ce) || !strings.Contains(err.Error(), "no answer from") {
		t.Errorf("%s: %v; want a *ConnectError matching ErrUnreachable that says there was no answer", what, err)
	}
}

// TestCutNetworkBounds: the network between a client and its server stops
// forwarding bytes (a partition that drops packets; no connection is
// closed). Every call returns within the bound its timeouts give, with an
// error that says the server could not be reached; the local read cache
// stops serving the copy it can no longer hear invalidations for within
// health_check_interval + io_timeout; a Lock blocked in its wait ends at
// once when the client is closed; and no goroutine outlives the clients.
func TestCutNetworkBounds(t *testing.T) {
	s := servertest.Standalone(t)
	p := netfaults.New(t, s.Addr())
	defer verifyNoLeaks(t)()
	ctx := context.Background()
	c, err := keyvalue.Open(cutConfig(p))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	other, err := keyvalue.Open(keyvalue.Config{Addrs: []string{s.Addr()}, Logger: kvtest.Quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	b := mustCache(t, c, "cut", cache.Options{})
	local := mustCache(t, c, "cutl", cache.Options{LocalCacheTTL: time.Minute})
	otherLocal := mustCache(t, other, "cutl", cache.Options{})
	must(t, b.Set(ctx, "k", []byte("v"), nil, time.Hour))
	must(t, local.Set(ctx, "k", []byte("old"), nil, time.Hour))
	for range 3 { // the local copy is in place
		if v, err := local.Get(ctx, "k"); err != nil || string(v) != "old" {
			t.Fatalf("Get = %q, %v", v, err)
		}
	}
	m := mustMutex(t, c, "cut")
	holder, err := mustMutex(t, other, "cut").Lock(ctx)
	must(t, err)
	waiting := make(chan error, 1)
	go func() { _, err := m.Lock(ctx); waiting <- err }()
	time.Sleep(200 * time.Millisecond) // blocked in its wait

	heal := p.Cut()
	cutAt := time.Now()
	must(t, otherLocal.Set(ctx, "k", []byte("new"), nil, time.Hour))

	// The local copy: served until the connection is found dead.
	lastStale := cutAt
	for time.Since(cutAt) < 10*time.Second {
		v, err := local.Get(ctx, "k")
		if err == nil && string(v) == "old" {
			lastStale = time.Now()
			time.Sleep(20 * time.Millisecond)
			continue
		}
		checkUnreachable(t, "Get of a locally cached entry after the cut", err)
		break
	}
	stale := lastStale.Sub(cutAt)
	t.Logf("the local read cache served the replaced value for %s after the cut (bound: health_check_interval %s + io_timeout %s)", stale.Round(time.Millisecond), healthCheck, ioTimeout)
	if stale > healthCheck+ioTimeout+slack {
		t.Errorf("the local read cache served a value it could not hear invalidations for %s after the cut", stale)
	}

	for _, tc := range []struct {
		what  string
		bound time.Duration
		call  func() error
	}{
		{"Set (a write: one try)", ioTimeout, func() error { return b.Set(ctx, "k", []byte("x"), nil, time.Hour) }},
		{"Get (a read: tried once more on a new connection)", 2*ioTimeout + dialTimeout, func() error { _, err := b.Get(ctx, "k"); return err }},
		{"Get through the local read cache, not cached", 2*ioTimeout + dialTimeout, func() error { _, err := local.Get(ctx, "other"); return err }},
		{"TryLock (the script, then leaving the queue)", 2 * ioTimeout, func() error { _, err := mustMutex(t, c, "cut2").TryLock(ctx); return err }},
		{"FlushByTags", 2*ioTimeout + dialTimeout, func() error { _, err := b.FlushByTags(ctx, "t"); return err }},
	} {
		var err error
		took := timed(func() { err = tc.call() })
		t.Logf("%s: %s: %v", tc.what, took.Round(time.Millisecond), err)
		checkUnreachable(t, tc.what, err)
		if took > tc.bound+slack {
			t.Errorf("%s took %s; the bound is %s", tc.what, took, tc.bound)
		}
	}

	closed := time.Now()
	c.Close()
	select {
	case err := <-waiting:
		// At once when it is blocked in its wait; within io_timeout when it
		// is renewing its place in the queue then.
		t.Logf("the waiting Lock returned %s after Close: %v", time.Since(closed).Round(time.Millisecond), err)
		if !errors.Is(err, keyvalue.ErrClosed) {
			t.Errorf("the waiting Lock = %v; want ErrClosed", err)
		}
		if d := time.Since(closed); d > ioTimeout+slack {
			t.Errorf("the waiting Lock returned %s after Close", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting Lock did not return after Close")
	}
	heal()
	must(t, holder.Unlock(ctx))
	other.Close()
	// valkey-go's connections through the cut end within io_timeout after
	// Close (Close itself returns within a second).
	time.Sleep(ioTimeout + slack)
}

// TestCutLockHolder: a holder whose network is cut while it holds the
// lock stops (its Context ends) before any other process acquires it:
// with the watchdog (its refreshes cannot reach the server) and without
// (its local timer). Every acquisition writes to a fenced resource, which
// must accept tokens in increasing order only.
func TestCutLockHolder(t *testing.T) {
	s := servertest.Standalone(t)
	defer verifyNoLeaks(t)()
	for _, watchdog := range []bool{false, true} {
		const ttl = 2 * time.Second
		type proc struct {
			p *netfaults.Proxy
			c *keyvalue.Client
			m *lock.Mutex
		}
		var procs []proc
		for range 3 {
			p := netfaults.New(t, s.Addr())
			c, err := keyvalue.Open(cutConfig(p))
			must(t, err)
			defer c.Close()
			l := lock.New(c, lock.Options{TTL: ttl, Watchdog: watchdog, Logger: kvtest.Quiet})
			m, err := l.Mutex("held")
			must(t, err)
			procs = append(procs, proc{p, c, m})
		}
		var mu sync.Mutex
		var lastFence int64
		fenced := func(token int64) bool { // the protected resource
			mu.Lock()
			defer mu.Unlock()
			if token <= lastFence {
				return false
			}
			lastFence = token
			return true
		}
		for round := range 3 {
			ctx := context.Background()
			holder, err := procs[0].m.Lock(ctx)
			must(t, err)
			if !fenced(holder.Token()) {
				t.Fatal("the resource refused the first holder")
			}
			ended := make(chan time.Time, 1)
			go func() { <-holder.Context().Done(); ended <- time.Now() }()
			heal := procs[0].p.Cut()
			cutAt := time.Now()
			lctx, cancel := context.WithTimeout(ctx, 2*ttl+5*time.Second)
			next, err := procs[1+round%2].m.Lock(lctx)
			cancel()
			acquiredAt := time.Now()
			must(t, err)
			select {
			case endedAt := <-ended:
				t.Logf("watchdog %v: the cut holder's Context ended %s after the cut, %s before the next holder's Lock returned (%v)",
					watchdog, endedAt.Sub(cutAt).Round(time.Millisecond), acquiredAt.Sub(endedAt).Round(time.Millisecond), context.Cause(holder.Context()))
			case <-time.After(100 * time.Millisecond):
				t.Errorf("watchdog %v: another process acquired while the cut holder's Context was live", watchdog)
			}
			if fenced(holder.Token()) {
				t.Errorf("the resource accepted the old holder's token after the new one's")
			}
			if !fenced(next.Token()) {
				t.Errorf("the resource refused the new holder")
			}
			must(t, next.Unlock(ctx))
			heal()
			_ = holder.Unlock(ctx) // ErrNotHeld: it was lost
		}
		for _, pr := range procs {
			pr.c.Close()
		}
	}
	time.Sleep(ioTimeout + slack)
}

// verifyNoLeaks returns a check, to defer, that no goroutine started since
// it was called outlives the test's clients (the harness's proxies and
// server processes run until the test's cleanup, after the check).
func verifyNoLeaks(t *testing.T) func() {
	opts := []goleak.Option{goleak.IgnoreCurrent(),
		goleak.IgnoreAnyFunction("github.com/Shopify/toxiproxy/v2.(*Proxy).server"),
		goleak.IgnoreAnyFunction("github.com/Shopify/toxiproxy/v2.(*Proxy).freeBlocker"),
		goleak.IgnoreAnyFunction("github.com/Shopify/toxiproxy/v2.(*ToxicLink).read"),
		goleak.IgnoreAnyFunction("github.com/Shopify/toxiproxy/v2.(*ToxicLink).write"),
		goleak.IgnoreAnyFunction("github.com/Shopify/toxiproxy/v2/toxics.(*TimeoutToxic).Pipe"),
		goleak.IgnoreAnyFunction("github.com/Shopify/toxiproxy/v2/toxics.(*LatencyToxic).Pipe"),
		goleak.IgnoreAnyFunction("github.com/Shopify/toxiproxy/v2/toxics.(*BandwidthToxic).Pipe"),
		goleak.IgnoreAnyFunction("github.com/Shopify/toxiproxy/v2/toxics.(*NoopToxic).Pipe"),
		goleak.IgnoreAnyFunction("github.com/Shopify/toxiproxy/v2.(*ToxicCollection).StartLink.func1"),
		goleak.IgnoreAnyFunction("github.com/Shopify/toxiproxy/v2/stream.(*ChanReader).Read"),
	}
	return func() { goleak.VerifyNone(t, opts...) }
}

func mustCache(t *testing.T, c *keyvalue.Client, name string, o cache.Options) *cache.Backend {
	t.Helper()
	o.Logger = kvtest.Quiet
	b, err := cache.New(c, name, o)
	must(t, err)
	return b
}

func mustMutex(t *testing.T, c *keyvalue.Client, name string) *lock.Mutex {
	t.Helper()
	m, err := lock.New(c, lock.Options{Logger: kvtest.Quiet}).Mutex(name)
	must(t, err)
	return m
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
