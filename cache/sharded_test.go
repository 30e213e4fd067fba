package cache_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/cache"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/kvtest"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/servertest"
	"github.com/valkey-io/valkey-go"
)

// TestShardedOnCluster runs the sharded protocol on a real 3-primary
// cluster, including crashes between its steps and a writer racing a flush.
// Its subtests share one backend and its test hooks, so they run in
// sequence. The slack is short, so that garbage collection settles the
// pending marks of a Set stopped between its steps within the test.
func TestShardedOnCluster(t *testing.T) {
	cl := servertest.Cluster(t, 3)
	c := connect(t, keyvalue.Config{Mode: keyvalue.ModeCluster, Addrs: cl.Addrs()})
	b := newBackend(t, c, "big", cache.Options{Sharded: true, BatchSize: 16})
	const slack = 300 * time.Millisecond
	cache.SetSlack(b, slack)

	t.Run("entries spread over the primaries", func(t *testing.T) {
		for i := range 60 {
			mustSet(t, b, fmt.Sprintf("e%d", i), "all", fmt.Sprintf("m%d", i%3))
		}
		perNode := map[string]int{}
		for addr, n := range kvtest.Admin(t, c).Nodes() {
			keys, err := n.Do(ctx(t), n.B().Dbsize().Build()).AsInt64()
			if err != nil {
				t.Fatal(err)
			}
			perNode[addr] = int(keys)
		}
		for addr, n := range perNode {
			if n < 20 {
				t.Errorf("node %s holds only %d keys: the cache is not spread (%v)", addr, n, perNode)
			}
		}
		got, err := b.Get(ctx(t), "e7")
		if err != nil || string(got) != "value of e7" {
			t.Fatalf("Get = %q, %v", got, err)
		}
		ids, _ := b.IDsByTag(ctx(t), "m1")
		if len(ids) != 20 {
			t.Errorf("tag m1 has %d ids, want 20", len(ids))
		}
		t.Logf("keys per node: %v", perNode)
	})

	t.Run("re-set with other tags", func(t *testing.T) {
		mustSet(t, b, "e1", "m0")
		if ids, _ := b.IDsByTag(ctx(t), "m1"); slices.Contains(ids, "e1") {
			t.Error("e1 still listed under a tag it no longer has")
		}
		if ids, _ := b.IDsByTag(ctx(t), "m0"); !slices.Contains(ids, "e1") {
			t.Error("e1 not listed under its new tag")
		}
		// The stale membership in m1 can only over-invalidate: flushing m1 takes e1 along.
		n, err := b.FlushByTags(ctx(t), "m1")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("flush m1 removed %d entries (19 tagged + e1 through its stale membership)", n)
	})

	t.Run("crash between the steps of Set", func(t *testing.T) {
		crash := errors.New("simulated crash")
		cache.SetStepHook(b, func(op, step string) error { return crash })
		err := b.Set(ctx(t), "crashed", []byte("x"), []string{"c1", "c2"}, time.Hour)
		cache.SetStepHook(b, nil)
		if !errors.Is(err, crash) {
			t.Fatalf("Set = %v", err)
		}
		if ok, _ := b.Has(ctx(t), "crashed"); ok {
			t.Fatal("data written despite the crash before step 2")
		}
		// The tag sets have the extra member; finding skips it; flushing is unharmed.
		if z := zmembers(t, c, "kv:c:big:i:{c1}"); !slices.Equal(z, []string{"crashed"}) {
			t.Errorf("tag c1 = %v, want the extra member", z)
		}
		if ids, _ := b.IDsByTag(ctx(t), "c1"); len(ids) != 0 {
			t.Errorf("IDsByTag lists a never-written entry: %v", ids)
		}
		// A later successful Set of the same id is found under its tags.
		mustSet(t, b, "crashed", "c1")
		if n, err := b.FlushByTags(ctx(t), "c1", "c2"); err != nil || n != 1 {
			t.Errorf("FlushByTags after recovery = %d, %v", n, err)
		}
	})

	t.Run("writer racing a flush keeps its tag", func(t *testing.T) {
		mustSet(t, b, "racer", "hot")
		mustSet(t, b, "other", "hot")
		cache.SetStepHook(b, func(op, step string) error {
			if op != "remove" || step != "values-removed" {
				return nil
			}
			// Between the flush deleting entries and cleaning memberships,
			// another writer stores racer again with the same tag.
			return b.Set(ctx(t), "racer", []byte("new"), []string{"hot"}, time.Hour)
		})
		n, err := b.FlushByTags(ctx(t), "hot")
		cache.SetStepHook(b, nil)
		if err != nil || n != 2 {
			t.Fatalf("FlushByTags = %d, %v", n, err)
		}
		if ids, _ := b.IDsByTag(ctx(t), "hot"); !slices.Equal(ids, []string{"racer"}) {
			t.Fatalf("after the race tag hot lists %v; the re-written entry must stay findable", ids)
		}
		if n, _ := b.FlushByTags(ctx(t), "hot"); n != 1 {
			t.Errorf("second flush removed %d, want the re-written entry", n)
		}
	})

	t.Run("garbage collection by expiry score", func(t *testing.T) {
		for i := range 30 {
			if err := b.Set(ctx(t), fmt.Sprintf("short%d", i), []byte("x"), []string{"gc", fmt.Sprintf("g%d", i%5)}, 50*time.Millisecond); err != nil {
				t.Fatal(err)
			}
		}
		mustSet(t, b, "long", "gc")
		time.Sleep(150 * time.Millisecond)
		st, err := b.CollectGarbage(ctx(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		if st.RemovedMembers < 60 {
			t.Errorf("GC removed %d memberships, want at least 60", st.RemovedMembers)
		}
		if z := zmembers(t, c, "kv:c:big:i:{gc}"); !slices.Equal(z, []string{"long"}) {
			t.Errorf("tag gc after GC = %v", z)
		}
	})

	t.Run("flush removes the namespace on every node", func(t *testing.T) {
		other := newBackend(t, c, "small", cache.Options{})
		mustSet(t, other, "keep", "t")
		// The Set stopped between its steps above left pending marks; once
		// their deadline is a slack in the past, the flush settles them.
		time.Sleep(3 * slack)
		if _, err := b.Flush(ctx(t), nil); err != nil {
			t.Fatal(err)
		}
		for _, k := range allKeys(t, c) {
			if strings.HasPrefix(k, "kv:c:big:") {
				t.Errorf("left after Flush: %s", k)
			}
		}
		if ok, _ := other.Has(ctx(t), "keep"); !ok {
			t.Error("Flush of a sharded cache removed another cache's entry")
		}
	})
}

func zmembers(t *testing.T, c valkey.Client, key string) []string {
	t.Helper()
	m, err := c.Do(ctx(t), c.B().Zrange().Key(key).Min("0").Max("-1").Build()).AsStrSlice()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(m)
	return m
}

// TestShardedGetOrSetComputesOnce: in sharded mode the computing lease and
// the wake-up list live in the entry's slot: 32 callers over 2 clients on
// a Cluster compute once and all get the value.
func TestShardedGetOrSetComputesOnce(t *testing.T) {
	t.Parallel()
	cl := servertest.Cluster(t, 3)
	var views []*cache.Typed[string]
	var c *keyvalue.Client
	for range 2 {
		c = connect(t, keyvalue.Config{Mode: keyvalue.ModeCluster, Addrs: cl.Addrs()})
		views = append(views, cache.NewTyped[string](newBackend(t, c, "shardedload", cache.Options{Sharded: true}), cache.JSON))
	}
	checkComputesOnce(t, views, 32)
	checkInvariant(t, c, shardedLayout("shardedload"), "after GetOrSet")
}
