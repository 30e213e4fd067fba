package bench

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bsm/redislock"
	"github.com/go-redsync/redsync/v4"
	"github.com/go-redsync/redsync/v4/redis/goredis/v9"
	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/internal/naive"
	"github.com/keyvalue-go/keyvalue/internal/servertest"
	"github.com/keyvalue-go/keyvalue/lock"
	goredislib "github.com/redis/go-redis/v9"
	"github.com/valkey-io/valkey-go"
	"github.com/valkey-io/valkey-go/valkeylock"
)

// locker is what every implementation offers: take the lock (waiting), and
// a function to release it.
type locker interface {
	lock(ctx context.Context) (unlock func() error, err error)
}

type lockFunc func(ctx context.Context) (func() error, error)

func (f lockFunc) lock(ctx context.Context) (func() error, error) { return f(ctx) }

const lockTTL = 10 * time.Second

// lockImpls builds every implementation on one fresh server, each on its
// own key. Polling peers use a 10ms retry interval (redislock's examples
// use 100ms; redsync's default is a random 50-250ms).
func lockImpls(b *testing.B, key string) []struct {
	name string
	l    locker
} {
	s := servertest.Standalone(b)
	kv, err := keyvalue.Open(keyvalue.Config{Addrs: []string{s.Addr()}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(kv.Close)
	m, _ := lock.New(kv, lock.Options{TTL: lockTTL, Logger: slog.New(slog.DiscardHandler)}).Mutex(key)
	nl := naive.NewLock(kv, "naive:"+key, lockTTL, 10*time.Millisecond)

	rdb := goredislib.NewClient(&goredislib.Options{Addr: s.Addr(), PoolSize: 64})
	b.Cleanup(func() { rdb.Close() })
	rl := redislock.New(rdb)
	rs := redsync.New(goredis.NewPool(rdb))

	vl, err := valkeylock.NewLocker(valkeylock.LockerOption{
		ClientOption: valkey.ClientOption{InitAddress: []string{s.Addr()}, ForceSingleClient: true},
		KeyMajority:  1, KeyValidity: lockTTL, NoLoopTracking: true,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(vl.Close)

	return []struct {
		name string
		l    locker
	}{
		{"naive", lockFunc(func(ctx context.Context) (func() error, error) {
			tok, err := nl.Lock(ctx)
			return func() error { return nl.Unlock(ctx, tok) }, err
		})},
		{"keyvalue", lockFunc(func(ctx context.Context) (func() error, error) {
			l, err := m.Lock(ctx)
			if err != nil {
				return nil, err
			}
			return func() error { return l.Unlock(ctx) }, nil
		})},
		{"redislock", lockFunc(func(ctx context.Context) (func() error, error) {
			l, err := rl.Obtain(ctx, "redislock:"+key, lockTTL, &redislock.Options{RetryStrategy: redislock.LinearBackoff(10 * time.Millisecond)})
			if err != nil {
				return nil, err
			}
			return func() error { return l.Release(ctx) }, nil
		})},
		{"redsync", lockFunc(func(ctx context.Context) (func() error, error) {
			mu := rs.NewMutex("redsync:"+key, redsync.WithExpiry(lockTTL), redsync.WithTries(1<<20), redsync.WithRetryDelay(10*time.Millisecond))
			if err := mu.LockContext(ctx); err != nil {
				return nil, err
			}
			return func() error { _, err := mu.UnlockContext(ctx); return err }, nil
		})},
		{"valkeylock", lockFunc(func(ctx context.Context) (func() error, error) {
			_, cancel, err := vl.WithContext(ctx, "valkeylock:"+key)
			if err != nil {
				return nil, err
			}
			return func() error { cancel(); return nil }, nil
		})},
	}
}

func BenchmarkLockUncontended(b *testing.B) {
	for _, im := range lockImpls(b, "u") {
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

// BenchmarkLockHandoff measures release → a waiting goroutine acquires,
// reporting p50 and p99.
func BenchmarkLockHandoff(b *testing.B) {
	for _, im := range lockImpls(b, "h") {
		b.Run(im.name, func(b *testing.B) {
			lat := handoffs(b, im.l, b.N)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}

// handoffs measures n release→acquire hand-offs, sorted.
func handoffs(b *testing.B, l locker, n int) []time.Duration {
	ctx := context.Background()
	var lat []time.Duration
	for range n {
		unlock, err := l.lock(ctx)
		if err != nil {
			b.Fatal(err)
		}
		got := make(chan time.Time, 1)
		go func() {
			u, err := l.lock(ctx)
			got <- time.Now()
			if err == nil {
				_ = u()
			}
		}()
		time.Sleep(3 * time.Millisecond) // the waiter is waiting now
		released := time.Now()
		if err := unlock(); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, (<-got).Sub(released))
	}
	slices.Sort(lat)
	return lat
}

// BenchmarkLockContended: N goroutines compete; ns/op per acquisition.
func BenchmarkLockContended(b *testing.B) {
	for _, n := range []int{2, 8, 32} {
		for _, im := range lockImpls(b, fmt.Sprintf("c%d", n)) {
			b.Run(fmt.Sprintf("waiters=%d/%s", n, im.name), func(b *testing.B) {
				contend(b, im.l, n, b.N)
			})
		}
	}
}

func contend(b *testing.B, l locker, workers, total int) {
	ctx := context.Background()
	var mu sync.Mutex
	left := total
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				mu.Lock()
				if left == 0 {
					mu.Unlock()
					return
				}
				left--
				mu.Unlock()
				unlock, err := l.lock(ctx)
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
}
