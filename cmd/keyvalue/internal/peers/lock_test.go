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
// on one fresh server (the same implementations keyvalue bench uses), each
// twice on separate clients (l2 stands for another process).
func lockers(b *testing.B) []struct {
	name  string
	l, l2 benchrun.Locker
} {
	s := servertest.Standalone(b)
	cfg := keyvalue.Config{Addrs: []string{s.Addr()}, Logger: slog.New(slog.DiscardHandler)}
	env := &benchrun.Env{Cfg: cfg, Plain: true, NS: benchrun.NewNamespace()}
	type pair = struct {
		name  string
		l, l2 benchrun.Locker
	}
	var out []pair
	for _, name := range []string{"naive", "keyvalue"} {
		var two [2]benchrun.Locker
		for i := range two {
			c, err := keyvalue.Open(cfg)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(c.Close)
			if name == "naive" {
				two[i] = benchrun.NaiveLocker(env, c, "naive")
			} else if two[i], err = benchrun.KeyvalueLocker(env, c, "kv"); err != nil {
				b.Fatal(err)
			}
		}
		out = append(out, pair{name, two[0], two[1]})
	}
	for _, name := range []string{"redislock", "redsync", "valkeylock"} {
		var two [2]benchrun.Locker
		for i := range two {
			l, done, err := peers.Lockers()[name](env, "bench-"+name)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(done)
			two[i] = l
		}
		out = append(out, pair{name, two[0], two[1]})
	}
	return out
}

func BenchmarkLockUncontended(b *testing.B) {
	for _, im := range lockers(b) {
		b.Run(im.name, func(b *testing.B) {
			for b.Loop() {
				if _, _, err := benchrun.Contend(benchCtx(b), []benchrun.Locker{im.l}, 1, 1); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkLockHandoff measures release → a waiter on another client (as
// another process) acquires, reporting p50 and p99.
func BenchmarkLockHandoff(b *testing.B) {
	for _, im := range lockers(b) {
		b.Run(im.name, func(b *testing.B) {
			lat, err := benchrun.Handoffs(benchCtx(b), im.l, im.l2, b.N)
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
				if _, _, err := benchrun.Contend(benchCtx(b), []benchrun.Locker{im.l}, n, b.N); err != nil {
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
