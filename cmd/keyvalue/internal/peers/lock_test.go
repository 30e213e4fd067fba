package peers_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/cmd/keyvalue/internal/benchrun"
	"github.com/keyvalue-go/keyvalue/cmd/keyvalue/internal/peers"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/servertest"
)

// lockers builds keyvalue's lock, the naive polling lock and every peer's
// on one fresh server (the same implementations keyvalue bench uses).
func lockers(b *testing.B) []struct {
	name string
	l    benchrun.Locker
} {
	s := servertest.Standalone(b)
	cfg := keyvalue.Config{Addrs: []string{s.Addr()}, Logger: slog.New(slog.DiscardHandler)}
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
	out := []struct {
		name string
		l    benchrun.Locker
	}{{"naive", benchrun.NaiveLocker(env, c, "naive")}, {"keyvalue", kv}}
	for _, name := range []string{"redislock", "redsync", "valkeylock"} {
		l, done, err := peers.Lockers()[name](env)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(done)
		out = append(out, struct {
			name string
			l    benchrun.Locker
		}{name, l})
	}
	return out
}

func BenchmarkLockUncontended(b *testing.B) {
	for _, im := range lockers(b) {
		b.Run(im.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := benchrun.Contend(benchCtx(b), im.l, 1, 1); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkLockHandoff measures release → a waiting goroutine acquires,
// reporting p50 and p99.
func BenchmarkLockHandoff(b *testing.B) {
	for _, im := range lockers(b) {
		b.Run(im.name, func(b *testing.B) {
			lat, err := benchrun.Handoffs(benchCtx(b), im.l, b.N)
			if err != nil {
				b.Fatal(err)
			}
			benchrun.ReportPercentiles(b, lat)
		})
	}
}

// BenchmarkLockContended: N goroutines compete; ns/op per acquisition.
func BenchmarkLockContended(b *testing.B) {
	for _, n := range []int{2, 8, 32} {
		for _, im := range lockers(b) {
			b.Run(fmt.Sprintf("waiters=%d/%s", n, im.name), func(b *testing.B) {
				if _, err := benchrun.Contend(benchCtx(b), im.l, n, b.N); err != nil {
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
