package cache

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/valkey-io/valkey-go"
)

// GCStats summarizes a CollectGarbage run.
type GCStats struct {
	Indexes        int // tag indexes visited
	RemovedMembers int // memberships removed (entries expired, removed, or no longer tagged)
	IndexesRemoved int // indexes that vanished with their last member
	Skipped        int // keys that could not be read (wrong type); each is logged by name
}

// CollectGarbage removes, from this cache's tag indexes, the members whose
// entry expired, was removed, or no longer has the tag; emptied indexes
// disappear. Writes prune expired members of the indexes they touch, so
// indexes stay bounded without it; it is for indexes nobody writes to and
// for entries without expiry. It walks the indexes with SCAN and each
// index in pages (ZRANGE by rank; ZSCAN in sharded mode), checking and
// removing members with one script per page, so no call blocks the server
// for long and an entry written again meanwhile keeps its membership. A key that cannot be read
// is skipped and logged, never the end of the run. progress, if not nil,
// gets the indexes visited.
func (b *Backend) CollectGarbage(ctx context.Context, progress Progress) (st GCStats, err error) {
	ctx, sp := b.tel.Start(ctx, "collect_garbage")
	defer func() { sp.End(ctx, err) }()
	return b.collectGarbageOp(ctx, progress)
}

// collectGarbageOp is CollectGarbage without telemetry.
func (b *Backend) collectGarbageOp(ctx context.Context, progress Progress) (GCStats, error) {
	start := time.Now()
	st, _, err := b.collect(ctx, progress)
	if err != nil {
		return st, fmt.Errorf("cache %s: gc: %w", b.name, err)
	}
	b.log.Info("cache garbage collected", "cache", b.name, "indexes", st.Indexes, "removed_members", st.RemovedMembers,
		"indexes_removed", st.IndexesRemoved, "skipped", st.Skipped, "took", time.Since(start))
	return st, nil
}

// gcRun is one walk over the indexes: the counts, and the index keys found
// holding another type than an index's (a key someone else wrote there).
type gcRun struct {
	GCStats
	foreign []string
}

// collectTags garbage-collects the indexes of tags (found by a walk of
// the keyspace that already ran: Flush's).
func (b *Backend) collectTags(ctx context.Context, tags []string) (GCStats, []string, error) {
	var run gcRun
	b.layout.collect(ctx, tags, &run)
	return run.GCStats, run.foreign, ctx.Err()
}

// collect garbage-collects every index of the cache.
func (b *Backend) collect(ctx context.Context, progress Progress) (GCStats, []string, error) {
	var run gcRun
	st := &run.GCStats
	seen := map[string]bool{} // SCAN may return a key twice
	for page, err := range b.scanKeys(ctx, b.layout.indexPattern()) {
		if err != nil {
			return *st, run.foreign, err
		}
		var tags []string
		for _, k := range page {
			if kind := b.layout.kindOf(k); kind != indexKey && kind != pendingKey {
				continue
			}
			if t := b.layout.tagOf(k); !seen[t] {
				seen[t] = true
				tags = append(tags, t)
			}
		}
		b.layout.collect(ctx, tags, &run)
		if progress != nil {
			progress(st.Indexes)
		}
		if err := b.step("gc", "page"); err != nil {
			return *st, run.foreign, err
		}
		if ctx.Err() != nil {
			return *st, run.foreign, ctx.Err()
		}
	}
	return *st, run.foreign, nil
}

// add counts one index's result; an error skips the index (logged), and
// a key of another type is remembered.
func (run *gcRun) add(b *Backend, tag string, removed int, gone bool, err error) {
	run.Indexes++
	run.RemovedMembers += removed
	if gone {
		run.IndexesRemoved++
	}
	if err != nil {
		run.Skipped++
		var ve *valkey.ValkeyError
		if errors.As(err, &ve) && strings.HasPrefix(ve.Error(), "WRONGTYPE") {
			run.foreign = append(run.foreign, b.layout.indexKey(tag))
		}
		b.log.Error("cache gc: skipped a tag index it cannot read", "cache", b.name, "key", b.layout.indexKey(tag), "error", err)
	}
}
