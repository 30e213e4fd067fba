package cache

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"

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

func (b *Backend) setSharded(ctx context.Context, id string, value []byte, tags []string, ms int64) error {
	ttl := strconv.FormatInt(ms, 10)
	slack := b.slack.Milliseconds()
	for range 3 {
		// 1. Memberships, pending.
		deadline := int64(math.MaxInt64 / 2)
		if len(tags) > 0 {
			execs := make([]valkey.LuaExec, len(tags))
			for i, t := range tags {
				execs[i] = valkey.LuaExec{Keys: []string{b.indexKey(t), b.pendingKey(t)}, Args: []string{id, ttl, strconv.FormatInt(slack, 10)}}
			}
			for _, r := range scripts.CacheTagAdd.ExecMulti(ctx, b.c, execs...) {
				d, err := r.AsInt64()
				if err != nil {
					return fmt.Errorf("cache %s: set %q: tag: %w", b.name, id, err)
				}
				deadline = min(deadline, d)
			}
			if err := b.step("set", "tagged"); err != nil {
				return err
			}
		}
		// 2. The value, unless the deadline passed.
		ok, err := scripts.CacheSetSharded.Exec(ctx, b.c, []string{b.valueKey(id)},
			[]string{valkey.BinaryString(value), ttl, strconv.FormatInt(deadline, 10), strconv.FormatInt(slack/2, 10)}).AsInt64()
		if err != nil {
			return fmt.Errorf("cache %s: set %q: %w", b.name, id, err)
		}
		if ok != 1 {
			b.log.Warn("cache: sharded set missed its deadline between tagging and writing; tagging again", "cache", b.name, "id", id)
			continue
		}
		if len(tags) == 0 {
			return nil
		}
		if err := b.step("set", "written"); err != nil {
			return err
		}
		// 3. Commit.
		execs := make([]valkey.LuaExec, len(tags))
		for i, t := range tags {
			execs[i] = valkey.LuaExec{Keys: []string{b.indexKey(t), b.pendingKey(t)}, Args: []string{id}}
		}
		var errs []error
		for _, r := range scripts.CacheTagCommit.ExecMulti(ctx, b.c, execs...) {
			if err := r.Error(); err != nil {
				errs = append(errs, err)
			}
		}
		if err := errors.Join(errs...); err != nil {
			// The value is stored and its memberships are in place (pending
			// until garbage collection settles them).
			return fmt.Errorf("cache %s: set %q: stored, but clearing its pending marks failed: %w", b.name, id, err)
		}
		return nil
	}
	return fmt.Errorf("cache %s: set %q: the value could not be written within %s of tagging, three times: is this process stalled, or do the cluster nodes' clocks differ by more than that?", b.name, id, b.slack/2)
}

// membership is one id in one tag's index, with the score read for it.
type membership struct {
	tag, id string
	score   float64
}

// removeSharded removes entries by id: it reads their tags, reads the
// scores of their memberships (those in known were read before), deletes
// the values and then drops the memberships whose score did not rise. When
// flushing is not empty, only values carrying one of those tags are
// deleted; the known memberships of the others are dropped by the same
// rule. It returns how many values it deleted.
func (b *Backend) removeSharded(ctx context.Context, ids []string, known []membership, flushing ...string) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	if b.recent != nil {
		defer b.recent.removedIDs(b, ids)
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
		return b.c.B().Zscore().Key(b.indexKey(unknown[i].tag)).Member(unknown[i].id).Build()
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
		return b.c.B().Unlink().Key(b.valueKey(doomed[i])).Build()
	}) {
		n, err := r.AsInt64()
		if err != nil {
			return removed, fmt.Errorf("unlink %s: %w", b.valueKey(doomed[i]), err)
		}
		removed += int(n)
	}
	if err := b.step("remove", "values-removed"); err != nil {
		return removed, err
	}
	_, err = b.dropMemberships(ctx, all)
	return removed, err
}

// dropMemberships drops memberships whose score did not rise since it was
// read and that are not pending, one script per tag and batch, pipelined.
// It returns how many it dropped.
func (b *Backend) dropMemberships(ctx context.Context, ms []membership) (int, error) {
	byTag := map[string][]membership{}
	for _, m := range ms {
		byTag[m.tag] = append(byTag[m.tag], m)
	}
	var execs []valkey.LuaExec
	for _, tag := range slices.Sorted(maps.Keys(byTag)) {
		for batch := range slices.Chunk(byTag[tag], b.opts.BatchSize) {
			e := valkey.LuaExec{Keys: []string{b.indexKey(tag), b.pendingKey(tag)}, Args: make([]string, 0, 2*len(batch))}
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
			errs = append(errs, fmt.Errorf("%s: %w", execs[i].Keys[0], err))
			continue
		}
		dropped += int(n[0])
	}
	return dropped, errors.Join(errs...)
}

func (b *Backend) flushByTagsSharded(ctx context.Context, tags []string) (int, error) {
	rs := scripts.DoMulti(ctx, b.c, len(tags), func(i int) valkey.Completed {
		return b.c.B().Zrange().Key(b.indexKey(tags[i])).Min("0").Max("-1").Withscores().Build()
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
			b.log.Error("cache: cannot read a tag index; its entries were not flushed", "cache", b.name, "key", b.indexKey(tags[i]), "error", err)
			errs = append(errs, fmt.Errorf("read %s: %w", b.indexKey(tags[i]), err))
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
		return 0, err
	}
	removed := 0
	for batch := range slices.Chunk(ids, b.opts.BatchSize) {
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
		n, err := b.removeSharded(ctx, batch, k, tags...)
		removed += n
		if err != nil {
			return removed, errors.Join(append(errs, err)...)
		}
	}
	return removed, errors.Join(errs...)
}

// gcShardedIndex garbage-collects one tag's index (see the protocol
// above) and reports the members removed and whether the index is gone.
func (b *Backend) gcShardedIndex(ctx context.Context, tag string) (int, bool, error) {
	index, pending := b.indexKey(tag), b.pendingKey(tag)
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
		n, err := b.dropMemberships(ctx, dead)
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
