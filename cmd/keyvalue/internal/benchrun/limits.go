package benchrun

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keyvalue-go/keyvalue"
	"github.com/valkey-io/valkey-go"
)

// The limit of a scenario is the cheapest raw-command equivalent of the
// server work it does, measured in the same run with the same client
// library: how fast the wire and the server allow the job to be done
// (BENCHMARKS.md defines each one). keyvalue ÷ limit says how much is
// left to gain.

// rawClient opens a client for raw commands and a namespace prefix for
// its keys, with a cleanup that unlinks every key under it (Cleanup).
func rawClient(env *Env, scenario string) (*keyvalue.Client, string, func(), error) {
	c, err := env.client("")
	if err != nil {
		return nil, "", nil, err
	}
	prefix := env.name("limit", scenario, strconv.FormatInt(time.Now().UnixNano(), 36)) + ":"
	return c, prefix, func() {
		_, _ = Cleanup(context.Background(), c, prefix)
		c.Close()
	}, nil
}

// setLimit: one round trip carrying a SET PX of the same payload and one
// ZADD per tag.
func setLimit(tags int) Impl {
	return func(ctx context.Context, env *Env) (Measure, error) {
		c, prefix, done, err := rawClient(env, "set"+strconv.Itoa(tags))
		if err != nil {
			return Measure{}, err
		}
		defer done()
		data := string(make([]byte, 512))
		n := env.sizes().setOps
		start := time.Now()
		for i := range n {
			id := "id" + strconv.Itoa(i%100)
			cmds := make(valkey.Commands, 0, 1+tags)
			cmds = append(cmds, c.B().Set().Key(prefix+"v:"+id).Value(data).Px(time.Hour).Build())
			for t := range tags {
				cmds = append(cmds, c.B().Zadd().Key(prefix+"i:t"+strconv.Itoa(t)).ScoreMember().ScoreMember(float64(time.Now().UnixMilli()), id).Build())
			}
			for _, r := range c.DoMulti(ctx, cmds...) {
				if err := r.Error(); err != nil {
					return Measure{}, err
				}
			}
		}
		return Measure{Value: per(time.Since(start), n, "µs")}, nil
	}
}

// fillRaw writes n values of the fill's size and tags index sets under
// prefix, pipelined, and returns the value keys and the index keys.
func fillRaw(ctx context.Context, c valkey.Client, prefix string, n, tags int) ([]string, []string, error) {
	data := `{"html":"<p>cached</p>"}`
	values := make([]string, n)
	indexes := make([]string, tags)
	for t := range tags {
		indexes[t] = prefix + "i:t" + strconv.Itoa(t)
	}
	for lo := 0; lo < n; lo += 1000 {
		cmds := make(valkey.Commands, 0, 2000)
		for i := lo; i < min(lo+1000, n); i++ {
			values[i] = prefix + "v:e" + strconv.Itoa(i)
			cmds = append(cmds, c.B().Set().Key(values[i]).Value(data).Px(time.Hour).Build(),
				c.B().Zadd().Key(indexes[i%tags]).ScoreMember().ScoreMember(1, "e"+strconv.Itoa(i)).Build())
		}
		for _, r := range c.DoMulti(ctx, cmds...) {
			if err := r.Error(); err != nil {
				return nil, nil, err
			}
		}
	}
	return values, indexes, nil
}

// flushByTagsLimitN: UNLINK of the same keys (the n values and the 10
// indexes), in one command up to 10,000 keys, else pipelined in batches
// of 10,000.
func flushByTagsLimitN(n int) Impl {
	return func(ctx context.Context, env *Env) (Measure, error) {
		c, prefix, done, err := rawClient(env, "fbt")
		if err != nil {
			return Measure{}, err
		}
		defer done()
		values, indexes, err := fillRaw(ctx, c, prefix, env.n(n), 10)
		if err != nil {
			return Measure{}, err
		}
		var cmds valkey.Commands
		for batch := range slices.Chunk(append(values, indexes...), 10000) {
			cmds = append(cmds, c.B().Unlink().Key(batch...).Build())
		}
		start := time.Now()
		for _, r := range c.DoMulti(ctx, cmds...) {
			if err := r.Error(); err != nil {
				return Measure{}, err
			}
		}
		return Measure{Value: per(time.Since(start), 1, "ms")}, nil
	}
}

// flushAllLimit: UNLINK of every key, in batches of 1,000 (the keys
// known beforehand: no SCAN).
func flushAllLimit(n int) Impl {
	return func(ctx context.Context, env *Env) (Measure, error) {
		c, prefix, done, err := rawClient(env, "flush")
		if err != nil {
			return Measure{}, err
		}
		defer done()
		values, indexes, err := fillRaw(ctx, c, prefix, env.n(n), 50)
		if err != nil {
			return Measure{}, err
		}
		start := time.Now()
		for batch := range slices.Chunk(append(values, indexes...), 1000) {
			if err := c.Do(ctx, c.B().Unlink().Key(batch...).Build()).Error(); err != nil {
				return Measure{}, err
			}
		}
		return Measure{Value: per(time.Since(start), 1, "ms")}, nil
	}
}

// getParallelLimit: plain GETs through the same client library with 64
// goroutines.
func getParallelLimit(ctx context.Context, env *Env) (Measure, error) {
	c, prefix, done, err := rawClient(env, "get")
	if err != nil {
		return Measure{}, err
	}
	defer done()
	key := prefix + "hot"
	if err := c.Do(ctx, c.B().Set().Key(key).Value(string(make([]byte, 513))).Px(time.Hour).Build()).Error(); err != nil {
		return Measure{}, err
	}
	ops, err := Throughput(64, ParallelWindow(env), func() error { return c.Do(ctx, c.B().Get().Key(key).Build()).Error() })
	if err != nil {
		return Measure{}, err
	}
	return Measure{Value: ops}, nil
}

// getAllLimitN: one MGET of n records of the same size, not decoded.
func getAllLimitN(n int) Impl {
	return func(ctx context.Context, env *Env) (Measure, error) { return getAllLimit(ctx, env, n) }
}

func getAllLimit(ctx context.Context, env *Env, n int) (Measure, error) {
	c, prefix, done, err := rawClient(env, "getall")
	if err != nil {
		return Measure{}, err
	}
	defer done()
	record := `{"v":1,"sid":"` + strings.Repeat("x", 107) + `","created":"2026-11-29T10:00:00.123456789Z","updated":"2026-11-29T10:00:00.123456789Z","touched":"2026-11-29T10:00:00.123456789Z","expires":"2026-11-30T10:00:00.123456789Z","data":{"user":"42","cart":[1,2,3]}}`
	keys, err := setKeys(ctx, c, prefix, env.n(n), record)
	if err != nil {
		return Measure{}, err
	}
	start := time.Now()
	if err := c.Do(ctx, c.B().Mget().Key(keys...).Build()).Error(); err != nil {
		return Measure{}, err
	}
	return Measure{Value: per(time.Since(start), 1, "ms")}, nil
}

// renewLimit: one round trip carrying the commands a renew does on the
// server: read the record, write it under the new id, leave the stub,
// move the index entry.
func renewLimit(ctx context.Context, env *Env) (Measure, error) {
	c, prefix, done, err := rawClient(env, "renew")
	if err != nil {
		return Measure{}, err
	}
	defer done()
	record := `{"v":1,"sid":"` + strings.Repeat("x", 107) + `","user_id":"42","created":"2026-11-29T10:00:00Z","updated":"2026-11-29T10:00:00Z","touched":"2026-11-29T10:00:00Z","expires":"2026-11-30T10:00:00Z"}`
	n := env.sizes().renewOps
	old := prefix + "0"
	if err := c.Do(ctx, c.B().Set().Key(old).Value(record).Px(time.Hour).Build()).Error(); err != nil {
		return Measure{}, err
	}
	start := time.Now()
	for i := range n {
		next := prefix + strconv.Itoa(i+1)
		for _, r := range c.DoMulti(ctx,
			c.B().Get().Key(old).Build(),
			c.B().Set().Key(next).Value(record).Px(time.Hour).Build(),
			c.B().Set().Key(old).Value(record).Px(30*time.Second).Build(),
			c.B().Zadd().Key(prefix+"idx").ScoreMember().ScoreMember(1, next).Build(),
			c.B().Zrem().Key(prefix+"idx").Member(old).Build(),
		) {
			if err := r.Error(); err != nil {
				return Measure{}, err
			}
		}
		old = next
	}
	return Measure{Value: per(time.Since(start), n, "µs")}, nil
}

// pingLimit: the PING round trip, p50 (p99), in µs: a hand-off cannot
// take less than one. Each PING follows the same pause as each hand-off
// (HandoffPause): on a VM, a round trip after an idle gap costs more than
// one in a tight loop (measured 36 → 170 µs), and the hand-off pays that.
func pingLimit(ctx context.Context, env *Env) (Measure, error) {
	c, err := env.client("")
	if err != nil {
		return Measure{}, err
	}
	defer c.Close()
	n := max(env.sizes().handoffs*3, 20)
	lat := make([]time.Duration, n)
	for i := range n {
		time.Sleep(HandoffPause)
		t := time.Now()
		if err := c.Do(ctx, c.B().Ping().Build()).Error(); err != nil {
			return Measure{}, err
		}
		lat[i] = time.Since(t)
	}
	slices.Sort(lat)
	return Measure{Value: per(lat[n/2], 1, "µs"), Extra: map[string]float64{"p99": per(lat[n*99/100], 1, "µs")}}, nil
}

// setKeys writes n keys under prefix holding value (expiring in an hour),
// in one pipeline, and returns their names.
func setKeys(ctx context.Context, c valkey.Client, prefix string, n int, value string) ([]string, error) {
	keys := make([]string, n)
	cmds := make(valkey.Commands, n)
	for i := range keys {
		keys[i] = prefix + strconv.Itoa(i)
		cmds[i] = c.B().Set().Key(keys[i]).Value(value).Px(time.Hour).Build()
	}
	for _, r := range c.DoMulti(ctx, cmds...) {
		if err := r.Error(); err != nil {
			return nil, err
		}
	}
	return keys, nil
}
