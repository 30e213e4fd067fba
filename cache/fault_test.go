package cache_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/cache"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/kvtest"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/servertest"
	"github.com/valkey-io/valkey-go"
	"pgregory.net/rapid"
)

// The tests in this file stop every cache operation after each of its
// server-side steps (and kill connections or cancel the context there),
// then check the cache's invariant with the independent reader of
// invariant_test.go: every live value is in the index of each of its tags.

// topo is a server set-up with a client and a way to kill its connections.
type topo struct {
	name    string
	c       *keyvalue.Client
	sharded bool
	nodes   []*servertest.Server
}

func (tp topo) layout(name string) layout {
	if tp.sharded {
		return shardedLayout(name)
	}
	return standaloneLayout(name)
}

// killClients drops every normal client connection on every node (the
// test's own admin connections are fresh per command).
func (tp topo) killClients(t *testing.T) {
	for _, n := range tp.nodes {
		if _, err := n.Do("CLIENT", "KILL", "TYPE", "normal"); err != nil {
			t.Logf("CLIENT KILL on %s: %v", n.Addr(), err)
		}
	}
}

// heal makes the client notice killed connections: a read-only command is
// retried by valkey-go on a new connection (a write on a dead connection
// would fail with EOF instead). A node has several pipelined connections
// (PipelineMultiplex) and a command with a key goes to a random one (one
// without a key always to the first): 24 keyed reads per node find every
// dead one but with a chance of about 1 in 1000.
func (tp topo) heal(t *testing.T) {
	for _, n := range tp.c.Nodes() {
		for range 24 {
			_ = n.Do(ctx(t), n.B().Exists().Key("kv:{c:heal}:x").Build()).Error()
		}
	}
}

// inject makes the operation run on b with the returned context fail at
// its step-th server-side step: stop (as if the process died there),
// cancel (the context), kill (every client connection); "none" injects
// nothing. done ends the injection and heals killed connections.
func (tp topo) inject(t *testing.T, b *cache.Backend, kind string, step int) (context.Context, func()) {
	opCtx, cancel := context.WithCancel(ctx(t))
	n := 0
	cache.SetStepHook(b, func(string, string) error {
		if n++; kind == "none" || n != step {
			return nil
		}
		switch kind {
		case "stop":
			return errStopped
		case "cancel":
			cancel()
		case "kill":
			tp.killClients(t)
		}
		return nil
	})
	return opCtx, func() {
		cancel()
		cache.SetStepHook(b, nil)
		if kind == "kill" {
			tp.heal(t)
		}
	}
}

func topologies(t *testing.T) []topo {
	s := servertest.Standalone(t)
	cl := servertest.Cluster(t, 3)
	cc := connect(t, keyvalue.Config{Mode: keyvalue.ModeCluster, Addrs: cl.Addrs()})
	return []topo{
		{name: "standalone", c: connect(t, keyvalue.Config{Addrs: []string{s.Addr()}}), nodes: []*servertest.Server{s}},
		{name: "cluster", c: cc, nodes: cl.Nodes},
		{name: "sharded", c: cc, sharded: true, nodes: cl.Nodes},
	}
}

// fill writes the entries every fault scenario starts from: tags overlap,
// some entries have no expiry, some expire soon.
func fillFault(t *testing.T, b *cache.Backend) {
	t.Helper()
	for i := range 24 {
		tags := []string{"a", "b", "c", "d"}[:1+i%4]
		if i%5 == 0 {
			tags = append(tags, "solo"+strconv.Itoa(i))
		}
		life := time.Hour
		switch i % 3 {
		case 1:
			life = cache.Unlimited
		case 2:
			life = 150 * time.Millisecond
		}
		if err := b.Set(ctx(t), "e"+strconv.Itoa(i), []byte("v"+strconv.Itoa(i)), tags, life); err != nil {
			t.Fatal(err)
		}
	}
}

// faultOp is one operation under test with what must hold once it ran to
// the end (after being stopped and run again).
type faultOp struct {
	name string
	run  func(ctx context.Context, b *cache.Backend) error
	done func(t *testing.T, b *cache.Backend)
}

func faultOps() []faultOp {
	noLive := func(tags ...string) func(t *testing.T, b *cache.Backend) {
		return func(t *testing.T, b *cache.Backend) {
			for _, tag := range tags {
				if ids, err := b.IDsByTag(ctx(t), tag); err != nil || len(ids) != 0 {
					t.Errorf("after the flush, tag %s still lists %v (%v)", tag, ids, err)
				}
			}
		}
	}
	return []faultOp{
		{"set-new-tags", func(ctx context.Context, b *cache.Backend) error {
			return b.Set(ctx, "e3", []byte("new"), []string{"d", "x", "y"}, cache.Unlimited)
		}, func(t *testing.T, b *cache.Backend) {
			if ids, _ := b.IDsByTag(ctx(t), "x"); !slices.Equal(ids, []string{"e3"}) {
				t.Errorf("tag x lists %v, want [e3]", ids)
			}
			if ids, _ := b.IDsByTag(ctx(t), "a"); slices.Contains(ids, "e3") {
				t.Errorf("tag a still lists e3 after it left the tag")
			}
		}},
		{"remove", func(ctx context.Context, b *cache.Backend) error {
			_, err := b.Remove(ctx, "e1")
			return err
		}, func(t *testing.T, b *cache.Backend) {
			if ok, _ := b.Has(ctx(t), "e1"); ok {
				t.Error("e1 still there after Remove")
			}
		}},
		{"flush-by-tags", func(ctx context.Context, b *cache.Backend) error {
			_, err := b.FlushByTags(ctx, "b", "solo0")
			return err
		}, noLive("b", "solo0")},
		{"flush", func(ctx context.Context, b *cache.Backend) error {
			_, err := b.Flush(ctx, nil)
			return err
		}, noLive("a", "b", "c", "d")},
		{"get-or-set", func(ctx context.Context, b *cache.Backend) error {
			// A short lease: a run stopped while holding it is taken over by
			// the run after it within 300ms.
			typed := cache.NewTypedWith[string](b, cache.JSON, cache.LoadOptions{Lease: 300 * time.Millisecond})
			v, err := typed.GetOrSet(ctx, "computed", func(context.Context) (string, []string, time.Duration, error) {
				return "fresh", []string{"a", "z"}, time.Hour, nil
			})
			if err == nil && v != "fresh" {
				err = fmt.Errorf("GetOrSet = %q", v)
			}
			return err
		}, func(t *testing.T, b *cache.Backend) {
			if v, err := cache.NewTyped[string](b, cache.JSON).Get(ctx(t), "computed"); err != nil || v != "fresh" {
				t.Errorf("computed entry = %q, %v", v, err)
			}
			if ids, _ := b.IDsByTag(ctx(t), "z"); !slices.Equal(ids, []string{"computed"}) {
				t.Errorf("tag z lists %v, want [computed]", ids)
			}
		}},
		{"set-many", func(ctx context.Context, b *cache.Backend) error {
			// New entries, and entries that change tags (e3 leaves a, b, c).
			return b.SetMany(ctx, []cache.Entry{
				{ID: "e3", Data: []byte("new"), Tags: []string{"d", "x"}, Lifetime: cache.Unlimited},
				{ID: "e4", Data: []byte("new"), Tags: []string{"x", "y"}, Lifetime: time.Hour},
				{ID: "m1", Data: []byte("new"), Tags: []string{"y"}, Lifetime: time.Hour},
				{ID: "m2", Data: []byte("new"), Lifetime: time.Hour},
			})
		}, func(t *testing.T, b *cache.Backend) {
			if ids, _ := b.IDsByTag(ctx(t), "x"); !slices.Equal(ids, []string{"e3", "e4"}) {
				t.Errorf("tag x lists %v, want [e3 e4]", ids)
			}
			if ids, _ := b.IDsByTag(ctx(t), "a"); slices.Contains(ids, "e3") {
				t.Errorf("tag a still lists e3 after it left the tag")
			}
			if got, err := b.GetMany(ctx(t), []string{"e3", "e4", "m1", "m2"}); err != nil || len(got) != 4 {
				t.Errorf("GetMany after SetMany = %d entries, %v", len(got), err)
			}
		}},
		{"get-or-set-many", func(ctx context.Context, b *cache.Backend) error {
			typed := cache.NewTypedWith[string](b, cache.JSON, cache.LoadOptions{Lease: 300 * time.Millisecond, NotFoundLifetime: time.Hour})
			got, err := typed.GetOrSetMany(ctx, []string{"e0", "c1", "c2", "gone"}, func(ctx context.Context, missing []string) ([]cache.Item[string], error) {
				var items []cache.Item[string]
				for _, id := range missing {
					if id != "gone" {
						items = append(items, cache.Item[string]{ID: id, Value: "fresh", Tags: []string{"a", "z"}, Lifetime: time.Hour})
					}
				}
				return items, nil
			})
			if err == nil && (got["c1"] != "fresh" || got["c2"] != "fresh" || len(got) != 3) {
				err = fmt.Errorf("GetOrSetMany = %v", got)
			}
			return err
		}, func(t *testing.T, b *cache.Backend) {
			if ids, _ := b.IDsByTag(ctx(t), "z"); !slices.Equal(ids, []string{"c1", "c2"}) {
				t.Errorf("tag z lists %v, want [c1 c2]", ids)
			}
			if ok, _ := b.Has(ctx(t), "gone"); ok {
				t.Error("an absence is an entry")
			}
		}},
		{"gc", func(ctx context.Context, b *cache.Backend) error {
			time.Sleep(200 * time.Millisecond) // let the short entries expire
			_, err := b.CollectGarbage(ctx, nil)
			return err
		}, func(t *testing.T, b *cache.Backend) {}},
	}
}

// errStopped stands for a process that dies at a step.
var errStopped = errors.New("stopped by the test at this step")

func TestInvariantUnderFaultsAtEveryStep(t *testing.T) {
	t.Parallel()
	kinds := []string{"stop", "cancel", "kill"}
	if raceBuild {
		kinds = []string{"stop"}
	}
	runs := 0
	for _, tp := range topologies(t) {
		for _, op := range faultOps() {
			// Count the steps of a fault-free run first.
			name := fmt.Sprintf("f-%s-%s-count", tp.name, op.name)
			b := newBackend(t, tp.c, name, cache.Options{Sharded: tp.sharded, BatchSize: 4})
			fillFault(t, b)
			steps := 0
			cache.SetStepHook(b, func(string, string) error { steps++; return nil })
			if err := op.run(ctx(t), b); err != nil {
				t.Fatalf("%s/%s without faults: %v", tp.name, op.name, err)
			}
			checkInvariant(t, tp.c, tp.layout(name), tp.name+"/"+op.name+" without faults")
			op.done(t, b)
			// Every step of short operations; for long ones (a page per step)
			// the first two, one in the middle and the last two.
			at := []int{}
			for step := 1; step <= steps; step++ {
				if steps <= 5 || step <= 2 || step == steps/2 || step >= steps-1 {
					at = append(at, step)
				}
			}
			for _, step := range at {
				for _, kind := range kinds {
					runs++
					name := fmt.Sprintf("f-%s-%s-%d-%s", tp.name, op.name, step, kind)
					b := newBackend(t, tp.c, name, cache.Options{Sharded: tp.sharded, BatchSize: 4})
					cache.SetSlack(b, 300*time.Millisecond)
					fillFault(t, b)
					opCtx, done := tp.inject(t, b, kind, step)
					err := op.run(opCtx, b)
					done()
					when := fmt.Sprintf("%s/%s %s at step %d (err %v)", tp.name, op.name, kind, step, err)
					checkInvariant(t, tp.c, tp.layout(name), when)
					// Running it again finishes the job.
					if err := op.run(ctx(t), b); err != nil {
						t.Errorf("%s, then again: %v", when, err)
					}
					checkInvariant(t, tp.c, tp.layout(name), when+", then again")
					op.done(t, b)
				}
			}
		}
	}
	t.Logf("%d faulted runs, each checked with the independent reader", runs)
}

// TestScriptStoppedHalfWay makes a Set script fail after its first write:
// the second tag's index is a string, so ZADD fails there. Nothing the
// script did before (the first tag's membership) breaks the invariant,
// and the old value is still served with all its memberships.
func TestScriptStoppedHalfWay(t *testing.T) {
	t.Parallel()
	_, c := standalone(t)
	var logs kvtest.Output
	b, err := cache.New(c, "half", cache.Options{Logger: logs.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	mustSet(t, b, "e", "a")
	if err := c.Do(ctx(t), c.B().Set().Key(b.Prefix()+"i:broken").Value("not an index").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	err = b.Set(ctx(t), "e", []byte("new"), []string{"z", "broken"}, time.Hour)
	t.Logf("Set over a broken index: %v", err)
	if err == nil || !strings.Contains(err.Error(), "WRONGTYPE") {
		t.Fatalf("Set = %v, want the server's WRONGTYPE error", err)
	}
	if got, _ := b.Get(ctx(t), "e"); string(got) != "value of e" {
		t.Errorf("value after the failed Set = %q, want the old one", got)
	}
	checkInvariant(t, c, standaloneLayout("half"), "after a Set script failed half-way")
	// GC skips the broken key, names it, and still cleans the others.
	st, err := b.CollectGarbage(ctx(t), nil)
	if err != nil || st.Skipped != 1 {
		t.Errorf("GC = %+v, %v; want the broken index skipped", st, err)
	}
	// FlushByTags of a good and a broken tag flushes the good one and reports the other.
	n, err := b.FlushByTags(ctx(t), "a", "broken")
	t.Logf("FlushByTags(a, broken) = %d, %v", n, err)
	if n != 1 || err == nil || !strings.Contains(err.Error(), "i:broken") {
		t.Errorf("FlushByTags = %d, %v; want 1 and an error naming the broken key", n, err)
	}
	// Flush removes the whole namespace, the key of another type at the
	// index name included: after it, Set with that tag works again.
	if _, err := b.Flush(ctx(t), nil); err != nil {
		t.Fatalf("Flush = %v", err)
	}
	if keys := allKeys(t, c); !slices.Equal(keys, []string{b.Prefix() + "f"}) {
		t.Errorf("Flush left %v; want only the flush stamps", keys)
	}
	if log := logs.String(); !strings.Contains(log, "removed keys of another type found at index names") || !strings.Contains(log, "i:broken") {
		t.Errorf("Flush did not warn about the key of another type it removed; log:\n%s", log)
	}
	if err := b.Set(ctx(t), "e", []byte("after"), []string{"broken"}, time.Hour); err != nil {
		t.Errorf("Set with the tag after Flush = %v", err)
	}
}

// TestWrongTypeValueKey: a value key of the wrong type can be overwritten
// by Set and deleted by Remove.
func TestWrongTypeValueKey(t *testing.T) {
	t.Parallel()
	_, c := standalone(t)
	b := newBackend(t, c, "wrong", cache.Options{})
	key := b.Prefix() + "v:x"
	if err := c.Do(ctx(t), c.B().Hset().Key(key).FieldValue().FieldValue("f", "v").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.Remove(ctx(t), "x"); !ok || err != nil {
		t.Errorf("Remove of a wrong-type value = %v, %v", ok, err)
	}
	if err := c.Do(ctx(t), c.B().Hset().Key(key).FieldValue().FieldValue("f", "v").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	mustSet(t, b, "x", "t")
	if got, err := b.Get(ctx(t), "x"); err != nil || string(got) != "value of x" {
		t.Errorf("Get after Set over a wrong-type key = %q, %v", got, err)
	}
}

// TestFlushByTagsDuringSlotMigration is the cluster scenario: e1
// has tags a and b, e2 has a; the cache's slot is migrating and only b's
// index has moved. The flush cannot run its scripts until the slot has
// settled (TRYAGAIN: nothing runs, nothing is lost); once it has, the
// entries go.
func TestFlushByTagsDuringSlotMigration(t *testing.T) {
	t.Parallel()
	cl := servertest.Cluster(t, 3)
	c := connect(t, keyvalue.Config{Mode: keyvalue.ModeCluster, Addrs: cl.Addrs()})
	for round, finishMidway := range []bool{false, true} {
		name := fmt.Sprintf("mig%d", round)
		b := newBackend(t, c, name, cache.Options{})
		mustSet(t, b, "e1", "a", "b")
		mustSet(t, b, "e2", "a")
		slotS, err := cl.Nodes[0].Do("CLUSTER", "KEYSLOT", b.Prefix()+"x")
		if err != nil {
			t.Fatal(err)
		}
		slot, _ := strconv.Atoi(slotS)
		from := cl.Owner(t, slot)
		to := cl.Nodes[0]
		if to == from {
			to = cl.Nodes[1]
		}
		cl.BeginMigration(t, slot, from, to)
		cl.MigrateKeys(t, from, to, b.Prefix()+"i:b")
		if !finishMidway {
			short, cancel := context.WithTimeout(ctx(t), 500*time.Millisecond)
			n, err := b.FlushByTags(short, "a", "b")
			cancel()
			t.Logf("FlushByTags while the slot is half moved: %d, %v", n, err)
			if err == nil {
				t.Fatal("FlushByTags succeeded while its keys were split between two nodes")
			}
			checkInvariant(t, c, standaloneLayout(name), "after a flush refused during migration")
			cl.FinishMigration(t, slot, from, to)
			n, err = b.FlushByTags(ctx(t), "a")
			if err != nil || n != 2 {
				t.Fatalf("FlushByTags(a) after the move = %d, %v; want 2", n, err)
			}
		} else {
			done := make(chan struct{})
			go func() {
				defer close(done)
				time.Sleep(300 * time.Millisecond)
				cl.FinishMigration(t, slot, from, to)
			}()
			n, err := b.FlushByTags(ctx(t), "a", "b")
			<-done
			t.Logf("FlushByTags while the slot finishes moving: %d, %v", n, err)
			if err != nil || n != 2 {
				t.Fatalf("FlushByTags = %d, %v; want 2 once the migration finished", n, err)
			}
		}
		for _, id := range []string{"e1", "e2"} {
			if ok, _ := b.Has(ctx(t), id); ok {
				t.Errorf("%s survived the flush", id)
			}
		}
		checkInvariant(t, c, standaloneLayout(name), "after the migration")
	}
}

// fillMany writes n entries tagged t0..t(tags-1) with 32 writers.
func fillMany(t *testing.T, b *cache.Backend, n, tags int, life time.Duration) {
	t.Helper()
	var wg sync.WaitGroup
	var failed atomic.Value
	for w := range 32 {
		wg.Go(func() {
			for i := w; i < n; i += 32 {
				if err := b.Set(ctx(t), "e"+strconv.Itoa(i), []byte("x"), []string{"t" + strconv.Itoa(i%tags), "all"}, life); err != nil {
					failed.CompareAndSwap(nil, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err, ok := failed.Load().(error); ok {
		t.Fatal(err)
	}
}

func TestInterruptedFlushThenFlushByTags(t *testing.T) {
	t.Parallel()
	n := 40000
	if testing.Short() || raceBuild {
		n = 8000
	}
	_, c := standalone(t)
	b := newBackend(t, c, "big", cache.Options{BatchSize: 500})
	fillMany(t, b, n, 100, time.Hour)
	short, cancel := context.WithTimeout(ctx(t), 15*time.Millisecond)
	removed, err := b.Flush(short, nil)
	cancel()
	t.Logf("Flush of %d entries cancelled after 15ms: %d keys removed, %v", n, removed, err)
	checkInvariant(t, c, standaloneLayout("big"), "after the interrupted flush")
	tags := make([]string, 100)
	for i := range tags {
		tags[i] = "t" + strconv.Itoa(i)
	}
	if _, err := b.FlushByTags(ctx(t), tags...); err != nil {
		t.Fatal(err)
	}
	st, err := b.Stats(ctx(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Entries != 0 {
		t.Errorf("%d entries live after flushing every tag", st.Entries)
	}
}

func TestShardedFlushWhileSlotsMove(t *testing.T) {
	t.Parallel()
	cl := servertest.Cluster(t, 3)
	c := connect(t, keyvalue.Config{Mode: keyvalue.ModeCluster, Addrs: cl.Addrs()})
	b := newBackend(t, c, "moving", cache.Options{Sharded: true, BatchSize: 50})
	fillMany(t, b, 3000, 20, time.Hour)
	// Move slots from the last node to the first while the flush runs:
	// keys land on a node the flush may already have walked.
	from, to := cl.Nodes[2], cl.Nodes[0]
	first := 16384 / 3 * 2
	done := make(chan int)
	go func() {
		moved := 0
		for slot := first; slot < first+400; slot++ {
			cl.MoveSlot(t, slot, from, to)
			moved++
		}
		done <- moved
	}()
	time.Sleep(20 * time.Millisecond)
	n, err := b.Flush(ctx(t), nil)
	moved := <-done
	t.Logf("Flush while %d slots moved: %d keys, %v", moved, n, err)
	if err != nil && !errors.Is(err, cache.ErrSlotsMoving) {
		t.Fatal(err)
	}
	if errors.Is(err, cache.ErrSlotsMoving) {
		if _, err := b.Flush(ctx(t), nil); err != nil {
			t.Fatal(err)
		}
	}
	var left []string
	for _, k := range allKeys(t, c) {
		if strings.HasPrefix(k, "kv:c:moving:") {
			left = append(left, k)
		}
	}
	if len(left) > 0 {
		t.Errorf("%d keys left after the flush, e.g. %v", len(left), left[:min(5, len(left))])
	}
}

func TestEvictionPolicyGuard(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		policy string
		ok     bool
	}{{"allkeys-lru", false}, {"allkeys-lfu", false}, {"volatile-lru", true}, {"volatile-ttl", true}, {"noeviction", true}} {
		t.Run(tc.policy, func(t *testing.T) {
			t.Parallel()
			s := servertest.Standalone(t, servertest.WithArgs("--maxmemory-policy", tc.policy))
			c := connect(t, keyvalue.Config{Addrs: []string{s.Addr()}})
			b := newBackend(t, c, "pages", cache.Options{})
			err := b.Set(ctx(t), "p", []byte("x"), []string{"t"}, time.Hour)
			t.Logf("Set under %s: %v", tc.policy, err)
			if tc.ok != (err == nil) || !tc.ok && !errors.Is(err, cache.ErrEvictionPolicy) {
				t.Fatalf("Set under %s = %v", tc.policy, err)
			}
			if !tc.ok {
				want := "maxmemory-policy is " + tc.policy + ", which may evict a tag index while its entries stay; set maxmemory-policy to noeviction or a volatile-* policy, or set Options.AllowEvictingPolicy to accept this"
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error text %q lacks %q", err, want)
				}
				if keys := allKeys(t, c); len(keys) != 0 {
					t.Errorf("refused Set wrote %v", keys)
				}
				if err := b.Set(ctx(t), "untagged", []byte("x"), nil, time.Hour); err != nil {
					t.Errorf("an entry without tags needs no index: %v", err)
				}
				allowed := newBackend(t, c, "pages", cache.Options{AllowEvictingPolicy: true})
				if err := allowed.Set(ctx(t), "p", []byte("x"), []string{"t"}, time.Hour); err != nil {
					t.Errorf("with AllowEvictingPolicy: %v", err)
				}
			}
		})
	}
}

// TestIndexBoundedUnderChurn writes short-lived entries for a while with no
// garbage collection: writes prune expired members, so the index stays
// close to its live members.
func TestIndexBoundedUnderChurn(t *testing.T) {
	t.Parallel()
	for _, sharded := range []bool{false, true} {
		t.Run(fmt.Sprintf("sharded=%v", sharded), func(t *testing.T) {
			t.Parallel()
			var c *keyvalue.Client
			if sharded {
				cl := servertest.Cluster(t, 3)
				c = connect(t, keyvalue.Config{Mode: keyvalue.ModeCluster, Addrs: cl.Addrs()})
			} else {
				_, c = standalone(t)
			}
			b := newBackend(t, c, "churn", cache.Options{Sharded: sharded})
			// Load the scripts first (a first use pays for SCRIPT LOAD on every
			// node, longer than the short slack below allows between steps).
			mustSet(t, b, "warm-up", "warm")
			// Sharded members outlive their entries by the slack: keep it small
			// against the lifetime, as a minute is against real lifetimes.
			cache.SetSlack(b, 20*time.Millisecond)
			const life = time.Second
			deadline := time.Now().Add(2 * life)
			i := 0
			for time.Now().Before(deadline) && i < 200000 {
				if err := b.Set(ctx(t), "e"+strconv.Itoa(i), []byte("x"), []string{"hot"}, life); err != nil {
					t.Fatal(err)
				}
				i++
			}
			// Count members and live entries at about the same instant: the
			// index, then one pipeline of EXISTS on its members' values.
			ids, err := c.Do(ctx(t), c.B().Zrange().Key(indexOf(b, "hot")).Min("0").Max("-1").Build()).AsStrSlice()
			if err != nil {
				t.Fatal(err)
			}
			members := len(ids)
			cmds := make(valkey.Commands, len(ids))
			for i, id := range ids {
				key := b.Prefix() + "v:" + id
				if sharded {
					key = b.Prefix() + "{" + id + "}:v"
				}
				cmds[i] = c.B().Exists().Key(key).Build()
			}
			live := 0
			for _, r := range c.DoMulti(ctx(t), cmds...) {
				if n, _ := r.AsInt64(); n == 1 {
					live++
				}
			}
			ratio := float64(members) / float64(max(live, 1))
			t.Logf("%d writes over %s: index holds %d members for %d live entries (%.2f×), no GC", i, 2*life, members, live, ratio)
			if ratio > 1.2 {
				t.Errorf("index holds %.2f× its live members, want at most 1.2×", ratio)
			}
		})
	}
}

func indexOf(b *cache.Backend, tag string) string {
	if strings.HasPrefix(b.Prefix(), "kv:{") {
		return b.Prefix() + "i:" + tag
	}
	return b.Prefix() + "i:{" + tag + "}"
}

// TestUnlimitedEntriesLeaveNoMembers: entries without expiry are never
// pruned by expiry, so Remove and FlushByTags must take their memberships
// in every tag along.
func TestUnlimitedEntriesLeaveNoMembers(t *testing.T) {
	t.Parallel()
	for _, tp := range topologies(t) {
		b := newBackend(t, tp.c, "unl-"+tp.name, cache.Options{Sharded: tp.sharded})
		for i := range 20 {
			if err := b.Set(ctx(t), "e"+strconv.Itoa(i), []byte("x"), []string{"a", "b" + strconv.Itoa(i%2), "c"}, cache.Unlimited); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := b.Remove(ctx(t), "e0"); err != nil {
			t.Fatal(err)
		}
		if _, err := b.FlushByTags(ctx(t), "b1"); err != nil {
			t.Fatal(err)
		}
		for _, tag := range []string{"a", "b0", "b1", "c"} {
			members, _ := c2members(t, tp.c, indexOf(b, tag))
			live, _ := b.IDsByTag(ctx(t), tag)
			if members != len(live) {
				t.Errorf("%s: index of %s holds %d members for %d live entries", tp.name, tag, members, len(live))
			}
		}
	}
}

func c2members(t *testing.T, c valkey.Client, key string) (int, error) {
	n, err := c.Do(ctx(t), c.B().Zcard().Key(key).Build()).AsInt64()
	return int(n), err
}

// TestLocalCacheReadsOwnWrites: with a local read cache, the process that
// changed or flushed an entry never reads the old copy afterwards.
func TestLocalCacheReadsOwnWrites(t *testing.T) {
	t.Parallel()
	_, c := standalone(t)
	b := newBackend(t, c, "local", cache.Options{LocalCacheTTL: time.Minute})
	stale := 0
	for i := range 500 {
		id := "p" + strconv.Itoa(i%10)
		if err := b.Set(ctx(t), id, []byte("v"+strconv.Itoa(i)), []string{"t" + strconv.Itoa(i%10)}, time.Hour); err != nil {
			t.Fatal(err)
		}
		if got, err := b.Get(ctx(t), id); err != nil || string(got) != "v"+strconv.Itoa(i) {
			stale++
		}
		if _, err := b.FlushByTags(ctx(t), "t"+strconv.Itoa(i%10)); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Get(ctx(t), id); !errors.Is(err, cache.ErrNotFound) {
			stale++
		}
	}
	if stale > 0 {
		t.Errorf("%d of 1000 reads right after this process's own write returned an old copy", stale)
	}
}

// TestInvariantProperty runs random sequences of Set, Remove, FlushByTags,
// Flush and CollectGarbage, each stopped at a random step (or cancelled, or
// its connections killed there) or run whole, and checks the invariant
// after every operation, so the cases are not only the ones above.
func TestInvariantProperty(t *testing.T) {
	t.Parallel()
	tps := topologies(t)
	for _, tp := range []topo{tps[0], tps[2]} {
		t.Run(tp.name, func(t *testing.T) {
			seq := 0
			rapid.Check(t, func(rt *rapid.T) {
				seq++
				name := fmt.Sprintf("prop-%s-%d", tp.name, seq)
				b := newBackend(t, tp.c, name, cache.Options{Sharded: tp.sharded, BatchSize: 3})
				cache.SetSlack(b, 200*time.Millisecond)
				ids := rapid.SampledFrom([]string{"e0", "e1", "e2", "e3", "e4", "e5"})
				tags := rapid.SliceOfNDistinct(rapid.SampledFrom([]string{"a", "b", "c", "d"}), 0, 3, rapid.ID[string])
				for i := range rapid.IntRange(1, 12).Draw(rt, "ops") {
					op := rapid.SampledFrom([]string{"set", "set", "set", "remove", "flush-by-tags", "flush", "gc"}).Draw(rt, "op")
					faults := []string{"none", "stop", "cancel", "kill"}
					if raceBuild {
						faults = []string{"none", "stop"}
					}
					fault := rapid.SampledFrom(faults).Draw(rt, "fault")
					at := rapid.IntRange(1, 4).Draw(rt, "step")
					opCtx, done := tp.inject(t, b, fault, at)
					var err error
					switch op {
					case "set":
						life := rapid.SampledFrom([]time.Duration{time.Hour, cache.Unlimited, 100 * time.Millisecond}).Draw(rt, "life")
						err = b.Set(opCtx, ids.Draw(rt, "id"), []byte("x"), tags.Draw(rt, "tags"), life)
					case "remove":
						_, err = b.Remove(opCtx, ids.Draw(rt, "id"))
					case "flush-by-tags":
						_, err = b.FlushByTags(opCtx, append(tags.Draw(rt, "flushed"), "a")...)
					case "flush":
						_, err = b.Flush(opCtx, nil)
					case "gc":
						_, err = b.CollectGarbage(opCtx, nil)
					}
					done()
					if v := violations(t, tp.c, tp.layout(name)); len(v) > 0 {
						rt.Fatalf("op %d (%s, fault %s at step %d, err %v) broke the invariant: %v", i, op, fault, at, err, v)
					}
				}
			})
		})
	}
}

// TestFlushKeepsEntriesWrittenDuringIt: Flush unlinks the indexes its walk
// found without reading them only when nothing was written since it
// stamped (every Set removes the flush's write mark); an entry written at
// any step of a flush — a new one, and one that existed before and is
// written again — keeps its memberships, checked by the independent
// reader, and survives when written after the walk.
func TestFlushKeepsEntriesWrittenDuringIt(t *testing.T) {
	t.Parallel()
	s, c := standalone(t)
	zranges := func() int {
		t.Helper()
		n, err := s.Calls("zrange")
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	// Nothing written: the indexes go unread, the flush leaves only its stamps.
	b := newBackend(t, c, "fw", cache.Options{BatchSize: 4})
	fillFault(t, b)
	var steps []string
	cache.SetStepHook(b, func(op, step string) error {
		if op == "flush" {
			steps = append(steps, step)
		}
		return nil
	})
	before := zranges()
	if _, err := b.Flush(ctx(t), nil); err != nil {
		t.Fatal(err)
	}
	if n := zranges() - before; n != 0 {
		t.Errorf("a flush that nothing was written during read indexes (%d ZRANGE); want none", n)
	}
	if keys := allKeys(t, c); !slices.Equal(keys, []string{b.Prefix() + "f"}) {
		t.Errorf("Flush left %v; want only the flush stamps", keys)
	}
	t.Logf("steps of a flush: %v", steps)

	for k := range steps {
		name := fmt.Sprintf("fw-%d", k)
		b := newBackend(t, c, name, cache.Options{BatchSize: 4})
		fillFault(t, b)
		at, step := 0, ""
		cache.SetStepHook(b, func(op, s string) error {
			if op != "flush" {
				return nil // the Sets' own steps
			}
			if at++; at == k+1 {
				step = s // the walk's page count varies from run to run
				mustSet(t, b, "late", "a", "late")
				mustSet(t, b, "e1", "b") // existed before the flush
			}
			return nil
		})
		before := zranges()
		if _, err := b.Flush(ctx(t), nil); err != nil {
			t.Fatalf("write at step %d: Flush = %v", k+1, err)
		}
		when := fmt.Sprintf("after a flush with writes at step %d (%s)", k+1, step)
		checkInvariant(t, c, standaloneLayout(name), when)
		if step == "page" || step == "" {
			continue // the rest of the walk may have unlinked them
		}
		for _, tag := range []string{"a", "late"} {
			if ids, _ := b.IDsByTag(ctx(t), tag); !slices.Contains(ids, "late") {
				t.Errorf("%s: tag %s lists %v, without the entry written during it", when, tag, ids)
			}
		}
		if ok, err := b.Has(ctx(t), "e1"); !ok || err != nil {
			t.Errorf("%s: the entry written again during it is gone (%v)", when, err)
		}
		if step == "values-removed" && zranges() == before {
			t.Errorf("%s: the indexes were dropped unread although an entry was written", when)
		}
	}
}
