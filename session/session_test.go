package session_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/kvtest"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/servertest"
	"github.com/keyvalue-go/keyvalue/session"
	"github.com/valkey-io/valkey-go"
)

var (
	quiet = kvtest.Quiet
	key   = []byte("0123456789abcdef0123456789abcdef")
)

func ctx(t *testing.T) context.Context { return kvtest.Ctx(t, 0) }

func setup(t *testing.T, o session.Options) (*servertest.Server, *keyvalue.Client, *session.Store) {
	t.Helper()
	s := servertest.Standalone(t)
	c := kvtest.Open(t, keyvalue.Config{Addrs: []string{s.Addr()}})
	return s, c, newStore(t, c, o)
}

func newStore(t *testing.T, c valkey.Client, o session.Options) *session.Store {
	t.Helper()
	if o.Prefix == "" {
		o.Prefix = "fe"
	}
	if o.Key == nil && o.KeyFile == "" {
		o.Key = key
	}
	o.Logger = quiet
	st, err := session.New(c, o)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// dump returns every key and string value on the server (SCAN + GET).
func dump(t *testing.T, c valkey.Client) string {
	t.Helper()
	var b strings.Builder
	var cursor uint64
	for range 1000 {
		e, err := c.Do(ctx(t), c.B().Scan().Cursor(cursor).Count(100).Build()).AsScanEntry()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range e.Elements {
			b.WriteString(k + "\n")
			if v, err := c.Do(ctx(t), c.B().Get().Key(k).Build()).ToString(); err == nil {
				b.WriteString(v + "\n")
			} else if m, err := c.Do(ctx(t), c.B().Zrange().Key(k).Min("0").Max("-1").Build()).AsStrSlice(); err == nil {
				b.WriteString(strings.Join(m, "\n") + "\n")
			}
		}
		if cursor = e.Cursor; cursor == 0 {
			break
		}
	}
	return b.String()
}

func TestRoundTripAndHMACStorage(t *testing.T) {
	t.Parallel()
	_, c, st := setup(t, session.Options{})
	in := session.Record{UserID: "u42", Permanent: true, Binding: "ua:abc", Data: json.RawMessage(`{"cart":[1,2,3],"lang":"de"}`), Bytes: []byte{0, 1, 2, 255}}
	rec, err := st.Create(ctx(t), in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := st.GetWith(ctx(t), rec.ID, session.GetOptions{CheckBinding: true, Binding: "ua:abc"})
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != rec.ID || got.UserID != "u42" || !got.Permanent || got.Binding != "ua:abc" || string(got.Data) != string(in.Data) ||
		string(got.Bytes) != string(in.Bytes) || !got.Created.Equal(rec.Created) || !got.Expires.Equal(rec.Expires) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, rec)
	}
	if d := time.Until(got.Expires); d < 29*24*time.Hour {
		t.Errorf("permanent session expires in %s, want ~30 days", d)
	}
	if _, err := st.GetWith(ctx(t), rec.ID, session.GetOptions{CheckBinding: true, Binding: "ua:other"}); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("wrong binding: %v", err)
	}
	all := dump(t, c)
	if strings.Contains(all, rec.ID) {
		t.Fatalf("the raw session id appears in the keyspace:\n%s", all)
	}
	if !strings.Contains(all, `"user_id":"u42"`) || !strings.Contains(all, `"cart":[1,2,3]`) {
		t.Errorf("records are not readable JSON:\n%s", all)
	}
	t.Logf("what redis-cli sees:\n%s", all)
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	_, c, st := setup(t, session.Options{MaxRecordBytes: 2048})
	for _, id := range []string{"", "short", "has space in it 123456", strings.Repeat("x", 300), "nonexistent-but-valid-id-123"} {
		if _, err := st.Get(ctx(t), id); !errors.Is(err, session.ErrNotFound) || err.Error() != "session: not found" {
			t.Errorf("Get(%q) = %v; want a plain not found", id, err)
		}
	}
	_, err := st.Create(ctx(t), session.Record{Bytes: make([]byte, 4096)})
	if !errors.Is(err, session.ErrTooLarge) {
		t.Fatalf("oversized record: %v", err)
	}
	t.Logf("error a user sees: %v", err)

	rec, _ := st.Create(ctx(t), session.Record{UserID: "u"})
	var k string
	for _, line := range strings.Split(dump(t, c), "\n") {
		if strings.HasPrefix(line, "kv:{s:fe}:") && len(line) == len("kv:{s:fe}:")+64 {
			k = line
		}
	}
	if err := c.Do(ctx(t), c.B().Set().Key(k).Value(`{"v":1,"garbage`).Keepttl().Build()).Error(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(ctx(t), rec.ID); !errors.Is(err, session.ErrCorrupt) {
		t.Errorf("corrupt record: %v", err)
	}
	_, err = st.Set(ctx(t), rec.ID, session.Record{})
	if !errors.Is(err, session.ErrCorrupt) {
		t.Errorf("Set over a corrupt record: %v (must not overwrite it silently)", err)
	}
	t.Logf("error a user sees: %v", err)
	if err := c.Do(ctx(t), c.B().Set().Key(k).Value(`not json at all`).Keepttl().Build()).Error(); err != nil {
		t.Fatal(err)
	}
	if err := st.SCS().Commit(rec.ID, []byte("x"), time.Now().Add(time.Hour)); !errors.Is(err, session.ErrCorrupt) {
		t.Errorf("scs Commit over a foreign value: %v (must not overwrite it silently)", err)
	}
	if v, _ := c.Do(ctx(t), c.B().Get().Key(k).Build()).ToString(); v != `not json at all` {
		t.Errorf("corrupt record was overwritten: %q", v)
	}

	for _, o := range []session.Options{{Prefix: "fe", Key: []byte("short")}, {Prefix: "f{e}", Key: key}} {
		_, err := session.New(c, o)
		if !errors.Is(err, session.ErrInvalidOptions) {
			t.Errorf("New(%+v) = %v", o, err)
		}
		t.Logf("error a user sees: %v", err)
	}
}

func TestConcurrentUpdatesLoseNothing(t *testing.T) {
	t.Parallel()
	_, _, st := setup(t, session.Options{UpdateRetries: 100})
	rec, err := st.Create(ctx(t), session.Record{Data: json.RawMessage(`{"n":0}`)})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			for range 10 {
				_, err := st.Update(ctx(t), rec.ID, func(r *session.Record) error {
					var d struct{ N int }
					if err := json.Unmarshal(r.Data, &d); err != nil {
						return err
					}
					r.Data = json.RawMessage(fmt.Sprintf(`{"n":%d}`, d.N+1))
					return nil
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	got, _ := st.Get(ctx(t), rec.ID)
	if string(got.Data) != `{"n":200}` {
		t.Errorf("after 200 concurrent increments: %s", got.Data)
	}
}

func TestRenew(t *testing.T) {
	t.Parallel()
	_, c, st := setup(t, session.Options{RenewGrace: 400 * time.Millisecond})
	rec, _ := st.Create(ctx(t), session.Record{UserID: "u1", Data: json.RawMessage(`{"x":1}`)})

	// Readers hammer the old id while it is renewed: they never miss it.
	stop := make(chan struct{})
	var misses, reads int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, err := st.GetWith(ctx(t), rec.ID, session.GetOptions{NoTouch: true})
				mu.Lock()
				reads++
				if err != nil {
					misses++
				}
				mu.Unlock()
			}
		})
	}
	time.Sleep(20 * time.Millisecond)
	newID, err := st.Renew(ctx(t), rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	close(stop)
	wg.Wait()
	if misses != 0 {
		t.Errorf("%d of %d reads of the old id failed during renew", misses, reads)
	}
	if newID == rec.ID {
		t.Fatal("same id")
	}
	got, err := st.Get(ctx(t), newID)
	if err != nil || string(got.Data) != `{"x":1}` || got.UserID != "u1" || !got.Created.Equal(rec.Created) {
		t.Fatalf("new id: %+v, %v", got, err)
	}
	old, err := st.Get(ctx(t), rec.ID)
	if err != nil || !old.ReadOnly {
		t.Errorf("old id during grace: %+v, %v; want readable and read-only", old, err)
	}
	if _, err := st.Update(ctx(t), rec.ID, func(*session.Record) error { return nil }); !errors.Is(err, session.ErrReadOnly) {
		t.Errorf("write through the old id: %v", err)
	}
	if _, err := st.Renew(ctx(t), rec.ID); !errors.Is(err, session.ErrReadOnly) {
		t.Errorf("renew of the old id: %v", err)
	}
	all, _ := st.GetAll(ctx(t))
	if len(all) != 1 || all[0].ID != newID {
		t.Errorf("GetAll after renew: %+v", all)
	}
	mine, _ := st.GetAllByUser(ctx(t), "u1")
	if len(mine) != 1 || mine[0].ID != newID {
		t.Errorf("GetAllByUser after renew: %+v", mine)
	}
	time.Sleep(450 * time.Millisecond)
	if _, err := st.Get(ctx(t), rec.ID); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("old id after the grace period: %v", err)
	}
	if strings.Contains(dump(t, c), newID) {
		t.Error("the new raw id appears in the keyspace")
	}
}

// TestGetAllSkipsGoneAndCorruptRecords lists records some of which
// vanished or were overwritten with junk behind the store's back (an
// independent writer of the keyspace): the others come back whole, each
// with its own data, whatever their position among the decoding
// goroutines' shares — in one MGET (300 records) and in chunks of them
// (2,500: three MGETs, the last one partial).
func TestGetAllSkipsGoneAndCorruptRecords(t *testing.T) {
	t.Parallel()
	for _, n := range []int{300, 2500} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			t.Parallel()
			prefix := fmt.Sprint("gone", n)
			s, _, st := setup(t, session.Options{Prefix: prefix})
			var mu sync.Mutex
			want := map[string]string{}
			var next atomic.Int64
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() {
					for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
						data := fmt.Sprintf(`{"i":%d}`, i)
						rec, err := st.Create(ctx(t), session.Record{Data: json.RawMessage(data)})
						if err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						want[rec.ID] = data
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			if t.Failed() {
				return
			}
			index := "kv:{s:" + prefix + "}:"
			hashes, err := s.Do("ZRANGE", index+"idx", "0", "-1")
			if err != nil {
				t.Fatal(err)
			}
			members := strings.Fields(hashes)
			if len(members) != n {
				t.Fatalf("the index holds %d members, want %d", len(members), n)
			}
			gone := []int{0, 1, n / 2, n - 1}
			junk := []int{2, n/3 + 1, n - 2}
			for _, i := range gone {
				if _, err := s.Do("DEL", index+members[i]); err != nil {
					t.Fatal(err)
				}
			}
			for _, i := range junk {
				if _, err := s.Do("SET", index+members[i], `{"v":1,"data":`); err != nil {
					t.Fatal(err)
				}
			}
			all, err := st.GetAll(ctx(t))
			if err != nil {
				t.Fatal(err)
			}
			if len(all) != n-len(gone)-len(junk) {
				t.Fatalf("GetAll returned %d records, want %d (%d less %d gone and %d corrupt)", len(all), n-len(gone)-len(junk), n, len(gone), len(junk))
			}
			seen := map[string]bool{}
			for _, r := range all {
				if seen[r.ID] {
					t.Fatalf("id %s listed twice", r.ID)
				}
				seen[r.ID] = true
				if data, ok := want[r.ID]; !ok || string(r.Data) != data {
					t.Fatalf("record %s carries data %s, want %s", r.ID, r.Data, data)
				}
			}
		})
	}
}

func TestRemoveByUserAndGetAll(t *testing.T) {
	t.Parallel()
	s, _, st := setup(t, session.Options{})
	var aliceIDs []string
	for i := range 500 {
		user := []string{"alice", "bob", ""}[i%3]
		rec, err := st.Create(ctx(t), session.Record{UserID: user, Data: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))})
		if err != nil {
			t.Fatal(err)
		}
		if user == "alice" {
			aliceIDs = append(aliceIDs, rec.ID)
		}
	}
	// The first GetAll on a server loads the index script (EVALSHA answers
	// NOSCRIPT, then EVAL); count the steady state.
	if _, err := st.GetAll(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Do("CONFIG", "RESETSTAT"); err != nil {
		t.Fatal(err)
	}
	all, err := st.GetAll(ctx(t))
	if err != nil || len(all) != 500 {
		t.Fatalf("GetAll: %d records, %v", len(all), err)
	}
	stats, _ := s.Do("INFO", "commandstats")
	calls := 0
	for line := range strings.SplitSeq(stats, "\n") {
		if strings.HasPrefix(line, "cmdstat_") && !strings.HasPrefix(line, "cmdstat_config") && !strings.HasPrefix(line, "cmdstat_info") {
			var n int
			if _, err := fmt.Sscanf(line[strings.Index(line, "calls="):], "calls=%d", &n); err == nil {
				name := line[:strings.Index(line, ":")]
				if name == "cmdstat_evalsha" || name == "cmdstat_mget" || name == "cmdstat_eval" {
					calls += n
				} else if !strings.Contains(name, "zremrangebyscore") && !strings.Contains(name, "zrange") && !strings.Contains(name, "time") {
					t.Errorf("GetAll sent %s", line)
				}
			}
		}
	}
	if calls > 2 {
		t.Errorf("GetAll of 500 sessions took %d round trips, want at most 2", calls)
	}
	t.Logf("GetAll of 500 sessions: EVALSHA (pruning the index) and ZRANGE in one pipeline, then MGET: %d calls", calls)

	n, err := st.RemoveByUser(ctx(t), "alice")
	if err != nil || n != len(aliceIDs) {
		t.Fatalf("RemoveByUser = %d, %v; want %d", n, err, len(aliceIDs))
	}
	for _, id := range aliceIDs {
		if _, err := st.Get(ctx(t), id); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("alice's session %s survived: %v", id, err)
		}
	}
	bob, _ := st.GetAllByUser(ctx(t), "bob")
	all, _ = st.GetAll(ctx(t))
	if len(bob) != 167 || len(all) != 500-len(aliceIDs) {
		t.Errorf("after removing alice: bob has %d, all %d", len(bob), len(all))
	}
	if slices.ContainsFunc(all, func(r session.Record) bool { return r.UserID == "alice" }) {
		t.Error("GetAll still lists alice")
	}
}

func TestSlidingExpirationAndGC(t *testing.T) {
	t.Parallel()
	_, c, st := setup(t, session.Options{Lifetime: 2 * time.Second, TouchInterval: 300 * time.Millisecond, MaxLifetime: 3 * time.Second})
	rec, _ := st.Create(ctx(t), session.Record{})
	got, _ := st.Get(ctx(t), rec.ID)
	if !got.Touched.Equal(rec.Touched) {
		t.Error("Get within the touch interval wrote the session")
	}
	time.Sleep(350 * time.Millisecond)
	got, _ = st.Get(ctx(t), rec.ID)
	if !got.Expires.After(rec.Expires) {
		t.Errorf("Get after the touch interval did not extend: %s vs %s", got.Expires, rec.Expires)
	}
	if cap := rec.Created.Add(3 * time.Second); got.Expires.After(cap) {
		t.Errorf("expiry %s beyond MaxLifetime cap %s", got.Expires, cap)
	}
	// Short sessions expire; GC cleans their index entries (a long one keeps
	// the indexes alive: an index whose members all expired expires itself).
	long := newStore(t, c, session.Options{Prefix: "gc", Lifetime: time.Hour})
	if _, err := long.Create(ctx(t), session.Record{UserID: "u"}); err != nil {
		t.Fatal(err)
	}
	short := newStore(t, c, session.Options{Prefix: "gc", Lifetime: 100 * time.Millisecond})
	for range 10 {
		if _, err := short.Create(ctx(t), session.Record{UserID: "u"}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond)
	n, err := short.CollectGarbage(ctx(t))
	if err != nil || n != 20 {
		t.Errorf("GC dropped %d index entries, %v; want 20 (10 in the expiry index, 10 in the user's)", n, err)
	}
	if all, _ := long.GetAll(ctx(t)); len(all) != 1 {
		t.Errorf("after GC %d sessions listed, want the long one", len(all))
	}
}

func TestWaitReplicasSurvivesFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("failover takes several seconds")
	}
	t.Parallel()
	set := servertest.Sentinel(t)
	c, err := keyvalue.Open(keyvalue.Config{Mode: keyvalue.ModeSentinel, Addrs: set.SentinelAddrs(),
		Sentinel: keyvalue.SentinelConfig{Master: set.Master, RefreshInterval: time.Second}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st := newStore(t, c, session.Options{WaitReplicas: 1, WaitTimeout: time.Second})
	var ids []string
	for i := range 50 {
		rec, err := st.Create(ctx(t), session.Record{UserID: "u", Data: json.RawMessage(fmt.Sprint(i))})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rec.ID)
	}
	_, took := set.KillPrimary(t)
	servertest.WaitFor(t, 30*time.Second, "sessions readable on the new primary", func() error {
		for _, id := range ids {
			if _, err := st.GetWith(ctx(t), id, session.GetOptions{NoTouch: true}); err != nil {
				return err
			}
		}
		return nil
	})
	t.Logf("all %d sessions acknowledged by a replica survived the failover (promotion %s)", len(ids), took.Round(time.Millisecond))

	// A write that WAIT does not confirm is stored all the same: the caller
	// gets its id with ErrNotReplicated, never an orphan it cannot name.
	noReplica := newStore(t, c, session.Options{Prefix: "x", WaitReplicas: 2, WaitTimeout: 50 * time.Millisecond})
	rec, err := noReplica.Create(ctx(t), session.Record{UserID: "7"})
	if !errors.Is(err, session.ErrNotReplicated) || rec.ID == "" {
		t.Fatalf("WaitReplicas 2 with one replica: id %q, %v", rec.ID, err)
	}
	t.Logf("Create without enough replicas: %v", err)
	if got, err := noReplica.GetWith(ctx(t), rec.ID, session.GetOptions{NoTouch: true}); err != nil || got.UserID != "7" {
		t.Errorf("the unconfirmed session is not readable by its id: %+v, %v", got, err)
	}
	newID, err := noReplica.Renew(ctx(t), rec.ID)
	if !errors.Is(err, session.ErrNotReplicated) || newID == "" {
		t.Errorf("Renew without enough replicas: id %q, %v", newID, err)
	}
}

func TestOnCluster(t *testing.T) {
	t.Parallel()
	cl := servertest.Cluster(t, 3)
	c, err := keyvalue.Open(keyvalue.Config{Mode: keyvalue.ModeCluster, Addrs: cl.Addrs(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st := newStore(t, c, session.Options{Prefix: "cl"})
	var ids []string
	for i := range 20 {
		rec, err := st.Create(ctx(t), session.Record{UserID: fmt.Sprint("u", i%2)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rec.ID)
	}
	newID, err := st.Renew(ctx(t), ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Update(ctx(t), newID, func(r *session.Record) error { r.Data = json.RawMessage(`{"x":1}`); return nil }); err != nil {
		t.Fatal(err)
	}
	all, err := st.GetAll(ctx(t))
	if err != nil || len(all) != 20 {
		t.Fatalf("GetAll on a cluster: %d, %v", len(all), err)
	}
	if n, err := st.RemoveByUser(ctx(t), "u0"); err != nil || n != 10 {
		t.Fatalf("RemoveByUser on a cluster: %d, %v", n, err)
	}
	// GC finds the user indexes on whichever primary holds the store's slot.
	long := newStore(t, c, session.Options{Prefix: "clgc", Lifetime: time.Hour})
	short := newStore(t, c, session.Options{Prefix: "clgc", Lifetime: 100 * time.Millisecond})
	if _, err := long.Create(ctx(t), session.Record{UserID: "u"}); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, err := short.Create(ctx(t), session.Record{UserID: "u"}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond)
	if n, err := long.CollectGarbage(ctx(t)); err != nil || n != 10 {
		t.Errorf("GC on a cluster dropped %d index entries, %v; want 10", n, err)
	}
}
