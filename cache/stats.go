package cache

import (
	"context"
	"fmt"

	"github.com/valkey-io/valkey-go"
)

// Stats describes a cache's size.
type Stats struct {
	Entries     int   // values
	Tags        int   // tag indexes
	Keys        int   // all keys of the cache (values, indexes, pending marks, keys of an earlier layout)
	MemoryBytes int64 // estimate from MEMORY USAGE of a sample of keys
	Sampled     int   // keys whose memory was measured
}

// Stats counts the cache's keys with SCAN (never KEYS; a key SCAN returns
// twice counts once) and estimates its memory from MEMORY USAGE on up to
// 20 keys per SCAN page. progress, if not nil, gets the keys counted so far.
func (b *Backend) Stats(ctx context.Context, progress Progress) (Stats, error) {
	const samplePerPage = 20
	var st Stats
	var sampledBytes int64
	seen := map[string]bool{}
	for page, err := range b.scanAll(ctx) {
		if err != nil {
			return st, fmt.Errorf("cache %s: stats: %w", b.name, err)
		}
		fresh := page[:0]
		for _, k := range page {
			if !seen[k] {
				seen[k] = true
				fresh = append(fresh, k)
			}
		}
		st.Keys += len(fresh)
		for _, k := range fresh {
			switch b.layout.kindOf(k) {
			case indexKey:
				st.Tags++
			case valueKey:
				st.Entries++
			}
		}
		sample := fresh[:min(len(fresh), samplePerPage)]
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
