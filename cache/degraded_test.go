package cache_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keyvalue-go/keyvalue/cache"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/kvtest"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/servertest"
)

// TestDegradedMode: with the server stopped, reads are misses (GetOrSet
// computes and returns without storing), writes are dropped, an
// invalidation returns its error, and once the breaker is open a call
// costs one fast error; after a restart and the cooldown, all works again.
func TestDegradedMode(t *testing.T) {
	t.Parallel()
	s, c := standalone(t)
	const cooldown = 300 * time.Millisecond
	b := newBackend(t, c, "degraded", cache.Options{Degraded: true, BreakerThreshold: 3, BreakerCooldown: cooldown})
	typed := cache.NewTyped[string](b, cache.JSON)
	load := func(v string) cache.Loader[string] {
		return func(ctx context.Context) (string, []string, time.Duration, error) {
			return v, []string{"t"}, time.Hour, nil
		}
	}
	if v, err := typed.GetOrSet(ctx(t), "k", load("stored")); err != nil || v != "stored" {
		t.Fatalf("GetOrSet with the server up = %q, %v", v, err)
	}
	s.Stop()
	short := func() context.Context { return kvtest.Ctx(t, 2*time.Second) }

	v, err := typed.GetOrSet(short(), "k", load("computed"))
	if err != nil || v != "computed" {
		t.Fatalf("GetOrSet with the server down = %q, %v; want the computed value, no error", v, err)
	}
	if err := typed.Set(short(), "k2", "x", []string{"t"}, time.Hour); err != nil {
		t.Errorf("Set with the server down = %v; want it dropped (nil)", err)
	}
	_, err = b.Get(short(), "k")
	t.Logf("Get with the server down: %v", err)
	if !errors.Is(err, cache.ErrNotFound) {
		t.Errorf("Get with the server down = %v; want a miss", err)
	}
	// The batch calls: misses, dropped writes, computed values unstored.
	if got, err := b.GetMany(short(), []string{"k", "k2"}); err != nil || len(got) != 0 {
		t.Errorf("GetMany with the server down = %v, %v; want misses", got, err)
	}
	if err := b.SetMany(short(), []cache.Entry{{ID: "k4", Data: []byte("x"), Tags: []string{"t"}}}); err != nil {
		t.Errorf("SetMany with the server down = %v; want it dropped (nil)", err)
	}
	many, err := typed.GetOrSetMany(short(), []string{"k", "k5"}, func(ctx context.Context, missing []string) ([]cache.Item[string], error) {
		items := make([]cache.Item[string], len(missing))
		for i, id := range missing {
			items[i] = cache.Item[string]{ID: id, Value: "computed " + id}
		}
		return items, nil
	})
	if err != nil || many["k"] != "computed k" || many["k5"] != "computed k5" {
		t.Errorf("GetOrSetMany with the server down = %v, %v; want the computed values", many, err)
	}
	// By now the breaker is open: calls fail fast.
	start := time.Now()
	for range 100 {
		if _, err := b.Get(short(), "k"); !errors.Is(err, cache.ErrNotFound) || !errors.Is(err, cache.ErrUnavailable) {
			t.Fatalf("Get with the breaker open = %v; want a miss matching ErrUnavailable", err)
		}
	}
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Errorf("100 reads with the breaker open took %s; want fast errors", took)
	}
	_, err = b.FlushByTags(short(), "t")
	t.Logf("FlushByTags with the server down: %v", err)
	if !errors.Is(err, cache.ErrUnavailable) {
		t.Errorf("FlushByTags with the breaker open = %v; want an error matching ErrUnavailable (never dropped)", err)
	}
	if _, err := b.Remove(short(), "k"); err == nil {
		t.Error("Remove with the server down returned no error")
	}

	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	plain := newBackend(t, c, "degraded", cache.Options{})
	servertest.WaitFor(t, 10*time.Second, "the client reconnected", func() error {
		_, err := plain.Has(ctx(t), "k")
		return err
	})
	// A write while the breaker is still open is dropped (nil): write and
	// read back until the breaker let the calls through again.
	servertest.WaitFor(t, 10*time.Second, "the cache works again after the cooldown", func() error {
		if err := typed.Set(ctx(t), "k3", "back", []string{"t"}, time.Hour); err != nil {
			return err
		}
		v, err := typed.Get(ctx(t), "k3")
		if err == nil && v != "back" {
			err = errors.New("wrong value " + v)
		}
		return err
	})
}

// TestNotDegradedByDefault: without Options.Degraded, a dead server is an
// error, not a miss.
func TestNotDegradedByDefault(t *testing.T) {
	t.Parallel()
	s, c := standalone(t)
	b := newBackend(t, c, "strict", cache.Options{})
	s.Stop()
	_, err := b.Get(kvtest.Ctx(t, 2*time.Second), "k")
	if err == nil || errors.Is(err, cache.ErrNotFound) {
		t.Errorf("Get with the server down = %v; want an error that is not a miss", err)
	}
}

// TestDegradedOnServerThatCannotServe: a server that answers but cannot
// serve (out of memory under noeviction) makes degraded writes drop, not
// fail; other reply errors stay errors.
func TestDegradedOnServerThatCannotServe(t *testing.T) {
	t.Parallel()
	s, c := standalone(t)
	b := newBackend(t, c, "oom", cache.Options{Degraded: true})
	if _, err := s.Do("CONFIG", "SET", "maxmemory", "1"); err != nil {
		t.Fatal(err)
	}
	if err := b.Set(ctx(t), "k", []byte("v"), nil, time.Hour); err != nil {
		t.Errorf("degraded Set on a server out of memory = %v; want it dropped", err)
	}
	if _, err := s.Do("CONFIG", "SET", "maxmemory", "0"); err != nil {
		t.Fatal(err)
	}
	// A wrong-type key is an answer, not an outage: its error stays.
	if _, err := s.Do("HSET", b.Prefix()+"v:h", "f", "v"); err != nil {
		t.Fatal(err)
	}
	_, err := b.Get(ctx(t), "h")
	if err == nil || errors.Is(err, cache.ErrNotFound) {
		t.Errorf("degraded Get of a wrong-type key = %v; want the server's error", err)
	}
}
