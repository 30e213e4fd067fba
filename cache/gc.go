package cache

import (
	"context"
	"fmt"
	"time"
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
	st, err := b.collect(ctx, progress)
	if err != nil {
		return st, fmt.Errorf("cache %s: gc: %w", b.name, err)
	}
	b.log.Info("cache garbage collected", "cache", b.name, "indexes", st.Indexes, "removed_members", st.RemovedMembers,
		"indexes_removed", st.IndexesRemoved, "skipped", st.Skipped, "took", time.Since(start))
	return st, nil
}

func (b *Backend) collect(ctx context.Context, progress Progress) (GCStats, error) {
	var st GCStats
	seen := map[string]bool{} // SCAN may return a key twice
	for page, err := range b.scanKeys(ctx, b.layout.indexPattern()) {
		if err != nil {
			return st, err
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
		b.layout.collect(ctx, tags, &st)
		if progress != nil {
			progress(st.Indexes)
		}
		if err := b.step("gc", "page"); err != nil {
			return st, err
		}
		if ctx.Err() != nil {
			return st, ctx.Err()
		}
	}
	return st, nil
}

// add counts one index's result; an error skips the index (logged).
func (st *GCStats) add(b *Backend, tag string, removed int, gone bool, err error) {
	st.Indexes++
	st.RemovedMembers += removed
	if gone {
		st.IndexesRemoved++
	}
	if err != nil {
		st.Skipped++
		b.log.Error("cache gc: skipped a tag index it cannot read", "cache", b.name, "key", b.layout.indexKey(tag), "error", err)
	}
}
