package lock_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/internal/naive"
	"github.com/keyvalue-go/keyvalue/internal/servertest"
	"github.com/keyvalue-go/keyvalue/lock"
)

// Benchmarks compare keyvalue's lock with the usual polling lock
// (internal/naive: SET NX PX + sleep 10ms + retry) on one real server.
// Peers (redislock, redsync, valkeylock) are compared in bench/.

type locker interface {
	lock(ctx context.Context) (unlock func() error, err error)
}

type kvLocker struct{ m *lock.Mutex }

func (k kvLocker) lock(ctx context.Context) (func() error, error) {
	l, err := k.m.Lock(ctx)
	if err != nil {
		return nil, err
	}
	return func() error { return l.Unlock(ctx) }, nil
}

type naiveLocker struct{ l *naive.Lock }

func (n naiveLocker) lock(ctx context.Context) (func() error, error) {
	tok, err := n.l.Lock(ctx)
	if err != nil {
		return nil, err
	}
	return func() error { return n.l.Unlock(ctx, tok) }, nil
}

func lockers(b *testing.B, name string) []struct {
	name string
	l    locker
} {
	s := servertest.Standalone(b)
	c, err := keyvalue.Open(keyvalue.Config{Addrs: []string{s.Addr()}, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	m, _ := lock.New(c, lock.Options{TTL: 10 * time.Second, Logger: quiet}).Mutex(name)
	return []struct {
		name string
		l    locker
	}{
		{"naive", naiveLocker{naive.NewLock(c, "naive:"+name, 10*time.Second, 10*time.Millisecond)}},
		{"keyvalue", kvLocker{m}},
	}
}

func BenchmarkUncontended(b *testing.B) {
	for _, im := range lockers(b, "u") {
		b.Run(im.name, func(b *testing.B) {
			ctx := context.Background()
			for b.Loop() {
				unlock, err := im.l.lock(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if err := unlock(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkHandoff measures release → waiting process acquires; it
// reports p50 and p99 of that latency.
func BenchmarkHandoff(b *testing.B) {
	for _, im := range lockers(b, "h") {
		b.Run(im.name, func(b *testing.B) {
			ctx := context.Background()
			var lat []time.Duration
			for b.Loop() {
				unlock, err := im.l.lock(ctx)
				if err != nil {
					b.Fatal(err)
				}
				got := make(chan time.Time, 1)
				go func() {
					u, err := im.l.lock(ctx)
					got <- time.Now()
					if err == nil {
						_ = u()
					}
				}()
				time.Sleep(2 * time.Millisecond) // the waiter is blocked now
				released := time.Now()
				if err := unlock(); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, (<-got).Sub(released))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}

// BenchmarkContended runs lock+unlock with N goroutines competing; ns/op
// is per acquisition.
func BenchmarkContended(b *testing.B) {
	for _, n := range []int{2, 8, 32} {
		for _, im := range lockers(b, fmt.Sprintf("c%d", n)) {
			b.Run(fmt.Sprintf("waiters=%d/%s", n, im.name), func(b *testing.B) {
				ctx := context.Background()
				var mu sync.Mutex
				left := b.N
				b.ResetTimer()
				var wg sync.WaitGroup
				for range n {
					wg.Go(func() {
						for {
							mu.Lock()
							if left == 0 {
								mu.Unlock()
								return
							}
							left--
							mu.Unlock()
							unlock, err := im.l.lock(ctx)
							if err != nil {
								b.Error(err)
								return
							}
							if err := unlock(); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
			})
		}
	}
}
