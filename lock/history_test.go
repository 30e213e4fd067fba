package lock_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/keyvalue-go/keyvalue/internal/testsupport/servertest"
	"github.com/keyvalue-go/keyvalue/lock"
)

// TestHistoryUnderFaults checks histories, not single cases: clients take
// the lock, write to a fenced resource and release, while the harness kills
// every client connection again and again and freezes the server. Every
// time a Lock returns, the checker looks at every other hold not yet
// released: if one's Context is still live, two holds overlap while both
// leases are live (the promise is that a holder's Context ends before the
// next holder starts). The resource must accept tokens in strictly
// increasing order only.
func TestHistoryUnderFaults(t *testing.T) {
	t.Parallel()
	s := servertest.Standalone(t)
	const clients, workers = 3, 3
	rounds := 25
	if raceBuild {
		rounds = 12
	}
	var (
		mu       sync.Mutex
		active   = map[*lock.Lease]int{} // holds not yet released -> client
		holds    int
		overlaps int
		accepted []int64 // the fenced resource's log
		rejected int
		failures int
	)
	stop := make(chan struct{})
	faults := make(chan struct{})
	go func() { // the fault injector
		defer close(faults)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(80 * time.Millisecond):
			}
			if i%5 == 4 {
				_ = s.Freeze()
				time.Sleep(150 * time.Millisecond)
				_ = s.Thaw()
				continue
			}
			_, _ = s.Do("CLIENT", "KILL", "TYPE", "normal")
		}
	}()
	var wg sync.WaitGroup
	for c := range clients {
		l := lock.New(connect(t, s, fmt.Sprintf("h%d", c)), lock.Options{TTL: 400 * time.Millisecond, CheckInterval: 50 * time.Millisecond, Logger: quiet})
		m := mutex(t, l, "history")
		for range workers {
			wg.Go(func() {
				for range rounds {
					ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
					lease, err := m.Lock(ctx)
					cancel()
					if err != nil {
						mu.Lock()
						failures++
						mu.Unlock()
						continue
					}
					mu.Lock()
					for other, oc := range active {
						if other.Context().Err() == nil {
							overlaps++
							if overlaps <= 3 {
								t.Errorf("client %d got token %d while client %d's lease (token %d) was still live", c, lease.Token(), oc, other.Token())
							}
						}
					}
					active[lease] = c
					holds++
					if n := len(accepted); n == 0 || lease.Token() > accepted[n-1] {
						accepted = append(accepted, lease.Token())
					} else {
						rejected++ // the resource turns a stale token away
					}
					mu.Unlock()
					time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
					_ = lease.Unlock(context.Background())
					mu.Lock()
					delete(active, lease)
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	close(stop)
	<-faults
	_ = s.Thaw()

	for i := 1; i < len(accepted); i++ {
		if accepted[i] <= accepted[i-1] {
			t.Errorf("the fenced resource accepted token %d after %d", accepted[i], accepted[i-1])
		}
	}
	t.Logf("1 history, %d holds checked (%d lock calls failed under faults, %d stale tokens turned away by the resource): %d overlaps",
		holds, failures, rejected, overlaps)
	if holds < clients*workers {
		t.Errorf("only %d holds: the faults left too little to check", holds)
	}
}
