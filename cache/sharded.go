package cache

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/keyvalue-go/keyvalue/internal/scripts"
	"github.com/valkey-io/valkey-go"
)

// Sharded mode (Options.Sharded) spreads one cache over a Cluster:
//
//	kv:c:NAME:{ID}:d    data          (slot of ID)
//	kv:c:NAME:{ID}:t    id->tags set  (slot of ID)
//	kv:c:NAME:g:{TAG}   sorted set of ids tagged TAG (slot of TAG); the score
//	                    is the membership's expiry on that node's clock
//
// No script can span those slots, so writes follow a protocol that never
// under-invalidates (an entry is never missing from the set of a tag it
// has); a crash or a race can only leave extra members, which cost at most
// an extra miss:
//
//  1. Set adds the id to every new tag's set (score = now + lifetime +
//     slack, and always higher than before), then writes data and
//     id->tags atomically in the entry's slot. Tags the entry no longer has
//     keep the id until it expires there or the tag is flushed.
//  2. FlushByTags reads the tag sets with their scores, removes the entries,
//     then removes each id from the tag sets only if its score did not rise
//     meanwhile (nobody tagged it again).
//  3. CollectGarbage drops members whose score is in the past: their
//     entries have expired (the slack covers the time between the two steps
//     of Set and modest clock skew between nodes).

// shardedSlack is added to the expiry score of tag memberships (tests
// shorten a Backend's copy, Backend.slack).
const shardedSlack = time.Minute

func (b *Backend) setSharded(ctx context.Context, id string, payload []byte, tags []string, ms int64) error {
	ttl := strconv.FormatInt(ms, 10)
	slack := strconv.FormatInt(b.slack.Milliseconds(), 10)
	for attempt := 0; ; attempt++ {
		start := time.Now()
		if len(tags) > 0 {
			execs := make([]valkey.LuaExec, len(tags))
			for i, t := range tags {
				execs[i] = valkey.LuaExec{Keys: []string{b.tagSetKey(t)}, Args: []string{id, ttl, slack}}
			}
			for _, r := range scripts.CacheTagAdd.ExecMulti(ctx, b.c, execs...) {
				if err := r.Error(); err != nil {
					return fmt.Errorf("cache %s: set %q: tag: %w", b.name, id, err)
				}
			}
		}
		if err := b.step("set", "tagged"); err != nil {
			return err
		}
		// The scores assume the data is written soon after; if this caller
		// stalled for a large part of the slack, tag again first.
		if time.Since(start) > b.slack/2 && attempt < 2 {
			continue
		}
		break
	}
	args := make([]string, 0, 2+len(tags))
	args = append(args, valkey.BinaryString(payload), ttl)
	args = append(args, tags...)
	if err := scripts.CacheSetSharded.Exec(ctx, b.c, []string{b.dataKey(id), b.tagsKey(id)}, args).Error(); err != nil {
		return fmt.Errorf("cache %s: set %q: %w", b.name, id, err)
	}
	return nil
}

// removeSharded deletes the entry; its tag memberships are left to expire
// or to the next flush of their tags (they can only over-invalidate).
func (b *Backend) removeSharded(ctx context.Context, id string) (bool, error) {
	rs := b.c.DoMulti(ctx, b.c.B().Unlink().Key(b.dataKey(id)).Build(), b.c.B().Unlink().Key(b.tagsKey(id)).Build())
	n, err := rs[0].AsInt64()
	if err == nil {
		err = rs[1].Error()
	}
	if err != nil {
		return false, fmt.Errorf("cache %s: remove %q: %w", b.name, id, err)
	}
	return n == 1, nil
}

func (b *Backend) flushByTagsSharded(ctx context.Context, tags []string) (int, error) {
	// 1. Read the tag sets with their scores.
	cmds := make(valkey.Commands, len(tags))
	for i, t := range tags {
		cmds[i] = b.c.B().Zrange().Key(b.tagSetKey(t)).Min("0").Max("-1").Withscores().Build()
	}
	type member struct {
		id    string
		score float64
	}
	read := make([][]member, len(tags))
	var ids []string
	seen := map[string]bool{}
	for i, r := range b.c.DoMulti(ctx, cmds...) {
		zs, err := r.AsZScores()
		if err != nil {
			return 0, fmt.Errorf("cache %s: flush by tags: %w", b.name, err)
		}
		for _, z := range zs {
			read[i] = append(read[i], member{z.Member, z.Score})
			if !seen[z.Member] {
				seen[z.Member] = true
				ids = append(ids, z.Member)
			}
		}
	}
	// 2. Remove the entries (each id's keys share its slot).
	removed := 0
	if len(ids) > 0 {
		del := make(valkey.Commands, 0, 2*len(ids))
		for _, id := range ids {
			del = append(del, b.c.B().Unlink().Key(b.dataKey(id)).Build(), b.c.B().Unlink().Key(b.tagsKey(id)).Build())
		}
		for i, r := range b.c.DoMulti(ctx, del...) {
			n, err := r.AsInt64()
			if err != nil {
				return removed, fmt.Errorf("cache %s: flush by tags: %w", b.name, err)
			}
			if i%2 == 0 {
				removed += int(n)
			}
		}
	}
	if err := b.step("flush-by-tags", "entries-removed"); err != nil {
		return removed, err
	}
	// 3. Drop the memberships read in step 1, unless tagged again since.
	var execs []valkey.LuaExec
	for i, ms := range read {
		for batch := range slices.Chunk(ms, b.opts.BatchSize) {
			e := valkey.LuaExec{Keys: []string{b.tagSetKey(tags[i])}, Args: make([]string, 0, 2*len(batch))}
			for _, m := range batch {
				e.Args = append(e.Args, m.id, strconv.FormatFloat(m.score, 'f', -1, 64))
			}
			execs = append(execs, e)
		}
	}
	if len(execs) > 0 {
		for _, r := range scripts.CacheTagRemove.ExecMulti(ctx, b.c, execs...) {
			if err := r.Error(); err != nil {
				return removed, fmt.Errorf("cache %s: flush by tags: %w", b.name, err)
			}
		}
	}
	return removed, nil
}

// gcShardedTagSets drops expired memberships from tag sets, one script per
// set, pipelined.
func (b *Backend) gcShardedTagSets(ctx context.Context, keys []string) (int, error) {
	execs := make([]valkey.LuaExec, len(keys))
	for i, k := range keys {
		execs[i] = valkey.LuaExec{Keys: []string{k}}
	}
	removed := 0
	for _, r := range scripts.CacheTagGC.ExecMulti(ctx, b.c, execs...) {
		n, err := r.AsInt64()
		if err != nil {
			return removed, err
		}
		removed += int(n)
	}
	return removed, nil
}
