package netfaults_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/cache"
	"github.com/keyvalue-go/keyvalue/internal/netfaults"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/servertest"
)

// TestSlowLinks: latency spikes of 500 ms each way and a bandwidth cap
// while eight goroutines read and write. Every call returns within its
// bound (a spike longer than io_timeout makes calls fail, never hang),
// everything works again once the link is fast, and no goroutine is left
// behind.
func TestSlowLinks(t *testing.T) {
	s := servertest.Standalone(t)
	p := netfaults.New(t, s.Addr())
	defer verifyNoLeaks(t)()
	c, err := keyvalue.Open(cutConfig(p))
	must(t, err)
	defer c.Close()
	b := mustCache(t, c, "slow", cache.Options{})
	ctx := context.Background()
	must(t, b.Set(ctx, "k", []byte("v"), []string{"t"}, time.Hour))

	var ok, failed atomic.Int64
	var worst atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				var err error
				if i%2 == 0 {
					_, err = b.Get(ctx, "k")
				} else {
					err = b.Set(ctx, "k", []byte("v"), []string{"t", "w" + string(rune('0'+w))}, time.Hour)
				}
				if took := time.Since(start); int64(took) > worst.Load() {
					worst.Store(int64(took))
				}
				if err != nil {
					failed.Add(1)
					time.Sleep(20 * time.Millisecond)
					continue
				}
				ok.Add(1)
			}
		})
	}
	for range 2 { // spikes: a round trip costs a whole second for a while
		time.Sleep(500 * time.Millisecond)
		undo := p.Latency(500*time.Millisecond, 0)
		time.Sleep(1500 * time.Millisecond)
		undo()
	}
	time.Sleep(300 * time.Millisecond)
	undo := p.Bandwidth(2) // 2 KB/s each way: every reply crawls
	time.Sleep(2 * time.Second)
	undo()
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	t.Logf("%d calls succeeded, %d failed; the slowest took %s (bound %s)", ok.Load(), failed.Load(), time.Duration(worst.Load()).Round(time.Millisecond), 2*ioTimeout+dialTimeout)
	if took := time.Duration(worst.Load()); took > 2*ioTimeout+dialTimeout+slack {
		t.Errorf("a call took %s on a slow link", took)
	}
	// Fast again: everything works.
	if v, err := b.Get(ctx, "k"); err != nil || string(v) != "v" {
		t.Errorf("Get after the link recovered = %q, %v", v, err)
	}
	if n, err := b.FlushByTags(ctx, "t"); err != nil || n != 1 {
		t.Errorf("FlushByTags after the link recovered = %d, %v", n, err)
	}
	c.Close()
	time.Sleep(ioTimeout + slack)
}

// TestDegradedBreakerUnderACut: a degraded cache whose network is cut
// serves misses; after BreakerThreshold failures its breaker opens and
// reads are misses at once (no io_timeout each); after the cut heals and
// the cooldown passes, one probe closes the breaker and reads hit again.
func TestDegradedBreakerUnderACut(t *testing.T) {
	s := servertest.Standalone(t)
	p := netfaults.New(t, s.Addr())
	defer verifyNoLeaks(t)()
	c, err := keyvalue.Open(cutConfig(p))
	must(t, err)
	defer c.Close()
	const cooldown = 2 * time.Second
	b := mustCache(t, c, "degraded", cache.Options{Degraded: true, BreakerThreshold: 3, BreakerCooldown: cooldown})
	ctx := context.Background()
	must(t, b.Set(ctx, "k", []byte("v"), nil, time.Hour))

	heal := p.Cut()
	var slow, fast int
	for i := range 8 {
		var err error
		took := timed(func() { _, err = b.Get(ctx, "k") })
		if !errors.Is(err, cache.ErrNotFound) {
			t.Fatalf("degraded Get %d during the cut = %v; want a miss", i, err)
		}
		if took > ioTimeout/2 {
			slow++
		} else {
			fast++
		}
		t.Logf("Get %d during the cut: %s, %v", i, took.Round(time.Millisecond), errors.Is(err, cache.ErrUnavailable))
	}
	if slow > 3 || fast < 5 {
		t.Errorf("%d slow and %d fast misses; want the breaker open after 3 failures", slow, fast)
	}
	heal()
	time.Sleep(cooldown + 200*time.Millisecond)
	deadline := time.Now().Add(5 * time.Second)
	for {
		v, err := b.Get(ctx, "k")
		if err == nil && string(v) == "v" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Get after the cut healed and the cooldown passed = %q, %v", v, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.Close()
	time.Sleep(ioTimeout + slack)
}
