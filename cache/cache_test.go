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
)

var quiet = kvtest.Quiet

func connect(t *testing.T, cfg keyvalue.Config) *keyvalue.Client { return kvtest.Open(t, cfg) }

func standalone(t *testing.T) (*servertest.Server, *keyvalue.Client) {
	s := servertest.Standalone(t)
	return s, connect(t, keyvalue.Config{Addrs: []string{s.Addr()}})
}

func newBackend(t *testing.T, c valkey.Client, name string, opts cache.Options) *cache.Backend {
	t.Helper()
	opts.Logger = quiet
	b, err := cache.New(c, name, opts)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ctx(t *testing.T) context.Context { return kvtest.Ctx(t, 0) }

// allKeys lists every key on every primary with SCAN.
func allKeys(t *testing.T, c valkey.Client) []string {
	t.Helper()
	var out []string
	nodes := map[string]valkey.Client{"": c}
	if c.Mode() == valkey.ClientModeCluster {
		nodes = c.Nodes()
	}
	for _, n := range nodes {
		var cursor uint64
		for range 100000 {
			e, err := n.Do(ctx(t), n.B().Scan().Cursor(cursor).Count(1000).Build()).AsScanEntry()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, e.Elements...)
			if cursor = e.Cursor; cursor == 0 {
				break
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func mustSet(t *testing.T, b *cache.Backend, id string, tags ...string) {
	t.Helper()
	if err := b.Set(ctx(t), id, []byte("value of "+id), tags, cache.DefaultLifetime); err != nil {
		t.Fatal(err)
	}
}

// eachTopology runs fn against a standalone server and a 3-primary cluster.
func eachTopology(t *testing.T, fn func(t *testing.T, c *keyvalue.Client)) {
	t.Run("standalone", func(t *testing.T) {
		t.Parallel()
		_, c := standalone(t)
		fn(t, c)
	})
	t.Run("cluster", func(t *testing.T) {
		t.Parallel()
		cl := servertest.Cluster(t, 3)
		fn(t, connect(t, keyvalue.Config{Mode: keyvalue.ModeCluster, Addrs: cl.Addrs()}))
	})
}

func TestSetGetHasRemove(t *testing.T) {
	t.Parallel()
	eachTopology(t, func(t *testing.T, c *keyvalue.Client) {
		b := newBackend(t, c, "pages", cache.Options{DefaultLifetime: 10 * time.Minute})
		mustSet(t, b, "p1", "page_1", "site_a")
		got, err := b.Get(ctx(t), "p1")
		if err != nil || string(got) != "value of p1" {
			t.Fatalf("Get = %q, %v", got, err)
		}
		if ok, err := b.Has(ctx(t), "p1"); !ok || err != nil {
			t.Fatalf("Has = %v, %v", ok, err)
		}
		if _, err := b.Get(ctx(t), "nope"); !errors.Is(err, cache.ErrNotFound) {
			t.Fatalf("Get(missing) err = %v", err)
		}
		ttl := pttl(t, c, b.Prefix()+"v:p1")
		if ttl <= 9*time.Minute || ttl > 10*time.Minute {
			t.Errorf("default lifetime: PTTL = %s, want ~10m", ttl)
		}
		if err := b.Set(ctx(t), "forever", []byte("x"), nil, cache.Unlimited); err != nil {
			t.Fatal(err)
		}
		if ttl := pttl(t, c, b.Prefix()+"v:forever"); ttl != -1 {
			t.Errorf("unlimited: PTTL = %s, want none", ttl)
		}
		if err := b.Set(ctx(t), "short", []byte("x"), []string{"t"}, 1500*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if ttl := pttl(t, c, b.Prefix()+"v:short"); ttl <= time.Second || ttl > 1500*time.Millisecond {
			t.Errorf("explicit lifetime: PTTL = %s", ttl)
		}

		if ok, err := b.Remove(ctx(t), "p1"); !ok || err != nil {
			t.Fatalf("Remove = %v, %v", ok, err)
		}
		if ok, _ := b.Remove(ctx(t), "p1"); ok {
			t.Error("second Remove reported an entry")
		}
		for _, k := range allKeys(t, c) {
			if strings.Contains(k, "p1") || strings.Contains(k, "page_1") || strings.Contains(k, "site_a") {
				t.Errorf("key %s left after Remove", k)
			}
		}
	})
}

func pttl(t *testing.T, c valkey.Client, key string) time.Duration {
	t.Helper()
	ms, err := c.Do(ctx(t), c.B().Pttl().Key(key).Build()).AsInt64()
	if err != nil {
		t.Fatal(err)
	}
	if ms < 0 {
		return time.Duration(ms)
	}
	return time.Duration(ms) * time.Millisecond
}

func TestResetChangesTags(t *testing.T) {
	t.Parallel()
	eachTopology(t, func(t *testing.T, c *keyvalue.Client) {
		b := newBackend(t, c, "hash", cache.Options{})
		mustSet(t, b, "e", "x", "y")
		mustSet(t, b, "other", "x")
		mustSet(t, b, "e", "y", "z", "z")
		p := b.Prefix()
		if got := valueTags(t, c, p+"v:e"); !slices.Equal(got, []string{"y", "z"}) {
			t.Errorf("tags in the value = %v, want [y z]", got)
		}
		if got := zmembers(t, c, p+"i:x"); !slices.Equal(got, []string{"other"}) {
			t.Errorf("tag x = %v, want [other]", got)
		}
		for _, tag := range []string{"y", "z"} {
			if got, _ := b.IDsByTag(ctx(t), tag); !slices.Equal(got, []string{"e"}) {
				t.Errorf("IDsByTag(%s) = %v, want [e]", tag, got)
			}
		}
		mustSet(t, b, "e") // no tags at all
		if got := allKeys(t, c); slices.Contains(got, p+"i:y") || slices.Contains(got, p+"i:z") {
			t.Errorf("untagged re-set left bookkeeping: %v", got)
		}
	})
}

func TestFlushByTags(t *testing.T) {
	t.Parallel()
	eachTopology(t, func(t *testing.T, c *keyvalue.Client) {
		b := newBackend(t, c, "pages", cache.Options{BatchSize: 7})
		for i := range 40 {
			tags := []string{fmt.Sprintf("g%d", i%4)}
			if i%10 == 0 {
				tags = append(tags, "keep-too")
			}
			mustSet(t, b, fmt.Sprintf("e%02d", i), tags...)
		}
		mustSet(t, b, "untagged")
		n, err := b.FlushByTags(ctx(t), "g0", "g1")
		if err != nil || n != 20 {
			t.Fatalf("FlushByTags = %d, %v; want 20", n, err)
		}
		p := b.Prefix()
		keys := allKeys(t, c)
		for i := range 40 {
			id := fmt.Sprintf("e%02d", i)
			has := slices.Contains(keys, p+"v:"+id)
			if flushed := i%4 < 2; flushed == has {
				t.Errorf("%s: present=%v after flushing g0,g1", id, has)
			}
		}
		if slices.Contains(keys, p+"i:g0") || slices.Contains(keys, p+"i:g1") {
			t.Error("flushed tags' indexes left behind")
		}
		// The other tag of a flushed entry loses it too: no orphaned members.
		want := []string{"e10", "e30"}
		if got := zmembers(t, c, p+"i:keep-too"); !slices.Equal(got, want) {
			t.Errorf("keep-too = %v, want %v", got, want)
		}
		if n, err := b.FlushByTags(ctx(t), "never-used"); n != 0 || err != nil {
			t.Errorf("flush of an unknown tag = %d, %v", n, err)
		}
	})
}

func TestFlushTouchesOnlyItsNamespace(t *testing.T) {
	t.Parallel()
	eachTopology(t, func(t *testing.T, c *keyvalue.Client) {
		pages := newBackend(t, c, "pages", cache.Options{BatchSize: 50})
		pages2 := newBackend(t, c, "pages2", cache.Options{})
		for i := range 500 {
			mustSet(t, pages, fmt.Sprintf("p%d", i), fmt.Sprintf("t%d", i%7))
		}
		mustSet(t, pages2, "p1", "t1")
		admin := kvtest.Admin(t, c)
		if err := admin.Do(ctx(t), admin.B().Set().Key("kv:{c:pages}x").Value("unrelated").Build()).Error(); err != nil {
			t.Fatal(err)
		}
		if err := admin.Do(ctx(t), admin.B().Set().Key("unrelated").Value("1").Build()).Error(); err != nil {
			t.Fatal(err)
		}
		var calls, last int
		n, err := pages.Flush(ctx(t), func(done int) { calls++; last = done })
		if err != nil || n != 500+7 {
			t.Fatalf("Flush = %d, %v; want %d keys (500 values, 7 indexes)", n, err, 500+7)
		}
		if calls < 2 || last != n {
			t.Errorf("progress called %d times, last %d", calls, last)
		}
		keys := allKeys(t, c)
		// The flush's stamp stays (it expires after Options.MaxLoadTime):
		// a computation that began before the flush must not store after it.
		want := []string{"kv:{c:pages2}:i:t1", "kv:{c:pages2}:v:p1", "kv:{c:pages}:f", "kv:{c:pages}x", "unrelated"}
		if !slices.Equal(keys, want) {
			t.Errorf("after Flush: %v, want %v", keys, want)
		}
	})
}

// TestFlushInALargeDatabase: a small cache among many other keys is
// flushed in about one SCAN per BatchSize of its own keys plus one per
// scan.SparseGrowth·BatchSize other keys (SCAN's COUNT grows while pages
// come back nearly empty), and the other keys stay.
func TestFlushInALargeDatabase(t *testing.T) {
	t.Parallel()
	s, c := standalone(t)
	admin := kvtest.Admin(t, c)
	const others, entries = 64_000, 2_000
	for start := 0; start < others; start += 4_000 {
		cmds := make(valkey.Commands, 0, 4_000)
		for i := start; i < start+4_000; i++ {
			cmds = append(cmds, admin.B().Set().Key("other:"+strconv.Itoa(i)).Value("x").Build())
		}
		for _, r := range admin.DoMulti(ctx(t), cmds...) {
			if err := r.Error(); err != nil {
				t.Fatal(err)
			}
		}
	}
	b := newBackend(t, c, "small", cache.Options{BatchSize: 500})
	var es []cache.Entry
	for i := range entries {
		es = append(es, cache.Entry{ID: "e" + strconv.Itoa(i), Data: []byte("v"), Tags: []string{"t" + strconv.Itoa(i%10)}, Lifetime: time.Hour})
	}
	if err := b.SetMany(ctx(t), es); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Do("CONFIG", "RESETSTAT"); err != nil {
		t.Fatal(err)
	}
	n, err := b.Flush(ctx(t), nil)
	if err != nil || n != entries+10 {
		t.Fatalf("Flush = %d, %v; want %d", n, err, entries+10)
	}
	scans, err := s.Calls("scan")
	if err != nil {
		t.Fatal(err)
	}
	// A fixed COUNT of 500 takes (64,000 + 2,010) / 500 = 132 calls.
	t.Logf("flush of %d keys among %d others: %d SCAN calls", entries+10, others, scans)
	if scans == 0 || scans > 40 {
		t.Errorf("%d SCAN calls; want at most 40 (a fixed COUNT takes 132)", scans)
	}
	if size, err := s.Do("DBSIZE"); err != nil || size != strconv.Itoa(others+1) { // + the flush stamp
		t.Errorf("DBSIZE after the flush = %s, %v; want %d", size, err, others+1)
	}
}

func TestCollectGarbage(t *testing.T) {
	t.Parallel()
	eachTopology(t, func(t *testing.T, c *keyvalue.Client) {
		b := newBackend(t, c, "rootline", cache.Options{BatchSize: 10})
		// The lifetime outlasts the 60 Sets even on a loaded machine: a Set
		// after the first entries expired would prune them (a quarter of
		// Sets prune their indexes) and the count below would be short.
		const lifetime = time.Second
		for i := range 60 {
			if err := b.Set(ctx(t), fmt.Sprintf("short%d", i), []byte("x"), []string{"a", fmt.Sprintf("s%d", i%3)}, lifetime); err != nil {
				t.Fatal(err)
			}
		}
		mustSet(t, b, "long", "a")
		p := b.Prefix()
		servertest.WaitFor(t, 5*time.Second, "short entries expired", func() error {
			if ok, _ := b.Has(ctx(t), "short0"); ok {
				return errors.New("still there")
			}
			if ok, _ := b.Has(ctx(t), "short59"); ok {
				return errors.New("still there")
			}
			return nil
		})
		if got := len(zmembers(t, c, p+"i:a")); got != 61 {
			t.Fatalf("before GC tag a has %d members, want 61 (dangling ids of expired entries)", got)
		}
		if got, _ := b.IDsByTag(ctx(t), "a"); !slices.Equal(got, []string{"long"}) {
			t.Errorf("IDsByTag skips expired ids: got %v", got)
		}
		st, err := b.CollectGarbage(ctx(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		if st.RemovedMembers != 120 || st.Indexes != 4 || st.IndexesRemoved != 3 {
			t.Errorf("GC stats = %+v, want 120 members from 4 indexes, 3 of them emptied", st)
		}
		if got := zmembers(t, c, p+"i:a"); !slices.Equal(got, []string{"long"}) {
			t.Errorf("after GC tag a = %v", got)
		}
		want := []string{p + "i:a", p + "v:long"}
		if got := allKeys(t, c); !slices.Equal(got, want) {
			t.Errorf("after GC keys = %v, want %v", got, want)
		}
	})
}

func TestBadInputIsRefusedAndWritesNothing(t *testing.T) {
	t.Parallel()
	_, c := standalone(t)
	b := newBackend(t, c, "pages", cache.Options{MaxValueBytes: 1024})
	long := strings.Repeat("x", 251)
	cases := []struct {
		name string
		call func() error
		kind error
		text string
	}{
		{"empty id", func() error { return b.Set(ctx(t), "", nil, nil, 0) }, cache.ErrInvalidID, `cache pages: invalid id "": must not be empty`},
		{"long id", func() error { return b.Set(ctx(t), long, nil, nil, 0) }, cache.ErrInvalidID, "is 251 bytes, over the 250-byte limit"},
		{"space in id", func() error { return b.Set(ctx(t), "a b", nil, nil, 0) }, cache.ErrInvalidID, `invalid id "a b": contains whitespace (U+0020) at byte 1; use '_' or '-' instead`},
		{"control char", func() error { return b.Set(ctx(t), "a\x00b", nil, nil, 0) }, cache.ErrInvalidID, "contains the control character U+0000 at byte 1"},
		{"bad utf-8", func() error { return b.Set(ctx(t), "a\xffb", nil, nil, 0) }, cache.ErrInvalidID, "is not valid UTF-8"},
		{"bad tag", func() error { return b.Set(ctx(t), "ok", nil, []string{"fine", "not fine"}, 0) }, cache.ErrInvalidTag, `invalid tag "not fine": contains whitespace`},
		{"empty tag", func() error { _, err := b.FlushByTags(ctx(t), "a", ""); return err }, cache.ErrInvalidTag, "must not be empty"},
		{"too many tags", func() error { return b.Set(ctx(t), "ok", nil, make([]string, 1001), 0) }, cache.ErrInvalidTag, "an entry may have at most 1000 tags"},
		{"negative lifetime", func() error { return b.Set(ctx(t), "ok", nil, nil, -5*time.Second) }, cache.ErrInvalidLifetime, "use a positive duration, cache.DefaultLifetime or cache.Unlimited"},
		{"sub-ms lifetime", func() error { return b.Set(ctx(t), "ok", nil, nil, time.Microsecond) }, cache.ErrInvalidLifetime, "the smallest lifetime is 1ms"},
		{"too large", func() error { return b.Set(ctx(t), "big", make([]byte, 2000), nil, 0) }, cache.ErrTooLarge, "the stored value would be 2001 bytes (from 2000 bytes of data), over MaxValueBytes 1024"},
		{"bad name", func() error { _, err := cache.New(c, "pa}ges", cache.Options{}); return err }, cache.ErrInvalidName, "byte 2 ('}') is not allowed"},
		{"empty name", func() error { _, err := cache.New(c, "", cache.Options{}); return err }, cache.ErrInvalidName, "must not be empty"},
		{"get bad id", func() error { _, err := b.Get(ctx(t), "a\tb"); return err }, cache.ErrInvalidID, "contains whitespace"},
		{"bad compression", func() error { _, err := cache.New(c, "p", cache.Options{Compression: "gzip"}); return err }, cache.ErrInvalidOptions,
			`cache p: invalid options: Options.Compression "gzip" is not supported: use none, zstd or s2`},
		{"negative batch", func() error { _, err := cache.New(c, "p", cache.Options{BatchSize: -1}); return err }, cache.ErrInvalidOptions,
			"cache p: invalid options: Options.BatchSize must not be negative, got -1 (0 means the default)"},
		{"negative local TTL", func() error { _, err := cache.New(c, "p", cache.Options{LocalCacheTTL: -time.Second}); return err }, cache.ErrInvalidOptions,
			"Options.LocalCacheTTL must not be negative, got -1s"},
		{"negative default lifetime", func() error { _, err := cache.New(c, "p", cache.Options{DefaultLifetime: -time.Second}); return err }, cache.ErrInvalidLifetime,
			"cache p: invalid options: Options.DefaultLifetime is -1s: use a positive duration, 0 for the default (1h) or Unlimited"},
	}
	for _, tc := range cases {
		err := tc.call()
		t.Logf("%-18s %v", tc.name, err)
		if !errors.Is(err, tc.kind) || !strings.Contains(fmt.Sprint(err), tc.text) {
			t.Errorf("%s: err = %v; want %v saying %q", tc.name, err, tc.kind, tc.text)
		}
	}
	if keys := allKeys(t, c); len(keys) != 0 {
		t.Errorf("refused calls wrote %v", keys)
	}
}

func TestTypedCodecSwitchWithoutFlush(t *testing.T) {
	t.Parallel()
	_, c := standalone(t)
	type page struct {
		Title string
		Body  string
		Views int
	}
	v := page{Title: "Home", Body: strings.Repeat("lorem ipsum ", 500), Views: 7}
	writers := []struct {
		codec cache.Codec
		comp  cache.Compression
	}{{cache.JSON, cache.CompressionNone}, {cache.JSON, cache.CompressionZstd}, {cache.Msgpack, cache.CompressionS2}, {cache.Gob, cache.CompressionZstd}}
	for i, w := range writers {
		id := fmt.Sprintf("p%d", i)
		wb := newBackend(t, c, "pages", cache.Options{Compression: w.comp})
		if err := cache.NewTyped[page](wb, w.codec).Set(ctx(t), id, v, []string{"home"}, 0); err != nil {
			t.Fatal(err)
		}
		raw, _ := c.Do(ctx(t), c.B().Strlen().Key(wb.Prefix()+"v:"+id).Build()).AsInt64()
		// Read with a differently configured cache: the header decides.
		rb := newBackend(t, c, "pages", cache.Options{})
		got, err := cache.NewTyped[page](rb, cache.Msgpack).Get(ctx(t), id)
		if err != nil || got != v {
			t.Errorf("written %s/%s, read with msgpack/none: %v", w.codec.Name(), w.comp, err)
		}
		t.Logf("%s + %s: %d bytes stored for %d bytes of body", w.codec.Name(), w.comp, raw, len(v.Body))
	}
}

func TestCorruptPayloads(t *testing.T) {
	t.Parallel()
	_, c := standalone(t)
	b := newBackend(t, c, "pages", cache.Options{})
	typed := cache.NewTyped[map[string]int](b, cache.JSON)
	for id, raw := range map[string]string{
		"foreign": "plain text someone wrote", // 'p' = 0x70: compression 7
		"empty":   "",
		"badzstd": "\x11garbage",
		"badjson": "\x01{not json",
		"unknown": "\x0cx", // codec 12 not registered
		"bigs2":   "\x20\xff\xff\xff\xff\x0f",
		"highbit": "\x81",                  // tags follow, but no length
		"taglen":  "\x81\x00\x00\x01\x00a", // tags claim 256 bytes
	} {
		if err := c.Do(ctx(t), c.B().Set().Key(b.Prefix()+"v:"+id).Value(raw).Build()).Error(); err != nil {
			t.Fatal(err)
		}
		_, err := typed.Get(ctx(t), id)
		t.Logf("%-8s %v", id, err)
		if !errors.Is(err, cache.ErrCorrupt) {
			t.Errorf("%s: err = %v, want ErrCorrupt", id, err)
		}
		calls := 0
		v, err := typed.GetOrSet(ctx(t), id, func(context.Context) (map[string]int, []string, time.Duration, error) {
			calls++
			return map[string]int{"fresh": 1}, []string{"t"}, time.Minute, nil
		})
		if err != nil || v["fresh"] != 1 || calls != 1 {
			t.Errorf("%s: GetOrSet = %v, %v after %d loads; want the corrupt entry reloaded", id, v, err, calls)
		}
		if v, err := typed.Get(ctx(t), id); err != nil || v["fresh"] != 1 {
			t.Errorf("%s: not overwritten: %v, %v", id, v, err)
		}
	}
}

func TestGetOrSetLoadsOnce(t *testing.T) {
	t.Parallel()
	_, c := standalone(t)
	typed := cache.NewTyped[string](newBackend(t, c, "hash", cache.Options{}), cache.Raw)
	var loads atomic.Int32
	load := func(context.Context) (string, []string, time.Duration, error) {
		loads.Add(1)
		time.Sleep(100 * time.Millisecond)
		return "computed", []string{"x"}, time.Minute, nil
	}
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			if v, err := typed.GetOrSet(ctx(t), "k", load); err != nil || v != "computed" {
				t.Errorf("GetOrSet = %q, %v", v, err)
			}
		})
	}
	wg.Wait()
	if n := loads.Load(); n != 1 {
		t.Errorf("32 concurrent misses called the loader %d times, want 1", n)
	}
	if v, err := typed.GetOrSet(ctx(t), "k", load); err != nil || v != "computed" || loads.Load() != 1 {
		t.Errorf("hit: %q, %v, loads %d", v, err, loads.Load())
	}
	// A failing loader stores nothing and returns its error.
	_, err := typed.GetOrSet(ctx(t), "fails", func(context.Context) (string, []string, time.Duration, error) {
		return "", nil, 0, errors.New("database down")
	})
	if err == nil || !strings.Contains(err.Error(), `load "fails": database down`) {
		t.Errorf("loader error = %v", err)
	}
	if ok, _ := typed.Backend().Has(ctx(t), "fails"); ok {
		t.Error("a failed load stored something")
	}
}

func TestLocalReadCache(t *testing.T) {
	t.Parallel()
	s, c := standalone(t)
	local := newBackend(t, c, "pages", cache.Options{LocalCacheTTL: time.Minute})
	other := newBackend(t, connect(t, keyvalue.Config{Addrs: []string{s.Addr()}, ClientName: "other"}), "pages", cache.Options{})
	mustSet(t, other, "p")
	gets := func() int {
		n, err := s.Calls("get")
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	for range 5 {
		if v, err := local.Get(ctx(t), "p"); err != nil || string(v) != "value of p" {
			t.Fatalf("Get = %q, %v", v, err)
		}
	}
	if n := gets(); n != 1 {
		t.Errorf("5 Gets with the local cache reached the server %d times, want 1", n)
	}
	// Another client changes the entry: the server invalidates the local copy.
	if err := other.Set(ctx(t), "p", []byte("changed"), nil, 0); err != nil {
		t.Fatal(err)
	}
	servertest.WaitFor(t, 5*time.Second, "invalidation", func() error {
		v, err := local.Get(ctx(t), "p")
		if err != nil || string(v) != "changed" {
			return fmt.Errorf("still %q, %v", v, err)
		}
		return nil
	})
}

func TestStats(t *testing.T) {
	t.Parallel()
	_, c := standalone(t)
	b := newBackend(t, c, "pages", cache.Options{BatchSize: 10})
	for i := range 30 {
		mustSet(t, b, fmt.Sprintf("e%d", i), fmt.Sprintf("t%d", i%3))
	}
	st, err := b.Stats(ctx(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Entries != 30 || st.Tags != 3 || st.Keys != 33 || st.MemoryBytes <= 0 {
		t.Errorf("Stats = %+v; want 30 entries, 3 tags, 33 keys, some memory", st)
	}
}

func TestCacheSurvivesSentinelFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("failover takes several seconds")
	}
	t.Parallel()
	set := servertest.Sentinel(t)
	c := connect(t, keyvalue.Config{Mode: keyvalue.ModeSentinel, Addrs: set.SentinelAddrs(),
		Sentinel: keyvalue.SentinelConfig{Master: set.Master, RefreshInterval: time.Second}, IOTimeout: 2 * time.Second})
	b := newBackend(t, c, "pages", cache.Options{})
	mustSet(t, b, "before", "t")

	// Write and read continuously while the primary dies.
	stop := make(chan struct{})
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			cctx, cancel := context.WithTimeout(t.Context(), time.Second)
			id := fmt.Sprintf("e%d", i%50)
			err := b.Set(cctx, id, []byte("v"), []string{"t"}, time.Minute)
			if err == nil {
				_, err = b.Get(cctx, id)
			}
			cancel()
			if err != nil {
				failed.Add(1)
				time.Sleep(20 * time.Millisecond)
			} else {
				ok.Add(1)
			}
		}
	})
	time.Sleep(200 * time.Millisecond)
	killed := time.Now()
	_, promotion := set.KillPrimary(t)
	okAtPromotion := ok.Load()
	servertest.WaitFor(t, 30*time.Second, "cache serving on the new primary", func() error {
		if ok.Load() < okAtPromotion+20 {
			return fmt.Errorf("%d successful set+get since promotion", ok.Load()-okAtPromotion)
		}
		return nil
	})
	recovered := time.Since(killed)
	close(stop)
	wg.Wait()
	// The new primary serves flushes with the tag bookkeeping intact.
	if _, err := b.FlushByTags(ctx(t), "t"); err != nil {
		t.Fatal(err)
	}
	if ids, err := b.IDsByTag(ctx(t), "t"); err != nil || len(ids) != 0 {
		t.Errorf("after flush on the new primary: %v, %v", ids, err)
	}
	t.Logf("promotion %s; cache served again within %s of the kill; %d ok / %d failed operations",
		promotion.Round(time.Millisecond), recovered.Round(time.Millisecond), ok.Load(), failed.Load())
}

// TestScriptCacheFlushed: a server that lost its script cache (restart,
// failover to a replica, SCRIPT FLUSH) gets the scripts loaded again.
func TestScriptCacheFlushed(t *testing.T) {
	t.Parallel()
	eachTopology(t, func(t *testing.T, c *keyvalue.Client) {
		b := newBackend(t, c, "scripts", cache.Options{})
		mustSet(t, b, "a", "x")
		for _, n := range kvtest.Admin(t, c).Nodes() {
			if err := n.Do(ctx(t), n.B().ScriptFlush().Build()).Error(); err != nil {
				t.Fatal(err)
			}
		}
		mustSet(t, b, "b", "x")
		if n, err := b.FlushByTags(ctx(t), "x"); err != nil || n != 2 {
			t.Fatalf("FlushByTags after SCRIPT FLUSH = %d, %v", n, err)
		}
		for _, n := range kvtest.Admin(t, c).Nodes() {
			_ = n.Do(ctx(t), n.B().ScriptFlush().Build()).Error()
		}
		if _, err := b.CollectGarbage(ctx(t), nil); err != nil {
			t.Fatalf("GC after SCRIPT FLUSH: %v", err)
		}
	})
}
