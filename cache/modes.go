package cache

import (
	"context"
	"errors"

	"github.com/keyvalue-go/keyvalue/internal/scripts"
	"github.com/valkey-io/valkey-go"
)

// modes is the one seam through which the cross-cutting modes reach every
// operation: the local read cache (Options.LocalCacheTTL: reads through
// valkey-go's client-side cache, and the bookkeeping that makes a process
// read its own writes, see local.go) and degraded mode (Options.Degraded:
// the circuit breaker around the client, and the rule that turns a server
// that cannot be reached into a miss or a dropped write, see degraded.go).
// Operations call it at fixed points: a read (read, miss), after a write
// (written, dropped), after a removal (removed), around a flush (flushed).
// Protocols (the layouts) know nothing of either mode.
type modes struct {
	b        *Backend
	recent   *recentWrites // nil without a local read cache
	degraded bool
}

func newModes(b *Backend, opts Options) modes {
	m := modes{b: b, degraded: opts.Degraded}
	if opts.LocalCacheTTL > 0 {
		m.recent = newRecentWrites(opts.LocalCacheTTL)
	}
	return m
}

// client returns c as operations use it: behind the circuit breaker in
// degraded mode.
func (m modes) client(c valkey.Client) valkey.Client {
	if !m.degraded {
		return c
	}
	o := m.b.opts
	return newBreakerClient(c, m.b.name, o.BreakerThreshold, o.BreakerCooldown, m.b.log)
}

// read reads a value key: from the local read cache when there is one and
// its copy is not older than this process's own last write of the key
// (then it asks the server), else from the server. A missing value is
// valkey's nil error.
func (m modes) read(ctx context.Context, key string) ([]byte, error) {
	c := m.b.c
	if m.recent == nil {
		return c.Do(ctx, c.B().Get().Key(key).Build()).AsBytes()
	}
	r := c.DoCache(ctx, c.B().Get().Key(key).Cache(), m.b.opts.LocalCacheTTL)
	raw, err := r.AsBytes()
	found := err == nil
	if (found || valkey.IsValkeyNil(err)) && !m.recent.check(key, found, raw) {
		// Maybe older than this process's own write: ask the server.
		return c.Do(ctx, c.B().Get().Key(key).Build()).AsBytes()
	}
	if found && r.IsCacheHit() {
		m.b.localHit.Add(ctx, 1)
	}
	return raw, err
}

// readMany reads value keys in one round trip: MGETs of Options.BatchSize
// keys when they share a slot (oneSlot: the standalone layout), else one
// GET each (valkey-go sends a Cluster's to their nodes in parallel, one
// pipeline per node); a command refused during a slot migration is sent
// again. With the local read cache every key is a cacheable
// GET (the server tracks keys one by one), and keys whose local copy may
// be older than this process's own write are read again from the server.
// vals[i] is nil when keys[i] has no value.
func (m modes) readMany(ctx context.Context, keys []string, oneSlot bool) (vals [][]byte, err error) {
	c := m.b.c
	vals = make([][]byte, len(keys))
	if m.recent != nil {
		cmds := make([]valkey.CacheableTTL, len(keys))
		for i, k := range keys {
			cmds[i] = valkey.CT(c.B().Get().Key(k).Cache(), m.b.opts.LocalCacheTTL)
		}
		var again []int // maybe older than this process's own write
		hits := 0
		for i, r := range c.DoMultiCache(ctx, cmds...) {
			raw, err := r.AsBytes()
			found := err == nil
			if !found && !valkey.IsValkeyNil(err) {
				return nil, err
			}
			if !m.recent.check(keys[i], found, raw) {
				again = append(again, i)
				continue
			}
			if found && r.IsCacheHit() {
				hits++
			}
			vals[i] = raw
		}
		if hits > 0 {
			m.b.localHit.Add(ctx, int64(hits))
		}
		if len(again) == 0 {
			return vals, nil
		}
		rs := scripts.DoMulti(ctx, c, len(again), func(j int) valkey.Completed { return c.B().Get().Key(keys[again[j]]).Build() })
		for j, r := range rs {
			raw, err := r.AsBytes()
			if err != nil && !valkey.IsValkeyNil(err) {
				return nil, err
			}
			vals[again[j]] = raw
		}
		return vals, nil
	}
	if !oneSlot {
		for i, r := range scripts.DoMulti(ctx, c, len(keys), func(i int) valkey.Completed { return c.B().Get().Key(keys[i]).Build() }) {
			raw, err := r.AsBytes()
			if err != nil && !valkey.IsValkeyNil(err) {
				return nil, err
			}
			vals[i] = raw
		}
		return vals, nil
	}
	batch := m.b.opts.BatchSize
	n := (len(keys) + batch - 1) / batch
	rs := scripts.DoMulti(ctx, c, n, func(j int) valkey.Completed {
		return c.B().Mget().Key(keys[j*batch : min((j+1)*batch, len(keys))]...).Build()
	})
	for j, r := range rs {
		arr, err := r.ToArray()
		if err != nil {
			return nil, err
		}
		for i, v := range arr {
			if raw, err := v.AsBytes(); err == nil {
				vals[j*batch+i] = raw
			}
		}
	}
	return vals, nil
}

// miss reports whether a read that failed with err counts as a miss:
// degraded mode and a server that cannot be reached.
func (m modes) miss(err error) bool { return m.degraded && unavailable(err) }

// written follows a write of value under id that ended with err: the
// local read cache expects the value (unless the write was refused: then
// nothing was written), and degraded mode drops a write the server could
// not take (counted and logged; nil error). It returns the error the
// caller reports.
func (m modes) written(ctx context.Context, id string, value []byte, err error) error {
	if m.recent != nil && !errors.Is(err, ErrFlushedWhileComputing) {
		m.recent.wrote(m.b.layout.valueKey(id), value) // on an error too: it may have been written
	}
	if m.dropped(ctx, "set", id, err) {
		return nil
	}
	return err
}

// dropped reports whether degraded mode drops the write (what, id) that
// failed with err, and counts and logs it if so.
func (m modes) dropped(ctx context.Context, what, id string, err error) bool {
	if !m.miss(err) {
		return false
	}
	m.b.tel.Add(ctx, "dropped_writes", 1)
	m.b.drops.drop(m.b.log, m.b.name, what, id, err)
	return true
}

// removed follows a removal of the values of ids (done or attempted).
func (m modes) removed(ids []string) {
	if m.recent == nil || len(ids) == 0 {
		return
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = m.b.layout.valueKey(id)
	}
	m.recent.removed(keys...)
}

// flushed follows the start, and the end, of a Flush: every value may be
// gone.
func (m modes) flushed() {
	if m.recent != nil {
		m.recent.removedAll()
	}
}
