package cache

import (
	"context"
	"fmt"
	"iter"
	"slices"
	"strings"
	"time"

	"github.com/keyvalue-go/keyvalue/internal/glob"
	"github.com/keyvalue-go/keyvalue/internal/scan"
	"github.com/keyvalue-go/keyvalue/internal/scripts"
	"github.com/valkey-io/valkey-go"
)

// Progress reports a long operation's advance: keys or tag sets handled so far.
type Progress func(done int)

// scanKeys yields pages of this cache's keys matching pattern on every
// primary, with SCAN (never KEYS).
func (b *Backend) scanKeys(ctx context.Context, pattern string) iter.Seq2[[]string, error] {
	return scan.Keys(ctx, b.c, pattern, b.opts.BatchSize)
}

// Flush removes every key of this cache, and nothing else, with SCAN and
// UNLINK in batches of Options.BatchSize on every primary, so the server
// keeps serving other clients between batches and frees memory in the
// background. It returns the number of keys removed (entries and
// bookkeeping). progress, if not nil, is called after each batch.
func (b *Backend) Flush(ctx context.Context, progress Progress) (int, error) {
	start := time.Now()
	removed := 0
	// Each UNLINK runs while the next SCAN page is fetched, so a flush costs
	// about one round trip per page instead of two.
	var pending chan unlinkResult
	wait := func() error {
		if pending == nil {
			return nil
		}
		r := <-pending
		pending = nil
		removed += r.n
		if r.err == nil && progress != nil {
			progress(removed)
		}
		return r.err
	}
	for batch, err := range b.scanKeys(ctx, glob.Escape(b.prefix)+"*") {
		if err == nil {
			err = wait()
		}
		if err != nil {
			_ = wait()
			return removed, fmt.Errorf("cache %s: flush: %w", b.name, err)
		}
		pending = make(chan unlinkResult, 1)
		go func(keys []string, out chan<- unlinkResult) {
			n, err := b.unlink(ctx, keys)
			out <- unlinkResult{n, err}
		}(batch, pending)
	}
	if err := wait(); err != nil {
		return removed, fmt.Errorf("cache %s: flush: %w", b.name, err)
	}
	b.log.Info("cache flushed", "cache", b.name, "keys", removed, "took", time.Since(start))
	return removed, nil
}

// unlink removes keys: with one UNLINK when they share a slot, else with
// a pipeline of single-key UNLINKs (sharded caches span slots).
func (b *Backend) unlink(ctx context.Context, keys []string) (int, error) {
	if !b.opts.Sharded {
		n, err := b.c.Do(ctx, b.c.B().Unlink().Key(keys...).Build()).AsInt64()
		return int(n), err
	}
	cmds := make(valkey.Commands, len(keys))
	for i, k := range keys {
		cmds[i] = b.c.B().Unlink().Key(k).Build()
	}
	total := 0
	for _, r := range b.c.DoMulti(ctx, cmds...) {
		n, err := r.AsInt64()
		if err != nil {
			return total, err
		}
		total += int(n)
	}
	return total, nil
}

type unlinkResult struct {
	n   int
	err error
}

// GCStats summarizes a CollectGarbage run.
type GCStats struct {
	TagSets        int // tag sets visited
	RemovedMembers int // ids of expired entries removed from tag sets
}

// CollectGarbage removes ids of expired entries from this cache's tag sets
// (emptied sets disappear). It walks the tag sets with SCAN and, for each
// page of tag sets, SSCANs them together in one pipeline and checks and
// removes members with one script call per set in a second pipeline, so no
// call blocks the server for long and an entry written again meanwhile
// keeps its tag. progress, if not nil, gets the tag sets visited.
func (b *Backend) CollectGarbage(ctx context.Context, progress Progress) (GCStats, error) {
	start := time.Now()
	var st GCStats
	for batch, err := range b.scanKeys(ctx, glob.Escape(b.gPrefix)+"*") {
		if err == nil {
			var n int
			if b.opts.Sharded {
				n, err = b.gcShardedTagSets(ctx, batch)
			} else {
				n, err = b.gcTagSets(ctx, batch)
			}
			st.RemovedMembers += n
		}
		if err != nil {
			return st, fmt.Errorf("cache %s: gc: %w", b.name, err)
		}
		st.TagSets += len(batch)
		if progress != nil {
			progress(st.TagSets)
		}
	}
	b.log.Info("cache garbage collected", "cache", b.name, "tag_sets", st.TagSets, "removed_members", st.RemovedMembers, "took", time.Since(start))
	return st, nil
}

// gcTagSets checks the members of several tag sets, SSCAN page by page,
// with two pipelined round trips per page.
func (b *Backend) gcTagSets(ctx context.Context, keys []string) (int, error) {
	removed := 0
	cursors := make(map[string]uint64, len(keys))
	open := slices.Clone(keys)
	for len(open) > 0 {
		scans := make(valkey.Commands, len(open))
		for i, k := range open {
			scans[i] = b.c.B().Sscan().Key(k).Cursor(cursors[k]).Count(int64(b.opts.BatchSize)).Build()
		}
		var execs []valkey.LuaExec
		next := open[:0]
		for i, r := range b.c.DoMulti(ctx, scans...) {
			e, err := r.AsScanEntry()
			if err != nil {
				return removed, fmt.Errorf("SSCAN %s: %w", open[i], err)
			}
			if len(e.Elements) > 0 {
				execs = append(execs, valkey.LuaExec{Keys: []string{open[i]}, Args: append([]string{b.dPrefix}, e.Elements...)})
			}
			if e.Cursor != 0 {
				cursors[open[i]] = e.Cursor
				next = append(next, open[i])
			}
		}
		open = next
		if len(execs) == 0 {
			continue
		}
		for _, r := range scripts.CacheGC.ExecMulti(ctx, b.c, execs...) {
			n, err := r.AsInt64()
			if err != nil {
				return removed, err
			}
			removed += int(n)
		}
	}
	return removed, nil
}

// Stats describes a cache's size.
type Stats struct {
	Entries     int   // data keys
	Tags        int   // tag sets
	Keys        int   // all keys of the cache (entries, tag lists, tag sets)
	MemoryBytes int64 // estimate from MEMORY USAGE of a sample of keys
	Sampled     int   // keys whose memory was measured
}

// Stats counts the cache's keys with SCAN (never KEYS) and estimates its
// memory from MEMORY USAGE on up to sample keys per SCAN page.
// progress, if not nil, gets the keys counted so far.
func (b *Backend) Stats(ctx context.Context, progress Progress) (Stats, error) {
	const samplePerPage = 20
	var st Stats
	var sampledBytes int64
	for batch, err := range b.scanKeys(ctx, glob.Escape(b.prefix)+"*") {
		if err != nil {
			return st, fmt.Errorf("cache %s: stats: %w", b.name, err)
		}
		st.Keys += len(batch)
		for _, k := range batch {
			switch {
			case strings.HasPrefix(k, b.gPrefix):
				st.Tags++
			case b.opts.Sharded && strings.HasSuffix(k, "}:d"), !b.opts.Sharded && strings.HasPrefix(k, b.dPrefix):
				st.Entries++
			}
		}
		sample := batch[:min(len(batch), samplePerPage)]
		cmds := make(valkey.Commands, len(sample))
		for i, k := range sample {
			cmds[i] = b.c.B().MemoryUsage().Key(k).Build()
		}
		for _, r := range b.c.DoMulti(ctx, cmds...) {
			n, err := r.AsInt64()
			if valkey.IsValkeyNil(err) {
				continue // expired meanwhile
			}
			if err != nil {
				return st, fmt.Errorf("cache %s: stats: MEMORY USAGE: %w", b.name, err)
			}
			sampledBytes += n
			st.Sampled++
		}
		if progress != nil {
			progress(st.Keys)
		}
	}
	if st.Sampled > 0 {
		st.MemoryBytes = sampledBytes * int64(st.Keys) / int64(st.Sampled)
	}
	return st, nil
}
