// Package naive is the baseline keyvalue is measured against: a tagged
// cache written the way the usual integrations do it (TYPO3 Core's
// RedisBackend, gocache-style stores). It is deliberately naive and exists
// only for benchmarks; never use it for real data.
//
//	set            SET/SETEX + SMEMBERS old tags + MULTI{SREM/SADD diff, DEL+SADD id tags} (3 round trips)
//	flushByTags    per tag, sequentially: SMEMBERS, SUNION, pipeline of SDIFFSTORE/DEL (3 round trips per tag)
//	flush          KEYS prefix* + DEL (blocks the server while it runs)
//	collectGarbage KEYS identTags:* + per-key checks
package naive

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/valkey-io/valkey-go"
)

// Cache is the naive tagged cache under one prefix.
type Cache struct {
	c      valkey.Client
	prefix string
}

// New returns a naive cache whose keys start with prefix.
func New(c valkey.Client, prefix string) *Cache { return &Cache{c: c, prefix: prefix} }

func (n *Cache) data(id string) string    { return n.prefix + "identData:" + id }
func (n *Cache) idTags(id string) string  { return n.prefix + "identTags:" + id }
func (n *Cache) tagIDs(tag string) string { return n.prefix + "tagIdents:" + tag }

// TagKey names the set of ids tagged tag (for measurements).
func (n *Cache) TagKey(tag string) string { return n.tagIDs(tag) }

// Set stores data with tags: SETEX, SMEMBERS of the old tags, then a
// MULTI/EXEC with the tag diff.
func (n *Cache) Set(ctx context.Context, id string, data []byte, tags []string, lifetime time.Duration) error {
	b := n.c.B()
	set := b.Set().Key(n.data(id)).Value(valkey.BinaryString(data))
	var cmd valkey.Completed
	if lifetime > 0 {
		cmd = set.Px(lifetime).Build()
	} else {
		cmd = set.Build()
	}
	if err := n.c.Do(ctx, cmd).Error(); err != nil {
		return err
	}
	old, err := n.c.Do(ctx, b.Smembers().Key(n.idTags(id)).Build()).AsStrSlice()
	if err != nil {
		return err
	}
	multi := valkey.Commands{b.Multi().Build()}
	for _, t := range old {
		if !slices.Contains(tags, t) {
			multi = append(multi, b.Srem().Key(n.tagIDs(t)).Member(id).Build())
		}
	}
	multi = append(multi, b.Del().Key(n.idTags(id)).Build())
	if len(tags) > 0 {
		multi = append(multi, b.Sadd().Key(n.idTags(id)).Member(tags...).Build())
		for _, t := range tags {
			multi = append(multi, b.Sadd().Key(n.tagIDs(t)).Member(id).Build())
		}
	}
	multi = append(multi, b.Exec().Build())
	for _, r := range n.c.DoMulti(ctx, multi...) {
		if err := r.Error(); err != nil {
			return err
		}
	}
	return nil
}

// Get returns the data under id (nil, nil on a miss).
func (n *Cache) Get(ctx context.Context, id string) ([]byte, error) {
	b, err := n.c.Do(ctx, n.c.B().Get().Key(n.data(id)).Build()).AsBytes()
	if valkey.IsValkeyNil(err) {
		return nil, nil
	}
	return b, err
}

// Load writes new entries (ids never set) as Set would leave them, in
// pipelines of 1,000 entries: a benchmark's set-up, not a way to write.
func (n *Cache) Load(ctx context.Context, ids []string, data []byte, tagOf func(i int) string, lifetime time.Duration) error {
	b := n.c.B()
	for start := 0; start < len(ids); start += 1000 {
		var cmds valkey.Commands
		for i := start; i < min(start+1000, len(ids)); i++ {
			id, tag := ids[i], tagOf(i)
			set := b.Set().Key(n.data(id)).Value(valkey.BinaryString(data))
			if lifetime > 0 {
				cmds = append(cmds, set.Px(lifetime).Build())
			} else {
				cmds = append(cmds, set.Build())
			}
			cmds = append(cmds, b.Sadd().Key(n.idTags(id)).Member(tag).Build(), b.Sadd().Key(n.tagIDs(tag)).Member(id).Build())
		}
		for _, r := range n.c.DoMulti(ctx, cmds...) {
			if err := r.Error(); err != nil {
				return err
			}
		}
	}
	return nil
}

// GetMany returns the data under each of ids that has some: one GET per
// id, pipelined.
func (n *Cache) GetMany(ctx context.Context, ids []string) (map[string][]byte, error) {
	cmds := make(valkey.Commands, len(ids))
	for i, id := range ids {
		cmds[i] = n.c.B().Get().Key(n.data(id)).Build()
	}
	out := make(map[string][]byte, len(ids))
	for i, r := range n.c.DoMulti(ctx, cmds...) {
		b, err := r.AsBytes()
		if valkey.IsValkeyNil(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[ids[i]] = b
	}
	return out, nil
}

// FlushByTags flushes each tag in turn.
func (n *Cache) FlushByTags(ctx context.Context, tags ...string) error {
	for _, t := range tags {
		if err := n.FlushByTag(ctx, t); err != nil {
			return err
		}
	}
	return nil
}

// FlushByTag is TYPO3 Core's flushByTag: SMEMBERS of the tag, SUNION of
// the found entries' tag lists, then one pipeline that collects the ids in
// a temporary set, SDIFFSTOREs them out of every other tag's set and
// deletes the entries, their tag lists and the tag's set (3 round trips
// per tag, one tag after the other).
func (n *Cache) FlushByTag(ctx context.Context, tag string) error {
	b := n.c.B()
	ids, err := n.c.Do(ctx, b.Smembers().Key(n.tagIDs(tag)).Build()).AsStrSlice()
	if err != nil || len(ids) == 0 {
		return err
	}
	tagKeys := make([]string, len(ids))
	for i, id := range ids {
		tagKeys[i] = n.idTags(id)
	}
	others, err := n.c.Do(ctx, b.Sunion().Key(tagKeys...).Build()).AsStrSlice()
	if err != nil {
		return err
	}
	temp := n.prefix + "temp:" + tag
	pipe := valkey.Commands{b.Sadd().Key(temp).Member(ids...).Build()}
	for _, t := range others {
		if t != tag {
			pipe = append(pipe, b.Sdiffstore().Destination(n.tagIDs(t)).Key(n.tagIDs(t), temp).Build())
		}
	}
	del := []string{temp, n.tagIDs(tag)}
	for _, id := range ids {
		del = append(del, n.data(id), n.idTags(id))
	}
	pipe = append(pipe, b.Del().Key(del...).Build())
	for _, r := range n.c.DoMulti(ctx, pipe...) {
		if err := r.Error(); err != nil {
			return err
		}
	}
	return nil
}

// Flush deletes every key under the prefix with KEYS + DEL.
func (n *Cache) Flush(ctx context.Context) error {
	keys, err := n.c.Do(ctx, n.c.B().Keys().Pattern(n.prefix+"*").Build()).AsStrSlice()
	if err != nil || len(keys) == 0 {
		return err
	}
	return n.c.Do(ctx, n.c.B().Del().Key(keys...).Build()).Error()
}

// CollectGarbage is TYPO3 Core's: KEYS identTags:*, then per key an
// EXISTS on its data and, for expired entries, SMEMBERS and a pipeline
// removing the id from its tags.
func (n *Cache) CollectGarbage(ctx context.Context) error {
	b := n.c.B()
	keys, err := n.c.Do(ctx, b.Keys().Pattern(n.prefix+"identTags:*").Build()).AsStrSlice()
	if err != nil {
		return err
	}
	for _, k := range keys {
		id := strings.TrimPrefix(k, n.prefix+"identTags:")
		ex, err := n.c.Do(ctx, b.Exists().Key(n.data(id)).Build()).AsInt64()
		if err != nil {
			return err
		}
		if ex == 1 {
			continue
		}
		tags, err := n.c.Do(ctx, b.Smembers().Key(k).Build()).AsStrSlice()
		if err != nil {
			return err
		}
		pipe := valkey.Commands{b.Del().Key(k).Build()}
		for _, t := range tags {
			pipe = append(pipe, b.Srem().Key(n.tagIDs(t)).Member(id).Build())
		}
		for _, r := range n.c.DoMulti(ctx, pipe...) {
			if err := r.Error(); err != nil {
				return err
			}
		}
	}
	return nil
}
