package cache

import (
	"context"
	"fmt"
	"iter"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/keyvalue-go/keyvalue/internal/scripts"
	"github.com/valkey-io/valkey-go"
)

// Progress reports a long operation's advance: keys or tag sets handled so far.
type Progress func(done int)

// primaries returns a client per primary: c itself unless c is a Cluster
// client, whose replicas are skipped.
func primaries(ctx context.Context, c valkey.Client) ([]valkey.Client, error) {
	if c.Mode() != valkey.ClientModeCluster {
		return []valkey.Client{c}, nil
	}
	nodes := c.Nodes()
	var out []valkey.Client
	for _, addr := range slices.Sorted(maps.Keys(nodes)) {
		n := nodes[addr]
		role, err := n.Do(ctx, n.B().Role().Build()).ToArray()
		if err != nil {
			return nil, fmt.Errorf("ROLE on %s: %w", addr, err)
		}
		if len(role) > 0 {
			if r, _ := role[0].ToString(); r == "master" {
				out = append(out, n)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no primary among %d cluster nodes", len(nodes))
	}
	return out, nil
}

// scanKeys yields batches of keys matching pattern on every primary,
// with SCAN (never KEYS). The batch slice is reused between iterations.
func (b *Backend) scanKeys(ctx context.Context, pattern string) iter.Seq2[[]string, error] {
	return func(yield func([]string, error) bool) {
		nodes, err := primaries(ctx, b.c)
		if err != nil {
			yield(nil, err)
			return
		}
		for _, n := range nodes {
			var cursor uint64
			for {
				e, err := n.Do(ctx, n.B().Scan().Cursor(cursor).Match(pattern).Count(int64(b.opts.BatchSize)).Build()).AsScanEntry()
				if err != nil {
					yield(nil, err)
					return
				}
				if len(e.Elements) > 0 && !yield(e.Elements, nil) {
					return
				}
				if cursor = e.Cursor; cursor == 0 {
					break
				}
			}
		}
	}
}

// globEscape escapes Redis glob metacharacters.
func globEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`, `]`, `\]`)
	return r.Replace(s)
}

// Flush removes every key of this cache, and nothing else, with SCAN and
// UNLINK in batches of Options.BatchSize on every primary, so the server
// keeps serving other clients between batches and frees memory in the
// background. It returns the number of keys removed (entries and
// bookkeeping). progress, if not nil, is called after each batch.
func (b *Backend) Flush(ctx context.Context, progress Progress) (int, error) {
	start := time.Now()
	removed := 0
	for batch, err := range b.scanKeys(ctx, globEscape(b.prefix)+"*") {
		if err != nil {
			return removed, fmt.Errorf("cache %s: flush: %w", b.name, err)
		}
		n, err := b.c.Do(ctx, b.c.B().Unlink().Key(batch...).Build()).AsInt64()
		if err != nil {
			return removed, fmt.Errorf("cache %s: flush: %w", b.name, err)
		}
		removed += int(n)
		if progress != nil {
			progress(removed)
		}
	}
	b.log.Info("cache flushed", "cache", b.name, "keys", removed, "took", time.Since(start))
	return removed, nil
}

// GCStats summarizes a CollectGarbage run.
type GCStats struct {
	TagSets        int // tag sets visited
	RemovedMembers int // ids of expired entries removed from tag sets
}

// CollectGarbage removes ids of expired entries from this cache's tag sets
// (emptied sets disappear). It walks the tag sets with SCAN and each set
// with SSCAN, checking and removing members in one script call per batch,
// so no call blocks the server for long and an entry written again
// meanwhile keeps its tag. progress, if not nil, gets the tag sets visited.
func (b *Backend) CollectGarbage(ctx context.Context, progress Progress) (GCStats, error) {
	start := time.Now()
	var st GCStats
	for batch, err := range b.scanKeys(ctx, globEscape(b.gPrefix)+"*") {
		if err != nil {
			return st, fmt.Errorf("cache %s: gc: %w", b.name, err)
		}
		for _, key := range batch {
			n, err := b.gcTagSet(ctx, key)
			if err != nil {
				return st, fmt.Errorf("cache %s: gc %s: %w", b.name, key, err)
			}
			st.RemovedMembers += n
			st.TagSets++
		}
		if progress != nil {
			progress(st.TagSets)
		}
	}
	b.log.Info("cache garbage collected", "cache", b.name, "tag_sets", st.TagSets, "removed_members", st.RemovedMembers, "took", time.Since(start))
	return st, nil
}

// gcTagSet checks one tag set's members in SSCAN-sized batches.
func (b *Backend) gcTagSet(ctx context.Context, key string) (int, error) {
	removed := 0
	var cursor uint64
	for {
		e, err := b.c.Do(ctx, b.c.B().Sscan().Key(key).Cursor(cursor).Count(int64(b.opts.BatchSize)).Build()).AsScanEntry()
		if err != nil {
			return removed, err
		}
		if len(e.Elements) > 0 {
			n, err := scripts.CacheGC.Exec(ctx, b.c, []string{key}, append([]string{b.dPrefix}, e.Elements...)).AsInt64()
			if err != nil {
				return removed, err
			}
			removed += int(n)
		}
		if cursor = e.Cursor; cursor == 0 {
			return removed, nil
		}
	}
}
