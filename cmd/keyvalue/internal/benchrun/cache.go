package benchrun

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/cache"
	"github.com/keyvalue-go/keyvalue/cmd/keyvalue/internal/naive"
)

// ---- cache

// tagged is what both cache implementations offer.
type tagged interface {
	Set(ctx context.Context, id string, data []byte, tags []string, lifetime time.Duration) error
	Get(ctx context.Context, id string) ([]byte, error)
	GetMany(ctx context.Context, ids []string) (map[string][]byte, error)
	FlushByTags(ctx context.Context, tags ...string) error
	Flush(ctx context.Context) error
	CollectGarbage(ctx context.Context) error
}

type kvCache struct{ *cache.Backend }

func (k kvCache) FlushByTags(ctx context.Context, tags ...string) error {
	_, err := k.Backend.FlushByTags(ctx, tags...)
	return err
}
func (k kvCache) Flush(ctx context.Context) error { _, err := k.Backend.Flush(ctx, nil); return err }
func (k kvCache) CollectGarbage(ctx context.Context) error {
	_, err := k.Backend.CollectGarbage(ctx, nil)
	return err
}

// openCache returns a fresh cache of either kind and a cleanup function.
func openCache(env *Env, kv bool, scenario string, opts cache.Options) (tagged, *keyvalue.Client, func(), error) {
	c, err := env.client("")
	if err != nil {
		return nil, nil, nil, err
	}
	name := env.name(strings.ReplaceAll(scenario, "/", "-"), strconv.FormatInt(time.Now().UnixNano(), 36))
	if !kv {
		if !env.Plain {
			c.Close()
			return nil, nil, nil, ErrSkip
		}
		n := naive.New(c, name+":")
		return n, c, func() { _ = n.Flush(context.Background()); c.Close() }, nil
	}
	opts.Logger = quiet
	b, err := cache.New(c, name, opts)
	if err != nil {
		c.Close()
		return nil, nil, nil, err
	}
	return kvCache{b}, c, func() { _, _ = b.Flush(context.Background(), nil); c.Close() }, nil
}

// fill writes n entries; entry i gets tag i%tags. keyvalue writes them
// with SetMany, the baseline with its bulk Load (the set-up of a
// scenario, not what it measures, and minutes through a slow link
// otherwise); anything else with 32 goroutines calling Set.
func fill(ctx context.Context, t tagged, n, tags int, lifetime time.Duration) error {
	data := []byte(`{"html":"<p>cached</p>"}`)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = "e" + strconv.Itoa(i)
	}
	tagOf := func(i int) string { return "t" + strconv.Itoa(i%tags) }
	switch c := t.(type) {
	case kvCache:
		for start := 0; start < n; start += 1000 {
			var batch []cache.Entry
			for i := start; i < min(start+1000, n); i++ {
				batch = append(batch, cache.Entry{ID: ids[i], Data: data, Tags: []string{tagOf(i)}, Lifetime: lifetime})
			}
			if err := c.SetMany(ctx, batch); err != nil {
				return err
			}
		}
		return nil
	case *naive.Cache:
		return c.Load(ctx, ids, data, tagOf, lifetime)
	}
	var next atomic.Int64
	_, err := Parallel(32, n, func() error {
		i := int(next.Add(1) - 1)
		return t.Set(ctx, ids[i], data, []string{tagOf(i)}, lifetime)
	})
	return err
}

func tagNames(n int) []string {
	t := make([]string, n)
	for i := range t {
		t[i] = "t" + strconv.Itoa(i)
	}
	return t
}

func cacheSet(tags int, kv bool) Impl {
	return func(ctx context.Context, env *Env) (Measure, error) {
		t, _, done, err := openCache(env, kv, fmt.Sprintf("set%d", tags), cache.Options{})
		if err != nil {
			return Measure{}, err
		}
		defer done()
		all := tagNames(tags)
		data := make([]byte, 512)
		n := env.sizes().setOps
		start := time.Now()
		for i := range n {
			ts := all
			if i%2 == 1 {
				ts = all[:max(1, tags-1)] // every set also computes a tag diff
			}
			if err := t.Set(ctx, "id"+strconv.Itoa(i%100), data, ts, time.Hour); err != nil {
				return Measure{}, err
			}
		}
		return Measure{Value: per(time.Since(start), n, "µs")}, nil
	}
}

// fillThenTime fills a fresh cache with n entries over tags tags, waits
// settle (to let short lifetimes run out), and times op, in ms.
func fillThenTime(kv bool, scenario string, n, tags int, lifetime, settle time.Duration, op func(tagged, context.Context) error) Impl {
	return func(ctx context.Context, env *Env) (Measure, error) {
		t, _, done, err := openCache(env, kv, scenario, cache.Options{})
		if err != nil {
			return Measure{}, err
		}
		defer done()
		if err := fill(ctx, t, env.n(n), tags, lifetime); err != nil {
			return Measure{}, err
		}
		time.Sleep(settle)
		start := time.Now()
		if err := op(t, ctx); err != nil {
			return Measure{}, err
		}
		return Measure{Value: per(time.Since(start), 1, "ms")}, nil
	}
}

func flushByTagsN(n int, kv bool) Impl {
	return fillThenTime(kv, "fbt", n, 10, time.Hour, 0, func(t tagged, ctx context.Context) error { //nolint:revive // method-expression shape
		return t.FlushByTags(ctx, tagNames(10)...)
	})
}

func flushAll(n int, kv bool) Impl {
	return fillThenTime(kv, "flush", n, 50, time.Hour, 0, tagged.Flush)
}

// flushStall flushes a 100,000-entry cache while a second client sends
// PINGs back to back; the result is the slowest PING.
func flushStall(kv bool) Impl {
	return func(ctx context.Context, env *Env) (Measure, error) {
		t, _, done, err := openCache(env, kv, "stall", cache.Options{})
		if err != nil {
			return Measure{}, err
		}
		defer done()
		if err := fill(ctx, t, env.n(100000), 100, time.Hour); err != nil {
			return Measure{}, err
		}
		probe, err := env.client(env.name("probe", strconv.FormatInt(time.Now().UnixNano(), 36)))
		if err != nil {
			return Measure{}, err
		}
		defer probe.Close()
		if err := probe.Do(ctx, probe.B().Ping().Build()).Error(); err != nil {
			return Measure{}, err
		}
		stop := make(chan struct{})
		var worst atomic.Int64
		var wg sync.WaitGroup
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				t0 := time.Now()
				_ = probe.Do(ctx, probe.B().Ping().Build()).Error()
				d := int64(time.Since(t0))
				for {
					w := worst.Load()
					if d <= w || worst.CompareAndSwap(w, d) {
						break
					}
				}
			}
		})
		time.Sleep(20 * time.Millisecond)
		err = t.Flush(ctx)
		close(stop)
		wg.Wait()
		if err != nil {
			return Measure{}, err
		}
		return Measure{Value: per(time.Duration(worst.Load()), 1, "ms")}, nil
	}
}

func gc(kv bool) Impl {
	return fillThenTime(kv, "gc", 5000, 20, 50*time.Millisecond, 150*time.Millisecond, tagged.CollectGarbage)
}

func getParallel(kv bool) Impl {
	return func(ctx context.Context, env *Env) (Measure, error) {
		t, _, done, err := openCache(env, kv, "get", cache.Options{})
		if err != nil {
			return Measure{}, err
		}
		defer done()
		if err := t.Set(ctx, "hot", make([]byte, 512), []string{"t"}, time.Hour); err != nil {
			return Measure{}, err
		}
		ops, err := Throughput(64, ParallelWindow(env), func() error { _, err := t.Get(ctx, "hot"); return err })
		if err != nil {
			return Measure{}, err
		}
		return Measure{Value: ops}, nil
	}
}

// getMany reads n entries of 512 bytes in one call, over and over
// (baseline: one GET per entry, pipelined).
func getMany(n int, kv bool) Impl {
	return func(ctx context.Context, env *Env) (Measure, error) {
		t, _, done, err := openCache(env, kv, "getmany", cache.Options{})
		if err != nil {
			return Measure{}, err
		}
		defer done()
		ids := make([]string, n)
		for i := range ids {
			ids[i] = "e" + strconv.Itoa(i)
			if err := t.Set(ctx, ids[i], make([]byte, 512), []string{"t"}, time.Hour); err != nil {
				return Measure{}, err
			}
		}
		reads := max(env.sizes().getOps/20, 2)
		start := time.Now()
		for range reads {
			got, err := t.GetMany(ctx, ids)
			if err != nil {
				return Measure{}, err
			}
			if len(got) != n {
				return Measure{}, fmt.Errorf("GetMany found %d of %d entries", len(got), n)
			}
		}
		return Measure{Value: per(time.Since(start), reads, "µs")}, nil
	}
}

// getManyLimit: one MGET of n values of the same size.
func getManyLimit(n int) Impl {
	return func(ctx context.Context, env *Env) (Measure, error) {
		c, prefix, done, err := rawClient(env, "getmany")
		if err != nil {
			return Measure{}, err
		}
		defer done()
		keys, err := setKeys(ctx, c, prefix, n, string(make([]byte, 512)))
		if err != nil {
			return Measure{}, err
		}
		reads := max(env.sizes().getOps/20, 2)
		start := time.Now()
		for range reads {
			if err := c.Do(ctx, c.B().Mget().Key(keys...).Build()).Error(); err != nil {
				return Measure{}, err
			}
		}
		return Measure{Value: per(time.Since(start), reads, "µs")}, nil
	}
}

// ParallelWindow is how long each run of cache/get-parallel-64 reads
// (the peers' implementations use it too): a few hundred milliseconds
// with --quick, two seconds in a full run, since 64 goroutines on two
// cores make short runs noisy.
func ParallelWindow(env *Env) time.Duration {
	switch {
	case env.Tiny:
		return 20 * time.Millisecond
	case env.Quick:
		return 300 * time.Millisecond
	}
	return 2 * time.Second
}

func getLocal(kv bool) Impl {
	return func(ctx context.Context, env *Env) (Measure, error) {
		opts := cache.Options{}
		if kv {
			opts.LocalCacheTTL = time.Minute
		}
		t, _, done, err := openCache(env, kv, "local", opts)
		if err != nil {
			return Measure{}, err
		}
		defer done()
		if err := t.Set(ctx, "hot", make([]byte, 512), []string{"t"}, time.Hour); err != nil {
			return Measure{}, err
		}
		if _, err := t.Get(ctx, "hot"); err != nil { // warm the local copy
			return Measure{}, err
		}
		n := env.sizes().localHits
		if !kv {
			n /= 20 // server round trips: fewer suffice
		}
		start := time.Now()
		for range n {
			if _, err := t.Get(ctx, "hot"); err != nil {
				return Measure{}, err
			}
		}
		return Measure{Value: per(time.Since(start), n, "ns")}, nil
	}
}

// ---- index growth

// indexGrowth writes short-lived entries under one tag, lets them expire,
// writes a few long-lived ones under the same tag (no garbage collection
// runs) and reports index members per live entry: 1.0 means the index
// holds only live entries.
func indexGrowth(kv bool) Impl {
	return func(ctx context.Context, env *Env) (Measure, error) {
		t, c, done, err := openCache(env, kv, "growth", cache.Options{})
		if err != nil {
			return Measure{}, err
		}
		defer done()
		short, long := env.n(5000), env.n(500)
		for i := range short {
			if err := t.Set(ctx, "s"+strconv.Itoa(i), []byte("x"), []string{"hot"}, 100*time.Millisecond); err != nil {
				return Measure{}, err
			}
		}
		time.Sleep(150 * time.Millisecond)
		for i := range long {
			if err := t.Set(ctx, "l"+strconv.Itoa(i), []byte("x"), []string{"hot"}, time.Hour); err != nil {
				return Measure{}, err
			}
		}
		var members int64
		switch t := t.(type) {
		case kvCache:
			members, err = c.Do(ctx, c.B().Zcard().Key(t.Prefix()+"i:hot").Build()).AsInt64()
		case *naive.Cache:
			members, err = c.Do(ctx, c.B().Scard().Key(t.TagKey("hot")).Build()).AsInt64()
		}
		if err != nil {
			return Measure{}, err
		}
		return Measure{Value: float64(members) / float64(long)}, nil
	}
}

// ---- local read cache staleness

// localStaleness measures, in another process's view, how long a flushed
// entry stays readable from the local read cache: process A flushes the
// entry's tag, process B (its own client, with LocalCacheTTL) reads every
// 50µs until it misses. Value is the p99 over the rounds, Extra the max
// (µs); the polling interval bounds the resolution.
func localStaleness(ctx context.Context, env *Env) (Measure, error) {
	ca, err := env.client("")
	if err != nil {
		return Measure{}, err
	}
	defer ca.Close()
	cb, err := env.client("")
	if err != nil {
		return Measure{}, err
	}
	defer cb.Close()
	name := env.name("stale", strconv.FormatInt(time.Now().UnixNano(), 36))
	a, err := cache.New(ca, name, cache.Options{Logger: quiet})
	if err != nil {
		return Measure{}, err
	}
	defer func() { _, _ = a.Flush(context.Background(), nil) }()
	b, err := cache.New(cb, name, cache.Options{Logger: quiet, LocalCacheTTL: time.Minute})
	if err != nil {
		return Measure{}, err
	}
	rounds := env.n(200)
	windows := make([]time.Duration, 0, rounds)
	for i := range rounds {
		id, tag := "e"+strconv.Itoa(i), "t"+strconv.Itoa(i)
		if err := a.Set(ctx, id, []byte("x"), []string{tag}, time.Hour); err != nil {
			return Measure{}, err
		}
		for range 2 { // the second read is served locally
			if _, err := b.Get(ctx, id); err != nil {
				return Measure{}, err
			}
		}
		if _, err := a.FlushByTags(ctx, tag); err != nil {
			return Measure{}, err
		}
		flushed := time.Now()
		for {
			_, err := b.Get(ctx, id)
			if errors.Is(err, cache.ErrNotFound) {
				break
			}
			if err != nil {
				return Measure{}, err
			}
			if time.Since(flushed) > 5*time.Second {
				return Measure{}, fmt.Errorf("entry still served locally 5s after its flush")
			}
			// Poll, do not spin: a loop of local hits on two cores starves
			// the goroutine that reads the invalidation (and the server),
			// and would measure itself.
			time.Sleep(50 * time.Microsecond)
		}
		windows = append(windows, time.Since(flushed))
	}
	slices.Sort(windows)
	p99 := windows[len(windows)*99/100]
	return Measure{Value: per(p99, 1, "µs"), Extra: map[string]float64{"max": per(windows[len(windows)-1], 1, "µs")}}, nil
}
