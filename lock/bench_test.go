package lock_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/internal/benchrun"
	"github.com/keyvalue-go/keyvalue/internal/servertest"
)

// Benchmarks compare keyvalue's lock with the usual polling lock (SET NX
// PX + sleep 10ms + retry) on one real server, with the measurements
// keyvalue bench uses. Peers (redislock, redsync, valkeylock) are compared
// in bench/ (make bench-peers).
func lockers(b *testing.B) map[string]benchrun.Locker {
	s := servertest.Standalone(b)
	cfg := keyvalue.Config{Addrs: []string{s.Addr()}, Logger: quiet}
	c, err := keyvalue.Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	env := &benchrun.Env{Cfg: cfg, Plain: true, NS: benchrun.NewNamespace()}
	kv, err := benchrun.KeyvalueLocker(env, c, "kv")
	if err != nil {
		b.Fatal(err)
	}
	return map[string]benchrun.Locker{"naive": benchrun.NaiveLocker(env, c, "naive"), "keyvalue": kv}
}

func BenchmarkUncontended(b *testing.B) {
	ls := lockers(b)
	for _, name := range []string{"naive", "keyvalue"} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := benchrun.Contend(benchCtx(b), ls[name], 1, 1); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkHandoff measures release → a waiting goroutine acquires.
func BenchmarkHandoff(b *testing.B) {
	ls := lockers(b)
	for _, name := range []string{"naive", "keyvalue"} {
		b.Run(name, func(b *testing.B) {
			lat, err := benchrun.Handoffs(benchCtx(b), ls[name], b.N)
			if err != nil {
				b.Fatal(err)
			}
			benchrun.ReportPercentiles(b, lat)
		})
	}
}

// BenchmarkContended: N goroutines compete; ns/op per acquisition.
func BenchmarkContended(b *testing.B) {
	for _, n := range []int{2, 8, 32} {
		ls := lockers(b)
		for _, name := range []string{"naive", "keyvalue"} {
			b.Run(fmt.Sprintf("waiters=%d/%s", n, name), func(b *testing.B) {
				if _, err := benchrun.Contend(benchCtx(b), ls[name], n, b.N); err != nil {
					b.Fatal(err)
				}
			})
		}
	}
}

// benchCtx bounds a benchmark's lock calls: an implementation that never
// wakes a waiter fails the benchmark instead of hanging it.
func benchCtx(b *testing.B) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	b.Cleanup(cancel)
	return ctx
}
