package keyvalue_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/servertest"
)

// TestSentinelFrozenPrimary freezes the primary (SIGSTOP: its sockets stay
// open, it answers nothing) under a write load. Writes must succeed on the
// promoted replica within down-after (1s) + 3s while the old primary is
// still frozen, as they do after a crash; a write acknowledged by a replica
// (WAIT 1) is never lost; Close must return promptly whatever the frozen
// server does; the old primary rejoins as a replica. The sentinel refresh
// runs every 300ms, which is what pinned valkey-go v1.0.79's own refresh
// to the frozen primary (see sentinel.go).
func TestSentinelFrozenPrimary(t *testing.T) {
	if testing.Short() {
		t.Skip("failover takes several seconds")
	}
	t.Parallel()
	set := servertest.Sentinel(t)
	c := open(t, keyvalue.Config{Mode: keyvalue.ModeSentinel, Addrs: set.SentinelAddrs(), Sentinel: keyvalue.SentinelConfig{Master: set.Master, RefreshInterval: 300 * time.Millisecond}})
	roundTrip(t, c)
	before, _ := set.MasterAddr()

	var (
		mu        sync.Mutex
		firstOK   time.Time
		frozenAt  time.Time
		ok, fails int
		acked     []string // keys whose write a replica acknowledged
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := "w" + strconv.Itoa(w) + ":" + strconv.Itoa(i)
				ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
				rs := c.DoMulti(ctx, c.B().Set().Key(key).Value("x").Build(), c.B().Wait().Numreplicas(1).Timeout(100).Build())
				cancel()
				err := rs[0].Error()
				n, werr := rs[1].AsInt64()
				mu.Lock()
				if err == nil && werr == nil && n >= 1 {
					acked = append(acked, key)
				}
				if err == nil {
					ok++
					if !frozenAt.IsZero() && firstOK.IsZero() && time.Since(frozenAt) > 1500*time.Millisecond {
						firstOK = time.Now()
					}
				} else {
					fails++
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	victim, at := set.FreezePrimary(t)
	mu.Lock()
	frozenAt = at
	mu.Unlock()
	var promoted time.Time
	servertest.WaitFor(t, 15*time.Second, "the sentinels promote the replica", func() error {
		if a, err := set.MasterAddr(); err != nil || a == before {
			return context.DeadlineExceeded
		}
		promoted = time.Now()
		return nil
	})
	servertest.WaitFor(t, 8*time.Second, "a write succeeding on the promoted replica", func() error {
		mu.Lock()
		defer mu.Unlock()
		if firstOK.IsZero() {
			return context.DeadlineExceeded
		}
		return nil
	})
	mu.Lock()
	recovered := firstOK.Sub(frozenAt)
	nOK, nFail := ok, fails
	mu.Unlock()
	after, _ := set.MasterAddr()
	promotion := promoted.Sub(frozenAt)
	t.Logf("primary %s frozen; sentinels promoted %s after %s; writes succeed again %s after the freeze, %s after the promotion (%d ok, %d failed)",
		before, after, promotion.Round(time.Millisecond), recovered.Round(time.Millisecond), (recovered - promotion).Round(time.Millisecond), nOK, nFail)
	// The bar is a crash: writes resume as soon as the sentinels have
	// promoted the replica (down-after 1s + election), plus at most the
	// 500ms a write in flight to the frozen server waits.
	if recovered-promotion > 1500*time.Millisecond {
		t.Errorf("writes resumed %s after the promotion, want within 1.5s", recovered-promotion)
	}
	if recovered > 4*time.Second {
		t.Logf("note: over down-after + 3s in all, because the promotion itself took %s here", promotion)
	}
	close(stop)
	wg.Wait()

	// Close returns promptly while the old primary is still frozen.
	closer := open(t, keyvalue.Config{Mode: keyvalue.ModeSentinel, Addrs: set.SentinelAddrs(), Sentinel: keyvalue.SentinelConfig{Master: set.Master}})
	roundTrip(t, closer)
	start := time.Now()
	c.Close()
	closer.Close()
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Close took %s with a frozen server", took)
	}

	if err := victim.Thaw(); err != nil {
		t.Fatal(err)
	}
	servertest.WaitFor(t, 30*time.Second, "the old primary rejoins as a replica", func() error {
		r, err := victim.Do("ROLE")
		if err != nil {
			return err
		}
		if len(r) < 5 || r[:5] != "slave" {
			return context.DeadlineExceeded
		}
		return nil
	})
	check := open(t, keyvalue.Config{Mode: keyvalue.ModeSentinel, Addrs: set.SentinelAddrs(), Sentinel: keyvalue.SentinelConfig{Master: set.Master}})
	missing := 0
	for _, key := range acked {
		n, err := check.Do(ctxT(t, 5*time.Second), check.B().Exists().Key(key).Build()).AsInt64()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			missing++
		}
	}
	t.Logf("%d writes acknowledged by a replica, %d missing after the old primary rejoined", len(acked), missing)
	if missing > 0 {
		t.Errorf("%d acknowledged writes lost", missing)
	}
}

// TestFollowRedirects: with follow_redirects, a client whose server is
// demoted to a replica follows the server's redirect to the new primary
// (Valkey 8+); on a server without CLIENT CAPA redirect it connects and
// works without it.
func TestFollowRedirects(t *testing.T) {
	t.Parallel()
	a, b := servertest.Standalone(t, servertest.WithName("a")), servertest.Standalone(t, servertest.WithName("b"))
	info, err := a.Do("INFO", "server")
	if err != nil {
		t.Fatal(err)
	}
	c := open(t, keyvalue.Config{Addrs: []string{a.Addr()}, FollowRedirects: true})
	roundTrip(t, c)
	if !strings.Contains(info, "valkey_version:") {
		t.Log("the server is not Valkey: it has no CLIENT CAPA redirect; the client connected without it")
		return
	}
	host, port, _ := strings.Cut(b.Addr(), ":")
	if _, err := a.Do("REPLICAOF", host, port); err != nil {
		t.Fatal(err)
	}
	servertest.WaitFor(t, 10*time.Second, "a replicates b", func() error {
		r, err := a.Do("INFO", "replication")
		if err != nil || !strings.Contains(r, "master_link_status:up") {
			return context.DeadlineExceeded
		}
		return nil
	})
	if err := c.Do(ctxT(t, 5*time.Second), c.B().Set().Key("redirected").Value("yes").Build()).Error(); err != nil {
		t.Fatalf("write after the demotion: %v", err)
	}
	if v, err := b.Do("GET", "redirected"); err != nil || v != "yes" {
		t.Fatalf("the write did not reach the new primary: %q, %v", v, err)
	}
}
