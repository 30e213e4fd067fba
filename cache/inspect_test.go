package cache_test

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/cache"
)

func TestInspectAndTagIndexes(t *testing.T) {
	t.Parallel()
	manyTopologies(t, func(t *testing.T, c *keyvalue.Client, name string, o cache.Options, l layout) {
		o.Compression, o.CompressionThreshold = cache.CompressionS2, 64
		b := newBackend(t, c, name, o)
		var entries []cache.Entry
		for i := range 30 {
			entries = append(entries, cache.Entry{ID: "e" + strconv.Itoa(i), Data: []byte("v" + strconv.Itoa(i)),
				Tags: []string{"all", "mod" + strconv.Itoa(i%3)}, Lifetime: time.Hour})
		}
		entries = append(entries, cache.Entry{ID: "big", Data: []byte(strings.Repeat("compressible ", 100)), Tags: []string{"big"}, Lifetime: cache.Unlimited})
		if err := b.SetMany(ctx(t), entries); err != nil {
			t.Fatal(err)
		}

		info, err := b.Inspect(ctx(t), "e4")
		if err != nil {
			t.Fatal(err)
		}
		if info.ID != "e4" || !slices.Equal(info.Tags, []string{"all", "mod1"}) || info.TTL <= 59*time.Minute || info.TTL > time.Hour ||
			info.Codec != "raw" || info.Compressed || info.Bytes < len("v4") {
			t.Errorf("Inspect(e4) = %+v", info)
		}
		big, err := b.Inspect(ctx(t), "big")
		if err != nil || !big.Compressed || big.TTL != cache.Unlimited || big.Bytes >= 1300 {
			t.Errorf("Inspect(big) = %+v, %v; want compressed, no expiry, fewer bytes than the value", big, err)
		}
		if _, err := b.Inspect(ctx(t), "missing"); !errors.Is(err, cache.ErrNotFound) {
			t.Errorf("Inspect(missing) = %v, want ErrNotFound", err)
		}
		if _, err := b.Inspect(ctx(t), "bad id"); err == nil {
			t.Error("Inspect accepted an id with a space")
		}

		idx, complete, err := b.TagIndexes(ctx(t), 0)
		if err != nil || !complete {
			t.Fatalf("TagIndexes = %v, complete %v, %v", idx, complete, err)
		}
		want := []cache.TagIndex{{Tag: "all", Members: 30}, {Tag: "mod0", Members: 10}, {Tag: "mod1", Members: 10}, {Tag: "mod2", Members: 10}, {Tag: "big", Members: 1}}
		if !slices.Equal(idx, want) {
			t.Errorf("TagIndexes = %v, want %v", idx, want)
		}
		// A walk of a few keys says that it did not see them all.
		if _, complete, err := b.TagIndexes(ctx(t), 2); err != nil || complete {
			t.Errorf("TagIndexes(2): complete %v, %v; want an incomplete walk", complete, err)
		}

		sizes, err := b.IndexSizes(ctx(t), "mod2", "all", "none")
		if err != nil || sizes["mod2"] != 10 || sizes["all"] != 30 || sizes["none"] != 0 || len(sizes) != 3 {
			t.Errorf("IndexSizes = %v, %v", sizes, err)
		}
		if _, err := b.IndexSizes(ctx(t), "two words"); err == nil {
			t.Error("IndexSizes accepted a tag with a space")
		}

		members, err := b.TagMembers(ctx(t), "mod0", 4)
		if err != nil || len(members) != 4 {
			t.Fatalf("TagMembers = %v, %v", members, err)
		}
		for _, id := range members {
			if n, _ := strconv.Atoi(strings.TrimPrefix(id, "e")); n%3 != 0 {
				t.Errorf("TagMembers(mod0) lists %s", id)
			}
		}
		if ids, err := b.TagMembers(ctx(t), "mod0", 0); err != nil || len(ids) != 0 {
			t.Errorf("TagMembers(limit 0) = %v, %v", ids, err)
		}
	})
}
