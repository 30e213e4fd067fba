package benchrun

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/keyvalue-go/keyvalue/cache"
	"github.com/valkey-io/valkey-go"
)

// memoryEntries, memoryPayload and memoryTags shape cache/memory-per-entry.
const (
	memoryEntries = 20000
	memoryPayload = 200
	memoryTags    = 3
)

// usedMemory reads INFO memory's used_memory of the server (standalone).
func usedMemory(ctx context.Context, c valkey.Client) (int64, error) {
	info, err := c.Do(ctx, c.B().Info().Section("memory").Build()).ToString()
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("INFO memory has no used_memory")
}

// memoryPerEntry writes the entries (200 bytes, 3 tags out of 300) and
// reports the server's used_memory growth per entry, in bytes. Only on a
// plain standalone server: elsewhere other traffic and other nodes make
// the figure meaningless.
func memoryPerEntry(kv bool) Impl {
	return func(ctx context.Context, env *Env) (Measure, error) {
		if !env.Plain {
			return Measure{}, ErrSkip
		}
		t, c, done, err := openCache(env, kv, "memory", cache.Options{})
		if err != nil {
			return Measure{}, err
		}
		defer done()
		n := env.n(memoryEntries)
		data := make([]byte, memoryPayload)
		return memoryGrowth(ctx, c, n, func(i int) error {
			tags := make([]string, memoryTags)
			for k := range tags {
				tags[k] = "t" + strconv.Itoa((i+k*100)%300)
			}
			return t.Set(ctx, "entry-"+strconv.Itoa(i), data, tags, time.Hour)
		})
	}
}

// memoryGrowth writes n entries with write (32 goroutines) and returns the
// server's used_memory growth per entry.
func memoryGrowth(ctx context.Context, c valkey.Client, n int, write func(i int) error) (Measure, error) {
	before, err := usedMemory(ctx, c)
	if err != nil {
		return Measure{}, err
	}
	if err := eachIndex(n, write); err != nil {
		return Measure{}, err
	}
	after, err := usedMemory(ctx, c)
	if err != nil {
		return Measure{}, err
	}
	return Measure{Value: float64(after-before) / float64(n)}, nil
}

// eachIndex calls fn(0..n-1) over 32 goroutines (see Parallel).
func eachIndex(n int, fn func(i int) error) error {
	var next atomic.Int64
	_, err := Parallel(32, n, func() error { return fn(int(next.Add(1) - 1)) })
	return err
}

// memoryLimit: a plain SET PX of the same payloads under keys of the same
// length, nothing else.
func memoryLimit(ctx context.Context, env *Env) (Measure, error) {
	if !env.Plain {
		return Measure{}, ErrSkip
	}
	c, prefix, done, err := rawClient(env, "memory")
	if err != nil {
		return Measure{}, err
	}
	defer done()
	n := env.n(memoryEntries)
	data := string(make([]byte, memoryPayload))
	return memoryGrowth(ctx, c, n, func(i int) error {
		return c.Do(ctx, c.B().Set().Key(prefix+"entry-"+strconv.Itoa(i)).Value(data).Px(time.Hour).Build()).Error()
	})
}
