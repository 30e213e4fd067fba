package cache

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/keyvalue-go/keyvalue/internal/glob"
	"github.com/keyvalue-go/keyvalue/internal/scripts"
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
	pattern := glob.Escape(b.prefix+"i:") + "*"
	if b.opts.Sharded {
		pattern = glob.Escape(b.prefix) + "[ip]:{*"
	}
	for page, err := range b.scanKeys(ctx, pattern) {
		if err != nil {
			return st, err
		}
		var tags []string
		for _, k := range page {
			if kind := b.kindOf(k); kind != indexKey && kind != pendingKey {
				continue
			}
			if t := b.tagOf(k); !seen[t] {
				seen[t] = true
				tags = append(tags, t)
			}
		}
		if b.opts.Sharded {
			for _, t := range tags {
				n, gone, err := b.gcShardedIndex(ctx, t)
				st.add(b, t, n, gone, err)
			}
		} else {
			b.gcIndexes(ctx, tags, &st)
		}
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
		b.log.Error("cache gc: skipped a tag index it cannot read", "cache", b.name, "key", b.indexKey(tag), "error", err)
	}
}

// gcGroup is how many indexes gcIndexes works on at once: enough to
// pipeline, few enough that the server answers other clients in between
// (a pipeline of a hundred prune scripts of a thousand keys each held
// another client's PING for 70ms).
const gcGroup = 8

// gcIndexes checks the members of several indexes (standalone layout), a
// few at a time, page by page, with two pipelined round trips per page:
// the pages, then one prune script per page.
func (b *Backend) gcIndexes(ctx context.Context, tags []string, st *GCStats) {
	for group := range slices.Chunk(tags, gcGroup) {
		b.gcIndexGroup(ctx, group, st)
	}
}

func (b *Backend) gcIndexGroup(ctx context.Context, tags []string, st *GCStats) {
	type state struct {
		tag     string
		offset  int // rank of the next page: members before it were kept
		page    int // members read in the last page
		removed int
		gone    bool
		err     error
	}
	all := make([]*state, len(tags))
	for i, t := range tags {
		all[i] = &state{tag: t}
	}
	// Pages by rank, without scores (formatting scores costs the server more
	// than the ranges): removed members free their ranks, so the next page
	// starts after the ones kept. A member others remove meanwhile may shift
	// one past a page; the next run finds it.
	open := all
	for len(open) > 0 && ctx.Err() == nil {
		rs := scripts.DoMulti(ctx, b.c, len(open), func(i int) valkey.Completed {
			return b.c.B().Zrange().Key(b.indexKey(open[i].tag)).Min(strconv.Itoa(open[i].offset)).Max(strconv.Itoa(open[i].offset + b.opts.BatchSize - 1)).Build()
		})
		groups := map[string][]string{}
		var next []*state
		for i, r := range rs {
			s := open[i]
			ids, err := r.AsStrSlice()
			if err != nil {
				s.err = err
				continue
			}
			s.page = len(ids)
			if len(ids) > 0 {
				groups[s.tag] = ids
			}
			if len(ids) == b.opts.BatchSize {
				next = append(next, s)
			}
		}
		res := b.pruneEach(ctx, groups)
		for _, s := range open {
			if r, ok := res[s.tag]; ok {
				s.removed += r.removed
				s.offset += s.page - r.removed
				s.gone = s.gone || r.gone
				if r.err != nil && s.err == nil {
					s.err = r.err
				}
			}
		}
		open = next
	}
	for _, s := range all {
		st.add(b, s.tag, s.removed, s.gone, s.err)
	}
}

type pruneResult struct {
	removed int
	gone    bool
	err     error
}

// pruneEach removes, from each tag's index, the listed ids unless their
// entry is live with that tag: one script per tag and batch of
// Options.BatchSize, pipelined. It returns a result per tag.
func (b *Backend) pruneEach(ctx context.Context, groups map[string][]string) map[string]pruneResult {
	// Small groups share a script call (up to BatchSize ids per call); a
	// large one is split into calls of BatchSize ids.
	var execs []valkey.LuaExec
	var tagsOf [][]string // the tags of each call, in order
	var cur []string      // the tags of the call being built
	var curIDs [][]string
	flush := func() {
		if len(cur) == 0 {
			return
		}
		e := valkey.LuaExec{Args: []string{strconv.Itoa(len(cur))}}
		for _, t := range cur {
			e.Keys = append(e.Keys, b.indexKey(t))
			e.Args = append(e.Args, t)
		}
		for _, ids := range curIDs {
			e.Args = append(e.Args, strconv.Itoa(len(ids)))
		}
		for _, ids := range curIDs {
			for _, id := range ids {
				e.Keys = append(e.Keys, b.valueKey(id))
				e.Args = append(e.Args, id)
			}
		}
		execs = append(execs, e)
		tagsOf = append(tagsOf, cur)
		cur, curIDs = nil, nil
	}
	size := 0
	for _, tag := range slices.Sorted(maps.Keys(groups)) {
		for batch := range slices.Chunk(groups[tag], b.opts.BatchSize) {
			if size+len(batch) > b.opts.BatchSize {
				flush()
				size = 0
			}
			cur = append(cur, tag)
			curIDs = append(curIDs, batch)
			size += len(batch)
		}
	}
	flush()
	out := make(map[string]pruneResult, len(groups))
	for i, r := range scripts.CachePrune.ExecMulti(ctx, b.c, execs...) {
		n, err := r.AsIntSlice()
		if err == nil && len(n) != 2*len(tagsOf[i]) {
			err = fmt.Errorf("unexpected reply %v", n)
		}
		for j, tag := range tagsOf[i] {
			res := out[tag]
			if err != nil {
				res.err = cmp.Or(res.err, err)
			} else {
				res.removed += int(n[2*j])
				res.gone = n[2*j+1] == 1 // the last batch's answer is the index's state
			}
			out[tag] = res
		}
	}
	return out
}
