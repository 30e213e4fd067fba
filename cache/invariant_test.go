package cache_test

import (
	"strings"
	"testing"

	"github.com/keyvalue-go/keyvalue/cache"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/cachecheck"
	"github.com/valkey-io/valkey-go"
)

// The independent reader of a cache's keyspace is internal/testsupport/cachecheck.

type layout = cachecheck.Layout

func standaloneLayout(name string) layout { return cachecheck.Standalone(name) }
func shardedLayout(name string) layout    { return cachecheck.Sharded(name) }

func violations(t *testing.T, c valkey.Client, l layout) []string {
	return cachecheck.Violations(t, c, l)
}

func checkInvariant(t *testing.T, c valkey.Client, l layout, when string) {
	t.Helper()
	cachecheck.Check(t, c, l, when)
}

func valueTags(t *testing.T, c valkey.Client, key string) []string {
	t.Helper()
	return cachecheck.ValueTags(t, c, key)
}

// TestCheckerFindsViolations shows that the checker can fail: it reports a
// live entry whose membership was removed behind the cache's back, in both
// layouts.
func TestCheckerFindsViolations(t *testing.T) {
	t.Parallel()
	for _, tp := range topologies(t) {
		name := "checked-" + tp.name
		b := newBackend(t, tp.c, name, cache.Options{Sharded: tp.sharded})
		mustSet(t, b, "e", "a", "b")
		if v := violations(t, tp.c, tp.layout(name)); len(v) != 0 {
			t.Fatalf("%s: violations in a healthy cache: %v", tp.name, v)
		}
		if err := tp.c.Do(ctx(t), tp.c.B().Zrem().Key(tp.layout(name).Index("b")).Member("e").Build()).Error(); err != nil {
			t.Fatal(err)
		}
		v := violations(t, tp.c, tp.layout(name))
		if len(v) != 1 || !strings.Contains(v[0], `live entry "e" is not in the index of its tag "b"`) {
			t.Errorf("%s: checker reported %v, want the missing membership", tp.name, v)
		}
	}
}
