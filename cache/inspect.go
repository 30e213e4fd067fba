package cache

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/keyvalue-go/keyvalue/internal/scan"
	"github.com/keyvalue-go/keyvalue/internal/scripts"
	"github.com/valkey-io/valkey-go"
)

// Operators' views of a cache (keyvalue serve, the admin package): bounded
// reads, never a walk of the whole cache per call unless the caller asks.

// EntryInfo describes a stored entry without its value.
type EntryInfo struct {
	ID string
	// Bytes is the stored value's size (header, tags and payload, as
	// compressed).
	Bytes int
	// TTL is the time left; Unlimited (-1) for an entry without expiry.
	TTL        time.Duration
	Tags       []string
	Codec      string // "raw", "json", ...; "absent" for a remembered absence
	Compressed bool
}

// Inspect describes the entry under id, or returns an error matching
// ErrNotFound: one round trip (GET and PTTL, pipelined). It returns no
// value (use Get for that) and never serves from the local read cache.
func (b *Backend) Inspect(ctx context.Context, id string) (EntryInfo, error) {
	if err := b.checkID(id); err != nil {
		return EntryInfo{}, err
	}
	key := b.layout.valueKey(id)
	rs := b.c.DoMulti(ctx, b.c.B().Get().Key(key).Build(), b.c.B().Pttl().Key(key).Build())
	raw, err := rs[0].AsBytes()
	if valkey.IsValkeyNil(err) {
		return EntryInfo{}, fmt.Errorf("cache %s: %q: %w", b.name, id, ErrNotFound)
	}
	if err != nil {
		return EntryInfo{}, fmt.Errorf("cache %s: inspect %q: %w", b.name, id, err)
	}
	info := EntryInfo{ID: id, Bytes: len(raw), TTL: Unlimited}
	if ms, err := rs[1].AsInt64(); err == nil && ms >= 0 {
		info.TTL = time.Duration(ms) * time.Millisecond
	}
	if len(raw) > 0 {
		h := raw[0]
		info.Compressed = h>>4&0x03 != 0
		switch c := codecByID(h); {
		case h&0x0f == absentID:
			info.Codec = "absent"
		case c != nil:
			info.Codec = c.Name()
		default:
			info.Codec = fmt.Sprintf("unknown (id %d)", h&0x0f)
		}
		// A header that cannot be read shows no tags (Get reports it).
		if tags, _, err := tagSection(id, raw); err == nil && len(tags) > 0 {
			info.Tags = strings.Split(string(tags), "\n")
		}
	}
	return info, nil
}

// TagIndex is a tag's index and how many members it lists (entries, plus
// members not yet pruned).
type TagIndex struct {
	Tag     string
	Members int64
}

// TagIndexes returns the cache's tag indexes that a walk of at most
// maxKeys keys finds (SCAN, then ZCARD of each, pipelined), largest
// first, and whether the walk saw every key: a bounded look at a large
// cache. maxKeys 0 means Options.BatchSize.
func (b *Backend) TagIndexes(ctx context.Context, maxKeys int) (indexes []TagIndex, complete bool, err error) {
	if maxKeys <= 0 {
		maxKeys = b.opts.BatchSize
	}
	seen := map[string]bool{}
	walked := 0
	complete = true
	for page, err := range scan.Keys(ctx, b.c, b.layout.indexPattern(), min(b.opts.BatchSize, maxKeys)) {
		if err != nil {
			return nil, false, fmt.Errorf("cache %s: tag indexes: %w", b.name, err)
		}
		for _, k := range page {
			if b.layout.kindOf(k) == indexKey {
				seen[b.layout.tagOf(k)] = true
			}
		}
		if walked += len(page); walked >= maxKeys {
			complete = false
			break
		}
	}
	sizes, err := b.IndexSizes(ctx, slices.Collect(maps.Keys(seen))...)
	if err != nil {
		return nil, false, err
	}
	for t, n := range sizes {
		indexes = append(indexes, TagIndex{Tag: t, Members: n})
	}
	slices.SortFunc(indexes, func(a, b TagIndex) int {
		return cmp.Or(cmp.Compare(b.Members, a.Members), cmp.Compare(a.Tag, b.Tag))
	})
	return indexes, complete, nil
}

// IndexSizes returns how many members each tag's index lists (one
// pipelined round trip): an upper bound of the entries a FlushByTags of
// those tags removes (an entry with several of them counts in each, and
// members not yet pruned count too).
func (b *Backend) IndexSizes(ctx context.Context, tags ...string) (map[string]int64, error) {
	tags, err := b.checkTags(tags)
	if err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(tags))
	if len(tags) == 0 {
		return out, nil
	}
	for i, r := range scripts.DoMulti(ctx, b.c, len(tags), func(i int) valkey.Completed {
		return b.c.B().Zcard().Key(b.layout.indexKey(tags[i])).Build()
	}) {
		n, err := r.AsInt64()
		if err != nil {
			return nil, fmt.Errorf("cache %s: index of %q: %w", b.name, tags[i], err)
		}
		out[tags[i]] = n
	}
	return out, nil
}

// TagMembers returns up to limit ids from a tag's index, in the index's
// order (by expiry), without checking that their entries are live (see
// IDsByTag for that, at the cost of reading every member).
func (b *Backend) TagMembers(ctx context.Context, tag string, limit int) ([]string, error) {
	if err := b.checkTag(tag); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	ids, err := b.c.Do(ctx, b.c.B().Zrange().Key(b.layout.indexKey(tag)).Min("0").Max(fmt.Sprint(limit-1)).Build()).AsStrSlice()
	if err != nil {
		return nil, fmt.Errorf("cache %s: members of %q: %w", b.name, tag, err)
	}
	return ids, nil
}
