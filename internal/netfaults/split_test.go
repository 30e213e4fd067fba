package netfaults_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/internal/netfaults"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/kvtest"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/servertest"
	"github.com/keyvalue-go/keyvalue/lock"
	"github.com/keyvalue-go/keyvalue/session"
)

// TestSentinelSplit: the primary and one client (A, connected to it
// directly) are cut off from the sentinels, the replica and the other
// client (B, which follows the sentinels); the sentinels promote the
// replica, B moves to it, A keeps talking to the old primary; then the
// network heals and the old primary becomes a replica of the new one,
// losing what it took during the split.
//
// With Options.WaitReplicas 1, a session write is reported stored only
// when a replica acknowledged it: every write either process was told was
// stored must be on the final primary. A lock needs the same
// acknowledgement, so no two holds (one on each side) are live at once.
func TestSentinelSplit(t *testing.T) {
	if testing.Short() {
		t.Skip("failover takes several seconds")
	}
	var toPrimary *netfaults.Proxy // what the sentinels and the replica use
	set := servertest.SentinelVia(t, func(addr string) string {
		toPrimary = netfaults.New(t, addr)
		return toPrimary.Addr()
	})
	direct := netfaults.New(t, set.Primary.Addr()) // client A's own way to the primary
	ctx := context.Background()
	key := make([]byte, 32)
	copy(key, "split-test-session-key-012345678")

	a := kvtest.Open(t, keyvalue.Config{Addrs: []string{direct.Addr()}, IOTimeout: ioTimeout})
	b := kvtest.Open(t, keyvalue.Config{Mode: keyvalue.ModeSentinel, Addrs: set.SentinelAddrs(), IOTimeout: ioTimeout,
		Sentinel: keyvalue.SentinelConfig{Master: set.Master, RefreshInterval: 300 * time.Millisecond}})
	stores := map[string]*session.Store{}
	var mutexes []*lock.Mutex
	for name, c := range map[string]*keyvalue.Client{"A": a, "B": b} {
		st, err := session.New(c, session.Options{Prefix: "split", Key: key, WaitReplicas: 1, WaitTimeout: 200 * time.Millisecond})
		must(t, err)
		stores[name] = st
		m, err := lock.New(c, lock.Options{TTL: 2 * time.Second, WaitReplicas: 1, WaitTimeout: 200 * time.Millisecond, Logger: kvtest.Quiet}).Mutex("split")
		must(t, err)
		mutexes = append(mutexes, m)
	}

	var (
		mu       sync.Mutex
		acked    = map[string]string{} // session id -> the process told it was stored
		refused  int
		holding  = map[int]*lock.Lease{}
		overlaps int
		holds    int
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for name, st := range stores {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
				rec, err := st.Create(wctx, session.Record{UserID: fmt.Sprintf("%s-%d", name, i)})
				cancel()
				mu.Lock()
				switch {
				case err == nil:
					acked[rec.ID] = name
				case errors.Is(err, session.ErrNotReplicated):
					refused++
				}
				mu.Unlock()
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
	for i, m := range mutexes {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				lctx, cancel := context.WithTimeout(ctx, 3*time.Second)
				lease, err := m.Lock(lctx)
				cancel()
				if err != nil {
					time.Sleep(20 * time.Millisecond)
					continue
				}
				mu.Lock()
				holds++
				for j, other := range holding {
					if j != i && other.Context().Err() == nil {
						overlaps++
					}
				}
				holding[i] = lease
				mu.Unlock()
				time.Sleep(30 * time.Millisecond)
				mu.Lock()
				delete(holding, i)
				mu.Unlock()
				uctx, ucancel := context.WithTimeout(ctx, 3*time.Second)
				_ = lease.Unlock(uctx)
				ucancel()
			}
		})
	}

	time.Sleep(time.Second)
	old := set.Primary.Addr()
	heal := toPrimary.Cut()
	var promoted string
	servertest.WaitFor(t, 30*time.Second, "the sentinels promote the replica", func() error {
		addr, err := set.MasterAddr()
		if err != nil {
			return err
		}
		if addr == toPrimary.Addr() {
			return errors.New("master unchanged")
		}
		promoted = addr
		return nil
	})
	time.Sleep(3 * time.Second) // both sides run
	heal()
	servertest.WaitFor(t, 30*time.Second, "the old primary rejoins as a replica", func() error {
		r, err := set.Primary.Do("ROLE")
		if err != nil {
			return err
		}
		if len(r) < 5 || r[:5] != "slave" {
			return fmt.Errorf("role %q", r[:min(len(r), 10)])
		}
		return nil
	})
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()

	// Every acknowledged write is on the final primary.
	final := kvtest.Open(t, keyvalue.Config{Mode: keyvalue.ModeSentinel, Addrs: set.SentinelAddrs(),
		Sentinel: keyvalue.SentinelConfig{Master: set.Master}})
	check, err := session.New(final, session.Options{Prefix: "split", Key: key})
	must(t, err)
	lost := 0
	for id, who := range acked {
		if _, err := check.Get(ctx, id); err != nil {
			lost++
			if lost <= 3 {
				t.Errorf("a session %s was told was stored is gone: %v", who, err)
			}
		}
	}
	t.Logf("split: %s promoted in place of %s; %d acknowledged writes (all checked), %d refused as not replicated; %d lock holds, %d overlapping",
		promoted, old, len(acked), refused, holds, overlaps)
	if lost > 0 {
		t.Errorf("%d of %d acknowledged writes were lost", lost, len(acked))
	}
	if overlaps > 0 {
		t.Errorf("%d lock holds began while a hold on the other side was live", overlaps)
	}
}
