package cache_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/cache"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/servertest"
)

// manyTopologies runs fn on a standalone server, a Cluster (the
// standalone layout: one slot per cache) and a Cluster in sharded mode,
// each with and without the local read cache.
func manyTopologies(t *testing.T, fn func(t *testing.T, c *keyvalue.Client, name string, o cache.Options, l layout)) {
	s := servertest.Standalone(t)
	cl := servertest.Cluster(t, 3)
	sc := connect(t, keyvalue.Config{Addrs: []string{s.Addr()}})
	cc := connect(t, keyvalue.Config{Mode: keyvalue.ModeCluster, Addrs: cl.Addrs()})
	for _, tc := range []struct {
		name    string
		c       *keyvalue.Client
		sharded bool
	}{{"standalone", sc, false}, {"cluster", cc, false}, {"sharded", cc, true}} {
		for _, local := range []bool{false, true} {
			name := tc.name
			o := cache.Options{Sharded: tc.sharded, BatchSize: 64}
			if local {
				name += "-local"
				o.LocalCacheTTL = time.Minute
			}
			t.Run(name, func(t *testing.T) {
				cacheName := "many-" + name
				l := standaloneLayout(cacheName)
				if tc.sharded {
					l = shardedLayout(cacheName)
				}
				fn(t, tc.c, cacheName, o, l)
			})
		}
	}
}

func TestGetManySetMany(t *testing.T) {
	t.Parallel()
	manyTopologies(t, func(t *testing.T, c *keyvalue.Client, name string, o cache.Options, l layout) {
		b := newBackend(t, c, name, o)
		var entries []cache.Entry
		for i := range 150 {
			entries = append(entries, cache.Entry{ID: "e" + strconv.Itoa(i), Data: []byte("v" + strconv.Itoa(i)),
				Tags: []string{"all", "mod" + strconv.Itoa(i%3)}, Lifetime: time.Hour})
		}
		entries = append(entries, cache.Entry{ID: "e7", Data: []byte("last"), Tags: []string{"all"}}) // the last of an id wins
		if err := b.SetMany(ctx(t), entries); err != nil {
			t.Fatal(err)
		}
		checkInvariant(t, c, l, "after SetMany")
		ids := make([]string, 0, 200)
		for i := range 200 {
			ids = append(ids, "e"+strconv.Itoa(i))
		}
		got, err := b.GetMany(ctx(t), append(ids, "e3", "e3")) // repeats are read once
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 150 {
			t.Errorf("GetMany found %d entries; want 150", len(got))
		}
		for i := range 150 {
			want := "v" + strconv.Itoa(i)
			if i == 7 {
				want = "last"
			}
			if v := string(got["e"+strconv.Itoa(i)]); v != want {
				t.Errorf("e%d = %q; want %q", i, v, want)
			}
		}
		if ids, _ := b.IDsByTag(ctx(t), "mod1"); slices.Contains(ids, "e7") {
			t.Error("e7 is still in mod1 after the last write of e7 left it")
		}
		// A second read is the same (from the local read cache when on).
		again, err := b.GetMany(ctx(t), ids)
		if err != nil || len(again) != 150 {
			t.Errorf("second GetMany: %d entries, %v", len(again), err)
		}
		// Writes from this process are read back at once, local cache or not.
		if err := b.SetMany(ctx(t), []cache.Entry{{ID: "e1", Data: []byte("new")}}); err != nil {
			t.Fatal(err)
		}
		if got, _ := b.GetMany(ctx(t), []string{"e1"}); string(got["e1"]) != "new" {
			t.Errorf("e1 after its rewrite = %q", got["e1"])
		}
		if n, err := b.FlushByTags(ctx(t), "mod0"); err != nil || n != 50 {
			t.Errorf("FlushByTags(mod0) = %d, %v; want 50", n, err)
		}
		if got, _ := b.GetMany(ctx(t), []string{"e0", "e1", "e3"}); len(got) != 1 {
			t.Errorf("after the flush of mod0: %v; want e1 only", got)
		}
		checkInvariant(t, c, l, "after the flush")
	})
}

// TestSetManyBadInput: an invalid entry anywhere in the batch is refused
// with a clear error and nothing is written; an undecodable stored entry
// is named in GetMany's error and the others are returned.
func TestSetManyBadInput(t *testing.T) {
	t.Parallel()
	_, c := standalone(t)
	b := newBackend(t, c, "manybad", cache.Options{})
	err := b.SetMany(ctx(t), []cache.Entry{
		{ID: "ok1", Data: []byte("a")},
		{ID: "ok2", Data: []byte("b"), Tags: []string{"has space"}},
		{ID: "ok3", Data: []byte("c")},
	})
	t.Logf("SetMany with a bad tag: %v", err)
	var input *cache.InputError
	if !errors.As(err, &input) || !errors.Is(err, cache.ErrInvalidTag) || !strings.Contains(err.Error(), `"has space"`) {
		t.Errorf("SetMany with a bad tag = %v", err)
	}
	if got, err := b.GetMany(ctx(t), []string{"ok1", "ok2", "ok3"}); err != nil || len(got) != 0 {
		t.Errorf("written despite the bad entry: %v, %v", got, err)
	}
	_, err = b.GetMany(ctx(t), []string{"fine", ""})
	t.Logf("GetMany with an empty id: %v", err)
	if !errors.Is(err, cache.ErrInvalidID) {
		t.Errorf("GetMany with an empty id = %v", err)
	}

	must(t, b.SetMany(ctx(t), []cache.Entry{{ID: "x", Data: []byte("x")}, {ID: "y", Data: []byte("y")}}))
	if err := c.Do(ctx(t), c.B().Set().Key(b.Prefix()+"v:y").Value("\x05garbage").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	got, err := b.GetMany(ctx(t), []string{"x", "y"})
	t.Logf("GetMany with an undecodable entry: %v", err)
	if !errors.Is(err, cache.ErrCorrupt) || !strings.Contains(err.Error(), `"y"`) || string(got["x"]) != "x" || len(got) != 1 {
		t.Errorf("GetMany with an undecodable entry = %v, %v", got, err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestGetOrSetManyComputesOnce: callers over two views (as two
// processes) ask for overlapping sets of ids at once: every id is
// computed once across them, each caller's misses in one call of its
// loader, and every caller gets every value.
func TestGetOrSetManyComputesOnce(t *testing.T) {
	t.Parallel()
	manyTopologies(t, func(t *testing.T, c *keyvalue.Client, name string, o cache.Options, l layout) {
		if o.LocalCacheTTL > 0 {
			t.Skip("the local read cache does not change who computes")
		}
		var views []*cache.Typed[string]
		for range 2 {
			views = append(views, cache.NewTypedWith[string](newBackend(t, c, name, o), cache.JSON, cache.LoadOptions{}))
		}
		var loads sync.Map // id -> *atomic.Int32
		var calls atomic.Int32
		load := func(ctx context.Context, missing []string) ([]cache.Item[string], error) {
			calls.Add(1)
			time.Sleep(30 * time.Millisecond)
			items := make([]cache.Item[string], len(missing))
			for i, id := range missing {
				n, _ := loads.LoadOrStore(id, new(atomic.Int32))
				n.(*atomic.Int32).Add(1)
				items[i] = cache.Item[string]{ID: id, Value: "value of " + id, Tags: []string{"t" + id[len(id)-1:]}, Lifetime: time.Hour}
			}
			return items, nil
		}
		var wg sync.WaitGroup
		for g := range 16 {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(uint64(g), 1))
				var ids []string
				for range 20 {
					ids = append(ids, "id"+strconv.Itoa(r.IntN(40)))
				}
				got, err := views[g%2].GetOrSetMany(ctx(t), ids, load)
				if err != nil {
					t.Errorf("GetOrSetMany: %v", err)
					return
				}
				for _, id := range ids {
					if got[id] != "value of "+id {
						t.Errorf("%s = %q", id, got[id])
					}
				}
			})
		}
		wg.Wait()
		n := 0
		loads.Range(func(id, v any) bool {
			n++
			if k := v.(*atomic.Int32).Load(); k != 1 {
				t.Errorf("%s computed %d times", id, k)
			}
			return true
		})
		t.Logf("%d ids computed in %d loader calls for 16 callers", n, calls.Load())
		checkInvariant(t, c, l, "after GetOrSetMany")
		// Now all hits: no load.
		before := calls.Load()
		ids := []string{"id0", "id1", "id2"}
		got, err := views[0].GetOrSetMany(ctx(t), ids, load)
		if err != nil || len(got) != 3 {
			t.Errorf("GetOrSetMany of hits = %v, %v", got, err)
		}
		if calls.Load() != before {
			t.Error("GetOrSetMany of stored ids called the loader")
		}
	})
}

// TestGetOrSetManyNotStoredAfterFlush: values computed from data read
// before a flush of one of their tags are returned, not stored.
func TestGetOrSetManyNotStoredAfterFlush(t *testing.T) {
	t.Parallel()
	_, c := standalone(t)
	b := newBackend(t, c, "gosmflush", cache.Options{})
	typed := cache.NewTyped[string](b, cache.JSON)
	got, err := typed.GetOrSetMany(ctx(t), []string{"a", "b"}, func(ctx context.Context, missing []string) ([]cache.Item[string], error) {
		if _, err := b.FlushByTags(ctx, "prices"); err != nil {
			return nil, err
		}
		return []cache.Item[string]{{ID: "a", Value: "A", Tags: []string{"prices"}}, {ID: "b", Value: "B", Tags: []string{"other"}}}, nil
	})
	if err != nil || got["a"] != "A" || got["b"] != "B" {
		t.Fatalf("GetOrSetMany = %v, %v", got, err)
	}
	stored, _ := b.GetMany(ctx(t), []string{"a", "b"})
	if _, ok := stored["a"]; ok {
		t.Error("a was stored although its tag was flushed during its computation")
	}
	if string(stored["b"]) != `"B"` {
		t.Errorf("b = %q; want it stored (its tag was not flushed)", stored["b"])
	}
}

// errNoSuchUser is an application's "not found".
var errNoSuchUser = errors.New("no such user")

// TestNegativeCaching: a loader's "not found" is remembered: a flood of
// callers over two views costs one load, later calls none, and a flush of
// the tags it was returned with forgets it.
func TestNegativeCaching(t *testing.T) {
	t.Parallel()
	s, _ := standalone(t)
	o := cache.LoadOptions{NotFoundLifetime: time.Minute, NotFound: errNoSuchUser}
	views := []*cache.Typed[string]{typedView(t, s.Addr(), "neg", o), typedView(t, s.Addr(), "neg", o)}
	var loads atomic.Int32
	load := func(ctx context.Context) (string, []string, time.Duration, error) {
		loads.Add(1)
		time.Sleep(20 * time.Millisecond)
		return "", []string{"user:42"}, 0, fmt.Errorf("user 42: %w", errNoSuchUser)
	}
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			_, err := views[i%2].GetOrSet(ctx(t), "user:42", load)
			if !errors.Is(err, errNoSuchUser) {
				t.Errorf("GetOrSet of a missing user = %v; want errNoSuchUser", err)
			}
		})
	}
	wg.Wait()
	if n := loads.Load(); n != 1 {
		t.Errorf("%d loads for 50 callers of a missing id; want 1", n)
	}
	_, err := views[0].GetOrSet(ctx(t), "user:42", load)
	t.Logf("a remembered absence: %v", err)
	if !errors.Is(err, errNoSuchUser) || !errors.Is(err, cache.ErrNotFound) || loads.Load() != 1 {
		t.Errorf("remembered absence = %v after %d loads", err, loads.Load())
	}
	b := views[0].Backend()
	if _, err := b.Get(ctx(t), "user:42"); !errors.Is(err, cache.ErrNotFound) {
		t.Errorf("Backend.Get of a remembered absence = %v", err)
	}
	if ok, err := b.Has(ctx(t), "user:42"); ok || err != nil {
		t.Errorf("Has of a remembered absence = %v, %v", ok, err)
	}
	if got, err := views[1].GetMany(ctx(t), []string{"user:42"}); len(got) != 0 || err != nil {
		t.Errorf("GetMany of a remembered absence = %v, %v", got, err)
	}
	// The user is created: a flush of its tag forgets the absence.
	if _, err := b.FlushByTags(ctx(t), "user:42"); err != nil {
		t.Fatal(err)
	}
	v, err := views[1].GetOrSet(ctx(t), "user:42", func(context.Context) (string, []string, time.Duration, error) {
		return "Ada", []string{"user:42"}, time.Hour, nil
	})
	if err != nil || v != "Ada" {
		t.Errorf("after the flush: %q, %v", v, err)
	}

	// GetOrSetMany: NotFound items and ids the loader skipped are remembered.
	var manyLoads atomic.Int32
	manyLoad := func(ctx context.Context, missing []string) ([]cache.Item[string], error) {
		manyLoads.Add(int32(len(missing)))
		return []cache.Item[string]{{ID: "u1", Value: "one"}, {ID: "u2", NotFound: true, Tags: []string{"users"}}}, nil
	}
	for range 2 {
		got, err := views[0].GetOrSetMany(ctx(t), []string{"u1", "u2", "u3"}, manyLoad)
		if err != nil || len(got) != 1 || got["u1"] != "one" {
			t.Errorf("GetOrSetMany = %v, %v", got, err)
		}
	}
	if n := manyLoads.Load(); n != 3 {
		t.Errorf("the loader was asked for %d ids over two calls; want 3 (the first call only)", n)
	}
	if _, err := b.FlushByTags(ctx(t), "users"); err != nil {
		t.Fatal(err)
	}
	if _, err := views[0].GetOrSetMany(ctx(t), []string{"u1", "u2", "u3"}, manyLoad); err != nil || manyLoads.Load() != 4 {
		t.Errorf("after the flush of u2's tag the loader was asked for %d ids in all (%v); want 4", manyLoads.Load(), err)
	}
}
