package lock_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keyvalue-go/keyvalue/internal/testsupport/servertest"
	"github.com/keyvalue-go/keyvalue/lock"
)

// hold is one exclusive lease as the holder saw it: from Lock returning to
// its Context ending (Unlock cancels it first; a lost lease earlier).
type hold struct {
	client     int
	token      int64
	start, end time.Time
}

// TestHistoryUnderFaults checks histories, not single cases: clients take
// the lock, write to a fenced resource and release, while the harness kills
// every client connection again and again and freezes the server. Every
// hold is recorded with its start and end; the checker then verifies that
// no two holds overlap while both leases' Contexts are live, and that the
// resource accepted tokens in strictly increasing order only.
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
		holds    []hold
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
					h := hold{client: c, token: lease.Token(), start: time.Now()}
					var ended time.Time
					var endMu sync.Mutex
					stopAfter := context.AfterFunc(lease.Context(), func() {
						endMu.Lock()
						ended = time.Now()
						endMu.Unlock()
					})
					mu.Lock()
					if n := len(accepted); n == 0 || h.token > accepted[n-1] {
						accepted = append(accepted, h.token)
					} else {
						rejected++ // the resource turns a stale token away
					}
					mu.Unlock()
					time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
					_ = lease.Unlock(context.Background())
					<-lease.Context().Done()
					stopAfter()
					endMu.Lock()
					h.end = ended
					endMu.Unlock()
					if h.end.IsZero() {
						h.end = time.Now()
					}
					mu.Lock()
					holds = append(holds, h)
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	close(stop)
	<-faults
	_ = s.Thaw()

	slices.SortFunc(holds, func(a, b hold) int { return a.start.Compare(b.start) })
	overlaps := 0
	for i := range holds {
		for j := i + 1; j < len(holds) && holds[j].start.Before(holds[i].end); j++ {
			overlaps++
			if overlaps <= 3 {
				t.Errorf("holds overlap while both leases were live: token %d (client %d) %s–%s and token %d (client %d) from %s",
					holds[i].token, holds[i].client, holds[i].start.Format("15:04:05.000000"), holds[i].end.Format("15:04:05.000000"),
					holds[j].token, holds[j].client, holds[j].start.Format("15:04:05.000000"))
			}
		}
	}
	for i := 1; i < len(accepted); i++ {
		if accepted[i] <= accepted[i-1] {
			t.Errorf("the fenced resource accepted token %d after %d", accepted[i], accepted[i-1])
		}
	}
	t.Logf("1 history, %d holds checked (%d lock calls failed under faults, %d stale tokens turned away by the resource): %d overlaps",
		len(holds), failures, rejected, overlaps)
	if len(holds) < clients*workers {
		t.Errorf("only %d holds: the faults left too little to check", len(holds))
	}
}
