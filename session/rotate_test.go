package session_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
	keyA = []byte("A123456789abcdef0123456789abcdef")
	keyB = []byte("B123456789abcdef0123456789abcdef")
	keyC = []byte("C123456789abcdef0123456789abcdef")
)

// recordKeys lists the store's record keys (not the indexes).
func recordKeys(t *testing.T, c valkey.Client) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(dump(t, c), "\n") {
		if strings.HasPrefix(line, "kv:{s:fe}:") && !strings.HasPrefix(line, "kv:{s:fe}:idx") && !strings.HasPrefix(line, "kv:{s:fe}:u:") {
			out = append(out, line)
		}
	}
	slices.Sort(out)
	return out
}

// TestKeyRotation is the sequence: a session created under key A
// is read by a store with [B, A] and moves to B on its next write; a store
// with [B] then finds it, one with [C] does not.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	_, c, storeA := setup(t, session.Options{Key: keyA})
	rec, err := storeA.Create(ctx(t), session.Record{UserID: "u1", Data: json.RawMessage(`{"cart":3}`)})
	if err != nil {
		t.Fatal(err)
	}
	underA := recordKeys(t, c)
	storeBA := newStore(t, c, session.Options{Key: keyB, PreviousKeys: [][]byte{keyA}})
	got, err := storeBA.GetWith(ctx(t), rec.ID, session.GetOptions{NoTouch: true})
	if err != nil || string(got.Data) != `{"cart":3}` {
		t.Fatalf("[B, A] reads a session of A: %+v, %v", got, err)
	}
	if keys := recordKeys(t, c); !slices.Equal(keys, underA) {
		t.Fatalf("a read without a write moved the record: %v -> %v", underA, keys)
	}
	if _, err := storeBA.Update(ctx(t), rec.ID, func(r *session.Record) error { r.Data = json.RawMessage(`{"cart":4}`); return nil }); err != nil {
		t.Fatal(err)
	}
	moved := recordKeys(t, c)
	if len(moved) != 1 || slices.Equal(moved, underA) {
		t.Fatalf("after a write, records %v (before %v): want one record, under the new key", moved, underA)
	}
	if idx := dump(t, c); strings.Contains(idx, strings.TrimPrefix(underA[0], "kv:{s:fe}:")) {
		t.Errorf("the old key's hash is still listed somewhere:\n%s", idx)
	}
	storeB := newStore(t, c, session.Options{Key: keyB})
	if got, err := storeB.Get(ctx(t), rec.ID); err != nil || string(got.Data) != `{"cart":4}` || got.UserID != "u1" {
		t.Fatalf("[B] after the move: %+v, %v", got, err)
	}
	if all, err := storeB.GetAllByUser(ctx(t), "u1"); err != nil || len(all) != 1 || all[0].ID != rec.ID {
		t.Fatalf("[B] lists %+v, %v; want the session with its id (resealed with B)", all, err)
	}
	storeC := newStore(t, c, session.Options{Key: keyC})
	if _, err := storeC.Get(ctx(t), rec.ID); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("[C] = %v; want ErrNotFound", err)
	}
	// Renew and Remove find a session under a previous key too.
	rec2, err := storeA.Create(ctx(t), session.Record{UserID: "u2"})
	if err != nil {
		t.Fatal(err)
	}
	newID, err := storeBA.Renew(ctx(t), rec2.ID)
	if err != nil {
		t.Fatalf("[B, A] renews a session of A: %v", err)
	}
	if _, err := storeB.Get(ctx(t), newID); err != nil {
		t.Fatalf("the renewed session is under B: %v", err)
	}
	rec3, _ := storeA.Create(ctx(t), session.Record{})
	if ok, err := storeBA.Remove(ctx(t), rec3.ID); !ok || err != nil {
		t.Fatalf("[B, A] removes a session of A: %v, %v", ok, err)
	}
}

// TestRekeyLosesNoConcurrentUpdate: Rekey moves 200 sessions from A to B
// while other callers keep updating them through [B, A]; every update
// survives and a store with only B finds every session afterwards.
func TestRekeyLosesNoConcurrentUpdate(t *testing.T) {
	t.Parallel()
	_, c, storeA := setup(t, session.Options{Key: keyA})
	var ids []string
	// More than 128 sessions: a smaller index is one listpack, which ZSCAN
	// returns in one page whatever its COUNT.
	for i := range 200 {
		rec, err := storeA.Create(ctx(t), session.Record{UserID: fmt.Sprintf("u%d", i%7), Data: json.RawMessage(`{"n":0}`)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rec.ID)
	}
	storeBA := newStore(t, c, session.Options{Key: keyB, PreviousKeys: [][]byte{keyA}})
	var updates atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	perSession := make([]atomic.Int64, len(ids))
	for w := range 4 {
		wg.Go(func() {
			for i := w; ; i = (i + 4) % len(ids) {
				select {
				case <-stop:
					return
				default:
				}
				_, err := storeBA.Update(ctx(t), ids[i], func(r *session.Record) error {
					var d struct{ N int }
					if err := json.Unmarshal(r.Data, &d); err != nil {
						return err
					}
					r.Data = json.RawMessage(fmt.Sprintf(`{"n":%d}`, d.N+1))
					return nil
				})
				if err != nil {
					t.Errorf("update during rekey: %v", err)
					return
				}
				perSession[i].Add(1)
				updates.Add(1)
			}
		})
	}
	var pages int
	st, err := storeBA.Rekey(ctx(t), 50, func(session.RekeyStats) { pages++ })
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	// Sessions written meanwhile were moved by those writes: a second
	// pass finds nothing left.
	again, err := storeBA.Rekey(ctx(t), 50, nil)
	if err != nil || again.Moved != 0 {
		t.Errorf("second pass: %+v, %v; want nothing left to move", again, err)
	}
	t.Logf("rekey: %+v in %d pages, %d concurrent updates", st, pages, updates.Load())
	storeB := newStore(t, c, session.Options{Key: keyB})
	for i, id := range ids {
		rec, err := storeB.GetWith(ctx(t), id, session.GetOptions{NoTouch: true})
		if err != nil {
			t.Fatalf("session %d not found with B only after Rekey: %v", i, err)
		}
		if want := fmt.Sprintf(`{"n":%d}`, perSession[i].Load()); string(rec.Data) != want {
			t.Errorf("session %d: data %s, want %s (an update was lost)", i, rec.Data, want)
		}
	}
	if keys := recordKeys(t, c); len(keys) != len(ids) {
		t.Errorf("%d records after Rekey, want %d (no copies left under A)", len(keys), len(ids))
	}
	if pages < 2 {
		t.Errorf("progress called %d times; want one call per page", pages)
	}
}

// TestPreviousKeyFiles: previous keys load from files (Docker and
// Kubernetes secrets), and bad ones are refused with a clear error.
func TestPreviousKeyFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "old")
	if err := os.WriteFile(file, append(keyA, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	_, c, storeA := setup(t, session.Options{Key: keyA})
	rec, _ := storeA.Create(ctx(t), session.Record{})
	st := newStore(t, c, session.Options{Key: keyB, PreviousKeyFiles: []string{file}})
	if _, err := st.Get(ctx(t), rec.ID); err != nil {
		t.Fatalf("previous key from a file: %v", err)
	}
	for _, tc := range []struct {
		o    session.Options
		text string
	}{
		{session.Options{Prefix: "x", Key: keyB, PreviousKeys: [][]byte{[]byte("short")}}, "session: invalid options: PreviousKeys[0] has 5 bytes; keys have at least 32"},
		{session.Options{Prefix: "x", Key: keyB, PreviousKeys: [][]byte{keyB}}, "session: invalid options: a previous key equals the current Key"},
		{session.Options{Prefix: "x", Key: keyB, PreviousKeyFiles: []string{filepath.Join(dir, "missing")}}, "session: invalid options: PreviousKeyFiles: open " + filepath.Join(dir, "missing") + ": no such file or directory"},
	} {
		_, err := session.New(c, tc.o)
		if err == nil || err.Error() != tc.text || !errors.Is(err, session.ErrInvalidOptions) {
			t.Errorf("New = %v; want %q", err, tc.text)
		}
	}
}

// TestMaxSessionsPerUser: 50 concurrent logins of one user with a limit
// of 3 leave exactly 3 sessions, the newest; the others were evicted
// atomically and reported.
func TestMaxSessionsPerUser(t *testing.T) {
	t.Parallel()
	var evicted atomic.Int64
	_, c, st := setup(t, session.Options{MaxSessionsPerUser: 3, OnEvent: func(e session.Event) {
		if e.Kind == session.EventEvicted {
			evicted.Add(int64(e.Count))
		}
	}})
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if _, err := st.Create(ctx(t), session.Record{UserID: "alice"}); err != nil {
				t.Errorf("login: %v", err)
			}
		})
	}
	wg.Wait()
	all, err := st.GetAllByUser(ctx(t), "alice")
	if err != nil || len(all) != 3 {
		t.Fatalf("alice has %d sessions (%v); want 3", len(all), err)
	}
	if keys := recordKeys(t, c); len(keys) != 3 {
		t.Errorf("%d records stored; want 3 (evicted records must be gone, not only unlisted)", len(keys))
	}
	if n := evicted.Load(); n != 47 {
		t.Errorf("%d evictions reported; want 47", n)
	}
	// Another user is not affected; a user joining by Update counts too.
	other, _ := st.Create(ctx(t), session.Record{})
	if _, err := st.Update(ctx(t), other.ID, func(r *session.Record) error { r.UserID = "alice"; return nil }); err != nil {
		t.Fatal(err)
	}
	if all, _ := st.GetAllByUser(ctx(t), "alice"); len(all) != 3 || !slices.ContainsFunc(all, func(r session.Record) bool { return r.ID == other.ID }) {
		t.Errorf("after a session joined alice by Update: %d sessions; want 3 including it", len(all))
	}
}

// TestDeviceListAndRemoveOthers: a user's sessions list with their device
// descriptions and times; RemoveOthers ends all but the current one.
func TestDeviceListAndRemoveOthers(t *testing.T) {
	t.Parallel()
	var revoked []session.Event
	_, _, st := setup(t, session.Options{OnEvent: func(e session.Event) {
		if e.Kind == session.EventRevoked {
			revoked = append(revoked, e)
		}
	}})
	var current session.Record
	for i, dev := range []string{"Firefox on Linux", "Safari on iPhone", "Chrome on Windows"} {
		rec, err := st.Create(ctx(t), session.Record{UserID: "bob", Device: dev})
		if err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			current = rec
		}
	}
	list, err := st.GetAllByUser(ctx(t), "bob")
	if err != nil || len(list) != 3 {
		t.Fatalf("devices: %d, %v", len(list), err)
	}
	var devices []string
	for _, r := range list {
		devices = append(devices, r.Device)
		if r.Created.IsZero() || r.Touched.IsZero() || r.ID == "" {
			t.Errorf("device entry without times or id: %+v", r)
		}
	}
	slices.Sort(devices)
	if !slices.Equal(devices, []string{"Chrome on Windows", "Firefox on Linux", "Safari on iPhone"}) {
		t.Errorf("devices = %v", devices)
	}
	n, err := st.RemoveOthers(ctx(t), current.ID)
	if err != nil || n != 2 {
		t.Fatalf("RemoveOthers = %d, %v; want 2", n, err)
	}
	if list, _ := st.GetAllByUser(ctx(t), "bob"); len(list) != 1 || list[0].ID != current.ID {
		t.Errorf("after RemoveOthers: %+v", list)
	}
	if len(revoked) != 1 || revoked[0].Count != 2 || revoked[0].UserID != "bob" {
		t.Errorf("revoked events = %+v", revoked)
	}
	anon, _ := st.Create(ctx(t), session.Record{})
	_, err = st.RemoveOthers(ctx(t), anon.ID)
	t.Logf("RemoveOthers of a session without a user: %v", err)
	if err == nil || !strings.Contains(err.Error(), "the session has no user id") {
		t.Errorf("RemoveOthers without a user = %v", err)
	}
}

// TestEvents: created, renewed, removed, revoked and expired (on read and
// by garbage collection) reach OnEvent, without session ids.
func TestEvents(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	kinds := map[session.EventKind]int{}
	_, _, st := setup(t, session.Options{Lifetime: 200 * time.Millisecond, OnEvent: func(e session.Event) {
		mu.Lock()
		defer mu.Unlock()
		kinds[e.Kind] += e.Count
	}})
	a, _ := st.Create(ctx(t), session.Record{UserID: "u"})
	b, _ := st.Create(ctx(t), session.Record{UserID: "u"})
	c, _ := st.Create(ctx(t), session.Record{})
	if _, err := st.Renew(ctx(t), a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Remove(ctx(t), c.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := st.RemoveByUser(ctx(t), "u"); err != nil {
		t.Fatal(err)
	}
	d, _ := st.Create(ctx(t), session.Record{})
	e, _ := st.Create(ctx(t), session.Record{})
	// A long-lived session keeps the expiry index alive (an index whose
	// sessions all expired expires with them, and then nothing is left to
	// report: see EventExpired).
	if _, err := st.Create(ctx(t), session.Record{Permanent: true}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if _, err := st.Get(ctx(t), d.ID); !errors.Is(err, session.ErrNotFound) {
		t.Fatalf("expired session: %v", err)
	}
	if _, err := st.CollectGarbage(ctx(t)); err != nil {
		t.Fatal(err)
	}
	_ = b
	_ = e
	mu.Lock()
	defer mu.Unlock()
	want := map[session.EventKind]int{session.EventCreated: 6, session.EventRenewed: 1, session.EventRemoved: 1, session.EventRevoked: 2, session.EventExpired: 3}
	for k, n := range want {
		if kinds[k] != n {
			t.Errorf("%s events: %d, want %d (all: %v)", k, kinds[k], n, kinds)
		}
	}
}

// TestKeyRotationOnCluster: the store's keys share one slot, so the MGET of
// an id's hashes under every key, the moving write and Rekey's ZSCAN and
// MGET work on a Cluster as on one server.
func TestKeyRotationOnCluster(t *testing.T) {
	t.Parallel()
	cl := servertest.Cluster(t, 3)
	c := kvtest.Open(t, keyvalue.Config{Mode: keyvalue.ModeCluster, Addrs: cl.Addrs()})
	storeA := newStore(t, c, session.Options{Prefix: "rot", Key: keyA})
	var ids []string
	for i := range 10 {
		rec, err := storeA.Create(ctx(t), session.Record{UserID: fmt.Sprint("u", i%3)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rec.ID)
	}
	storeBA := newStore(t, c, session.Options{Prefix: "rot", Key: keyB, PreviousKeys: [][]byte{keyA}})
	if _, err := storeBA.Update(ctx(t), ids[0], func(r *session.Record) error { r.Device = "moved by a write"; return nil }); err != nil {
		t.Fatal(err)
	}
	st, err := storeBA.Rekey(ctx(t), 4, nil)
	if err != nil || st.Moved != 9 {
		t.Fatalf("Rekey = %+v, %v; want the 9 sessions the write did not move", st, err)
	}
	storeB := newStore(t, c, session.Options{Prefix: "rot", Key: keyB})
	for _, id := range ids {
		if _, err := storeB.Get(ctx(t), id); err != nil {
			t.Fatalf("[B] after Rekey on a Cluster: %v", err)
		}
	}
	if all, err := storeB.GetAllByUser(ctx(t), "u0"); err != nil || len(all) != 4 {
		t.Fatalf("[B] lists %d sessions of u0 (%v), want 4", len(all), err)
	}
}
