package cache

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/keyvalue-go/keyvalue/internal/scan"
	"github.com/keyvalue-go/keyvalue/internal/scripts"
	"github.com/valkey-io/valkey-go"
)

// Sharded mode (Options.Sharded) spreads one cache over a Cluster:
//
//	kv:c:NAME:{ID}:v    value (header, tags, payload)       slot of ID
//	kv:c:NAME:i:{TAG}   sorted set: ids tagged TAG          slot of TAG
//	kv:c:NAME:p:{TAG}   sorted set: pending marks of TAG    slot of TAG
//
// A member's score is when it may be dropped (its entry's expiry on the
// tag node's clock plus the slack, or unlimited); every add and every
// commit raises it. No script can span a value and an index, so writes
// follow a protocol that keeps the invariant (a live value is a member of
// each of its tags' indexes) at every instant:
//
//  1. Set adds the id to each tag's index and marks it pending there (the
//     mark's score is a deadline: now + slack), then writes the value if
//     the value node's clock is still before the earliest deadline minus
//     half the slack (else it starts again), then clears the pending marks
//     and raises the scores (commit). Tags the entry no longer has keep
//     the id until it expires there or garbage collection finds it.
//  2. Removal (Remove, FlushByTags) reads the scores of the memberships it
//     will drop, deletes the values, then drops each membership only if
//     its score did not rise and it is not pending: a Set that wrote the
//     value again after the deletion raised the score or still has its
//     mark.
//  3. CollectGarbage drops members whose score is in the past and members
//     whose value is gone or lacks the tag (by rule 2: score read before
//     the value), and settles marks whose deadline passed a slack ago (a
//     Set stopped between its steps): after the deadline no value can be
//     written under the mark, so the value read then decides.
//
// The slack must exceed the clock difference between nodes.

// shardedSlack is the slack of sharded memberships and pending marks
// (tests shorten a Backend's copy, Backend.slack).
const shardedSlack = time.Minute

// shardedLayout is the sharded layout (Options.Sharded) of a cache.
type shardedLayout struct {
	b *Backend
	p string // kv:c:NAME:
}

func (l *shardedLayout) prefix() string                  { return l.p }
func (l *shardedLayout) entryKey(kind, id string) string { return l.p + "{" + id + "}:" + kind }
func (l *shardedLayout) valueKey(id string) string       { return l.entryKey("v", id) }
func (l *shardedLayout) leaseKey(id string) string       { return l.entryKey("l", id) }
func (l *shardedLayout) wakeKey(id string) string        { return l.entryKey("n", id) }
func (l *shardedLayout) indexKey(tag string) string      { return l.p + "i:{" + tag + "}" }
func (l *shardedLayout) pendingKey(tag string) string    { return l.p + "p:{" + tag + "}" }
func (l *shardedLayout) indexPattern() string            { return scan.Escape(l.p) + "[ip]:{*" }
func (l *shardedLayout) oneSlot() bool                   { return false }

func (l *shardedLayout) kindOf(key string) keyKind {
	switch rest := key[len(l.p):]; {
	case hasPrefixes(rest, "i:{", "}"):
		return indexKey
	case hasPrefixes(rest, "p:{", "}"):
		return pendingKey
	case hasPrefixes(rest, "{", "}:v"):
		return valueKey
	}
	return otherKey
}

func (l *shardedLayout) tagOf(key string) string {
	rest := key[len(l.p)+2:]
	return rest[1 : len(rest)-1]
}

// stampFlush does nothing and returns no write mark: the sharded layout
// keeps no flush stamps (an
// entry's value and its tags' indexes live on different nodes; see
// "Computing missing entries" in the package doc).
func (l *shardedLayout) stampFlush(context.Context) (string, error) { return "", nil }

// dropIndexes leaves every index to garbage collection: without flush
// stamps there is no write mark.
func (l *shardedLayout) dropIndexes(_ context.Context, _ string, tags []string) (int, []string, []string, error) {
	return 0, nil, tags, nil
}

// unlink removes keys with a pipeline of single-key UNLINKs (they span
// slots); calls refused during a slot migration are sent again.
func (l *shardedLayout) unlink(ctx context.Context, keys []string) (int, error) {
	total := 0
	for _, r := range scripts.DoMulti(ctx, l.b.c, len(keys), func(i int) valkey.Completed {
		return l.b.c.B().Unlink().Key(keys[i]).Build()
	}) {
		n, err := r.AsInt64()
		if err != nil {
			return total, err
		}
		total += int(n)
	}
	return total, nil
}

// set writes the values with their memberships (steps 1 and 2 above),
// then ends the guards' leases: the sharded layout does not check flush
// stamps.
func (l *shardedLayout) set(ctx context.Context, ws []write) []error {
	errs := l.write(ctx, ws)
	var leases []leaseRef
	for _, w := range ws {
		if w.g.token != "" {
			leases = append(leases, leaseRef{w.id, w.g.token})
		}
	}
	l.b.releaseLeases(ctx, leases)
	return errs
}

func (l *shardedLayout) remove(ctx context.Context, ids []string) (int, error) {
	return l.removeIDs(ctx, ids, nil)
}

// collect garbage-collects the tags' indexes one after the other.
func (l *shardedLayout) collect(ctx context.Context, tags []string, run *gcRun) {
	for _, t := range tags {
		n, gone, err := l.gcIndex(ctx, t)
		run.add(l.b, t, n, gone, err)
	}
}

// write is steps 1 and 2 of the protocol for every entry, each step one
// pipeline for all of them (valkey-go sends each node its part, the nodes
// in parallel). An entry whose value could not be written before its
// deadline is tagged again, up to three times.
func (l *shardedLayout) write(ctx context.Context, ws []write) []error {
	b := l.b
	errs := make([]error, len(ws))
	slack := b.slack.Milliseconds()
	todo := make([]int, len(ws))
	for i := range todo {
		todo[i] = i
	}
	for range 3 {
		// 1. Memberships, pending.
		deadline := make(map[int]int64, len(todo))
		var execs []valkey.LuaExec
		var owner []int // the write of each exec
		for _, i := range todo {
			deadline[i] = math.MaxInt64 / 2
			for _, t := range ws[i].tags {
				execs = append(execs, valkey.LuaExec{Keys: []string{l.indexKey(t), l.pendingKey(t)}, Args: []string{ws[i].id, strconv.FormatInt(ws[i].ms, 10), strconv.FormatInt(slack, 10)}})
				owner = append(owner, i)
			}
		}
		if len(execs) > 0 {
			for k, r := range scripts.CacheTagAdd.ExecMulti(ctx, b.c, execs...) {
				d, err := r.AsInt64()
				if err != nil {
					errs[owner[k]] = fmt.Errorf("tag: %w", err)
					continue
				}
				deadline[owner[k]] = min(deadline[owner[k]], d)
			}
			if err := b.step("set", "tagged"); err != nil {
				return failRest(errs, err)
			}
		}
		// 2. The values, unless their deadline passed.
		var live []int
		for _, i := range todo {
			if errs[i] == nil {
				live = append(live, i)
			}
		}
		execs = execs[:0]
		for _, i := range live {
			execs = append(execs, valkey.LuaExec{Keys: []string{l.valueKey(ws[i].id)},
				Args: []string{valkey.BinaryString(ws[i].value), strconv.FormatInt(ws[i].ms, 10), strconv.FormatInt(deadline[i], 10), strconv.FormatInt(slack/2, 10)}})
		}
		var again, tagged []int
		if len(execs) > 0 {
			for k, r := range scripts.CacheSetSharded.ExecMulti(ctx, b.c, execs...) {
				i := live[k]
				ok, err := r.AsInt64()
				switch {
				case err != nil:
					errs[i] = err
				case ok != 1:
					b.log.Warn("cache: sharded set missed its deadline between tagging and writing; tagging again", "cache", b.name, "id", ws[i].id)
					again = append(again, i)
				case len(ws[i].tags) > 0:
					tagged = append(tagged, i)
				}
			}
		}
		if len(tagged) > 0 {
			if err := b.step("set", "written"); err != nil {
				return failRest(errs, err)
			}
			// 3. Commit.
			execs = execs[:0]
			owner = owner[:0]
			for _, i := range tagged {
				for _, t := range ws[i].tags {
					execs = append(execs, valkey.LuaExec{Keys: []string{l.indexKey(t), l.pendingKey(t)}, Args: []string{ws[i].id}})
					owner = append(owner, i)
				}
			}
			failed := map[int][]error{}
			for k, r := range scripts.CacheTagCommit.ExecMulti(ctx, b.c, execs...) {
				if err := r.Error(); err != nil {
					failed[owner[k]] = append(failed[owner[k]], err)
				}
			}
			for i, fs := range failed {
				// The value is stored and its memberships are in place
				// (pending until garbage collection settles them).
				errs[i] = fmt.Errorf("stored, but clearing its pending marks failed: %w", joinErrors(fs...))
			}
		}
		if todo = again; len(todo) == 0 {
			return errs
		}
	}
	for _, i := range todo {
		errs[i] = fmt.Errorf("the value could not be written within %s of tagging, three times: is this process stalled, or do the cluster nodes' clocks differ by more than that?", b.slack/2)
	}
	return errs
}

// membership is one id in one tag's index, with the score read for it.
type membership struct {
	tag, id string
	score   float64
}

// removeIDs removes entries by id: it reads their tags, reads the
// scores of their memberships (those in known were read before), deletes
// the values and then drops the memberships whose score did not rise. When
// flushing is not empty, only values carrying one of those tags are
// deleted; the known memberships of the others are dropped by the same
// rule. It returns how many values it deleted.
func (l *shardedLayout) removeIDs(ctx context.Context, ids []string, known []membership, flushing ...string) (int, error) {
	b := l.b
	if len(ids) == 0 {
		return 0, nil
	}
	tagsOf, err := b.readTags(ctx, ids)
	if err != nil {
		return 0, err
	}
	var doomed []string
	have := map[[2]string]bool{}
	for _, m := range known {
		have[[2]string{m.tag, m.id}] = true
	}
	var unknown []membership
	for _, id := range ids {
		tags, ok := tagsOf[id]
		if !ok || len(flushing) > 0 && !slices.ContainsFunc(tags, func(t string) bool { return slices.Contains(flushing, t) }) {
			continue
		}
		doomed = append(doomed, id)
		for _, t := range tags {
			if !have[[2]string{t, id}] {
				unknown = append(unknown, membership{tag: t, id: id})
			}
		}
	}
	// Scores of the other memberships, read before the values go.
	rs := scripts.DoMulti(ctx, b.c, len(unknown), func(i int) valkey.Completed {
		return b.c.B().Zscore().Key(l.indexKey(unknown[i].tag)).Member(unknown[i].id).Build()
	})
	all := slices.Clone(known)
	for i, r := range rs {
		s, err := r.AsFloat64()
		if valkey.IsValkeyNil(err) {
			continue // not a member
		}
		if err != nil {
			return 0, err
		}
		unknown[i].score = s
		all = append(all, unknown[i])
	}
	if err := b.step("remove", "scores-read"); err != nil {
		return 0, err
	}
	removed := 0
	for i, r := range scripts.DoMulti(ctx, b.c, len(doomed), func(i int) valkey.Completed {
		return b.c.B().Unlink().Key(l.valueKey(doomed[i])).Build()
	}) {
		n, err := r.AsInt64()
		if err != nil {
			return removed, fmt.Errorf("unlink %s: %w", l.valueKey(doomed[i]), err)
		}
		removed += int(n)
	}
	if err := b.step("remove", "values-removed"); err != nil {
		return removed, err
	}
	_, err = l.dropMemberships(ctx, all)
	return removed, err
}

// dropMemberships drops memberships whose score did not rise since it was
// read and that are not pending, one script per tag and batch, pipelined.
// It returns how many it dropped.
func (l *shardedLayout) dropMemberships(ctx context.Context, ms []membership) (int, error) {
	b := l.b
	byTag := map[string][]membership{}
	for _, m := range ms {
		byTag[m.tag] = append(byTag[m.tag], m)
	}
	var execs []valkey.LuaExec
	for _, tag := range slices.Sorted(maps.Keys(byTag)) {
		for batch := range slices.Chunk(byTag[tag], b.opts.BatchSize) {
			e := valkey.LuaExec{Keys: []string{l.indexKey(tag), l.pendingKey(tag)}, Args: make([]string, 0, 2*len(batch))}
			for _, m := range batch {
				e.Args = append(e.Args, m.id, strconv.FormatFloat(m.score, 'f', -1, 64))
			}
			execs = append(execs, e)
		}
	}
	dropped := 0
	var errs []error
	for i, r := range scripts.CacheTagRemove.ExecMulti(ctx, b.c, execs...) {
		n, err := r.AsIntSlice()
		if err != nil {
			errs = append(errs, &keyError{execs[i].Keys[0], err})
			continue
		}
		dropped += int(n[0])
	}
	return dropped, joinErrors(errs...)
}

// flushByTags reads the tags' indexes with their scores, then removes the
// entries read, batch by batch (removeIDs).
func (l *shardedLayout) flushByTags(ctx context.Context, tags []string) (int, []string, error) {
	b := l.b
	rs := scripts.DoMulti(ctx, b.c, len(tags), func(i int) valkey.Completed {
		return b.c.B().Zrange().Key(l.indexKey(tags[i])).Min("0").Max("-1").Withscores().Build()
	})
	var (
		ids   []string
		seen  = map[string]bool{}
		known []membership
		errs  []error
	)
	for i, r := range rs {
		zs, err := r.AsZScores()
		if err != nil {
			b.log.Error("cache: cannot read a tag index; its entries were not flushed", "cache", b.name, "key", l.indexKey(tags[i]), "error", err)
			errs = append(errs, fmt.Errorf("read %s: %w", l.indexKey(tags[i]), err))
			continue
		}
		for _, z := range zs {
			known = append(known, membership{tag: tags[i], id: z.Member, score: z.Score})
			if !seen[z.Member] {
				seen[z.Member] = true
				ids = append(ids, z.Member)
			}
		}
	}
	if err := b.step("flush-by-tags", "read"); err != nil {
		return 0, nil, err
	}
	removed, tried := 0, 0
	for batch := range slices.Chunk(ids, b.opts.BatchSize) {
		tried += len(batch)
		in := map[string]bool{}
		for _, id := range batch {
			in[id] = true
		}
		var k []membership
		for _, m := range known {
			if in[m.id] {
				k = append(k, m)
			}
		}
		n, err := l.removeIDs(ctx, batch, k, tags...)
		removed += n
		if err != nil {
			return removed, ids[:tried], joinErrors(append(errs, err)...)
		}
	}
	return removed, ids, joinErrors(errs...)
}

// gcIndex garbage-collects one tag's index (see the protocol
// above) and reports the members removed and whether the index is gone.
func (l *shardedLayout) gcIndex(ctx context.Context, tag string) (int, bool, error) {
	b := l.b
	index, pending := l.indexKey(tag), l.pendingKey(tag)
	// Pending marks whose deadline passed a full slack ago.
	marks, err := scripts.CacheTagPending.Exec(ctx, b.c, []string{pending}, nil).AsStrSlice()
	if err != nil {
		return 0, false, fmt.Errorf("%s: %w", pending, err)
	}
	now, _ := strconv.ParseFloat(marks[0], 64)
	var stale []membership // score holds the mark's deadline
	for i := 1; i+1 < len(marks); i += 2 {
		d, _ := strconv.ParseFloat(marks[i+1], 64)
		if d < now-float64(b.slack.Milliseconds()) {
			stale = append(stale, membership{tag: tag, id: marks[i], score: d})
		}
	}
	// Every member, page by page: its score is read before its value, and
	// a member whose value is gone or lacks the tag is dropped by rule 2.
	removed := 0
	var cursor uint64
	for {
		e, err := b.c.Do(ctx, b.c.B().Zscan().Key(index).Cursor(cursor).Count(int64(b.opts.BatchSize)).Build()).AsScanEntry()
		if err != nil {
			return removed, false, fmt.Errorf("%s: %w", index, err)
		}
		page := make([]membership, 0, len(e.Elements)/2)
		ids := make([]string, 0, len(e.Elements)/2)
		for i := 0; i+1 < len(e.Elements); i += 2 {
			sc, _ := strconv.ParseFloat(e.Elements[i+1], 64)
			page = append(page, membership{tag: tag, id: e.Elements[i], score: sc})
			ids = append(ids, e.Elements[i])
		}
		tagsOf, err := b.readTags(ctx, ids)
		if err != nil {
			return removed, false, err
		}
		dead := slices.DeleteFunc(page, func(m membership) bool { return slices.Contains(tagsOf[m.id], tag) })
		n, err := l.dropMemberships(ctx, dead)
		removed += n
		if err != nil {
			return removed, false, err
		}
		if cursor = e.Cursor; cursor == 0 {
			break
		}
	}
	ids := make([]string, len(stale))
	for i, m := range stale {
		ids[i] = m.id
	}
	tagsOf, err := b.readTags(ctx, ids)
	if err != nil {
		return removed, false, err
	}
	carries := func(id string) bool { return slices.Contains(tagsOf[id], tag) }
	args := make([]string, 0, 3*len(stale))
	for _, m := range stale {
		verdict := "gone"
		if carries(m.id) {
			verdict = "live"
		}
		args = append(args, m.id, strconv.FormatFloat(m.score, 'f', -1, 64), verdict)
	}
	out, err := scripts.CacheTagGC.Exec(ctx, b.c, []string{index, pending}, args).AsIntSlice()
	if err != nil {
		return removed, false, fmt.Errorf("%s: %w", index, err)
	}
	return removed + int(out[0]), out[1] == 1, nil
}
