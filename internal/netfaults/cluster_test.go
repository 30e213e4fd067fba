package netfaults_test

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

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/cache"
	"github.com/keyvalue-go/keyvalue/internal/netfaults"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/cachecheck"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/kvtest"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/servertest"
)

// TestClusterPrimaryCut: the primary serving a cache's slot is cut off
// from its peers, its replica and the clients (packets dropped, no
// connection closed, and it sends nothing); the cluster promotes the
// replica. Writes and
// flushes by tag fail while nobody serves the slot, then resume on the new
// primary, and the cache's promise holds throughout — an independent
// reader finds every live entry in every one of its tags' indexes.
func TestClusterPrimaryCut(t *testing.T) {
	if testing.Short() {
		t.Skip("a cluster failover takes several seconds")
	}
	proxies := map[string]*netfaults.Proxy{} // a node's address (client or bus port) -> its proxy
	var mu sync.Mutex
	cl := servertest.ClusterVia(t, 3, func(addr string) string {
		p := netfaults.New(t, addr)
		mu.Lock()
		proxies[addr] = p
		mu.Unlock()
		return p.Addr()
	})
	c := kvtest.Open(t, keyvalue.Config{Mode: keyvalue.ModeCluster, Addrs: cl.Seeds(), IOTimeout: ioTimeout,
		DialTimeout: dialTimeout, HealthCheckInterval: healthCheck})
	b := mustCache(t, c, "clcut", cache.Options{BatchSize: 50})
	ctx := context.Background()

	// The primary that serves the cache's slot.
	slotS, err := cl.Primaries[0].Do("CLUSTER", "KEYSLOT", b.Prefix()+"x")
	must(t, err)
	slot, _ := strconv.Atoi(slotS)
	var victim *servertest.Server
	for _, n := range cl.Primaries {
		nodes, err := n.Do("CLUSTER", "NODES")
		must(t, err)
		for line := range strings.SplitSeq(nodes, "\n") {
			if f := strings.Fields(line); len(f) > 8 && strings.Contains(f[2], "myself") && slotIn(f[8:], slot) {
				victim = n
			}
		}
	}
	if victim == nil {
		t.Fatalf("no primary serves slot %d", slot)
	}

	var writes, failures atomic.Int64
	var lastFailure atomic.Int64
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
				id := fmt.Sprintf("e%d-%d", w, i%200)
				var err error
				if i%25 == 24 {
					_, err = b.FlushByTags(ctx, "t"+strconv.Itoa(i%7))
				} else {
					err = b.Set(ctx, id, []byte("v"), []string{"t" + strconv.Itoa(i%7), "w" + strconv.Itoa(w)}, time.Hour)
				}
				if err != nil {
					failures.Add(1)
					lastFailure.Store(time.Now().UnixNano())
					time.Sleep(50 * time.Millisecond)
					continue
				}
				writes.Add(1)
			}
		})
	}
	time.Sleep(time.Second)
	before := writes.Load()
	// Everything the victim receives is dropped (its client and bus
	// proxies); what it sends would still reach its peers through theirs
	// (Redis keeps a node that talks on its own links from being marked
	// failing), so it is also stopped (SIGSTOP): a full partition of one
	// node, as its clients and peers see it.
	var heals []func()
	for _, addr := range []string{victim.Addr(), "127.0.0.1:" + strconv.Itoa(victim.Port()+10000)} {
		heals = append(heals, proxies[addr].Cut())
	}
	must(t, victim.Freeze())
	heals = append(heals, func() { _ = victim.Thaw() })
	cutAt := time.Now()
	servertest.WaitFor(t, 30*time.Second, "the victim's replica promoted", func() error {
		for _, n := range cl.Primaries {
			if n == victim {
				continue
			}
			nodes, err := n.Do("CLUSTER", "NODES")
			if err != nil {
				return err
			}
			for line := range strings.SplitSeq(nodes, "\n") {
				f := strings.Fields(line)
				if len(f) > 8 && strings.Contains(f[2], "master") && !strings.Contains(f[2], "fail") && slotIn(f[8:], slot) {
					if strings.HasPrefix(f[1], cl.Announced[victim.Addr()]) {
						return errors.New("the victim still serves the slot")
					}
					return nil
				}
			}
		}
		return errors.New("no primary serves the slot")
	})
	promoted := time.Since(cutAt)
	// Writes resume on the new primary.
	resumed := writes.Load()
	servertest.WaitFor(t, 30*time.Second, "writes resumed", func() error {
		if writes.Load() < resumed+50 {
			return errors.New("not yet")
		}
		return nil
	})
	close(stop)
	wg.Wait()
	since := time.Duration(0)
	if lf := lastFailure.Load(); lf > 0 {
		since = time.Unix(0, lf).Sub(cutAt)
	}
	t.Logf("%d writes before the cut; the replica was promoted %s after it; the last failed write ended %s after it; %d writes, %d failures in all",
		before, promoted.Round(time.Millisecond), since.Round(time.Millisecond), writes.Load(), failures.Load())
	cachecheck.Check(t, c, cachecheck.Standalone("clcut"), "after the primary was cut off and its replica promoted")
	for _, heal := range heals {
		heal()
	}
}

// slotIn reports whether a CLUSTER NODES slot list ("0-5460", "5461") holds slot.
func slotIn(ranges []string, slot int) bool {
	for _, r := range ranges {
		lo, hi, found := strings.Cut(r, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			continue
		}
		b := a
		if found {
			b, _ = strconv.Atoi(hi)
		}
		if slot >= a && slot <= b {
			return true
		}
	}
	return false
}
