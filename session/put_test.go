package session_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyvalue-go/keyvalue/session"
	"github.com/valkey-io/valkey-go"
)

// checkIndexes is an independent reader of a store's keyspace: every
// record is in the expiry index and in its user's index, and every member
// of a user's index is a record of that user. It returns the users'
// sessions it found (user -> record keys).
func checkIndexes(t *testing.T, c valkey.Client, prefix string) map[string]int {
	t.Helper()
	p := "kv:{s:" + prefix + "}:"
	var records []string
	var userIndexes []string
	var cursor uint64
	for range 1000 {
		e, err := c.Do(ctx(t), c.B().Scan().Cursor(cursor).Match(strings.ReplaceAll(p, "{", `\{`)+"*").Count(500).Build()).AsScanEntry()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range e.Elements {
			switch rest := strings.TrimPrefix(k, p); {
			case strings.HasPrefix(rest, "u:"):
				userIndexes = append(userIndexes, k)
			case len(rest) == 64:
				records = append(records, k)
			}
		}
		if cursor = e.Cursor; cursor == 0 {
			break
		}
	}
	users := map[string]int{}
	userOf := map[string]string{}
	for _, k := range records {
		b, err := c.Do(ctx(t), c.B().Get().Key(k).Build()).AsBytes()
		if err != nil {
			continue // expired meanwhile
		}
		var r struct {
			User    string `json:"user_id"`
			Renewed bool   `json:"renewed"`
		}
		if err := json.Unmarshal(b, &r); err != nil {
			t.Errorf("%s does not parse: %v", k, err)
			continue
		}
		member := strings.TrimPrefix(k, p)
		userOf[member] = r.User
		if r.Renewed {
			continue
		}
		if err := c.Do(ctx(t), c.B().Zscore().Key(p+"idx").Member(member).Build()).Error(); err != nil {
			t.Errorf("record %s is not in the expiry index: %v", member, err)
		}
		if r.User != "" {
			users[r.User]++
			if err := c.Do(ctx(t), c.B().Zscore().Key(p+"u:"+r.User).Member(member).Build()).Error(); err != nil {
				t.Errorf("record %s of user %q is not in the user's index: %v", member, r.User, err)
			}
		}
	}
	for _, idx := range userIndexes {
		user := strings.TrimPrefix(idx, p+"u:")
		members, err := c.Do(ctx(t), c.B().Zrange().Key(idx).Min("0").Max("-1").Build()).AsStrSlice()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range members {
			if got, ok := userOf[m]; !ok {
				t.Errorf("user %q's index lists %s, which has no record", user, m)
			} else if got != user {
				t.Errorf("user %q's index lists %s, a session of user %q", user, m, got)
			}
		}
	}
	return users
}

// TestPut: a blind write keeps the session's creation time, moves it
// between the user indexes when its user changes (also when another
// process changed it: no guess), and refuses what it must not replace.
func TestPut(t *testing.T) {
	t.Parallel()
	var created []session.Event
	var mu sync.Mutex
	_, c, a := setup(t, session.Options{Prefix: "put", OnEvent: func(e session.Event) {
		mu.Lock()
		defer mu.Unlock()
		if e.Kind == session.EventCreated {
			created = append(created, e)
		}
	}})
	b := newStore(t, c, session.Options{Prefix: "put"}) // another process: knows nothing
	id := session.NewID()
	first, err := a.Put(ctx(t), id, session.Record{UserID: "ann", Device: "Firefox", Bytes: []byte("1")})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	for i, step := range []struct {
		st   *session.Store
		user string
	}{{a, "ann"}, {a, "bob"}, {b, ""}, {a, `q"uote <&> \\`}, {b, "ann"}, {a, `q"uote <&> \\`}, {a, "ann"}} {
		rec, err := step.st.Put(ctx(t), id, session.Record{UserID: step.user, Bytes: []byte{byte('2' + i)}})
		if err != nil {
			t.Fatalf("put %d (%q): %v", i, step.user, err)
		}
		if !rec.Created.Equal(first.Created) {
			t.Errorf("put %d: Created = %s; want the first put's %s", i, rec.Created, first.Created)
		}
		users := checkIndexes(t, c, "put")
		if want := map[string]int{step.user: 1}; step.user == "" && len(users) != 0 || step.user != "" && fmt.Sprint(users) != fmt.Sprint(want) {
			t.Errorf("put %d (%q): users' sessions = %v", i, step.user, users)
		}
		got, err := a.Get(ctx(t), id)
		if err != nil || got.UserID != step.user || !got.Created.Equal(first.Created) {
			t.Errorf("put %d: Get = %+v, %v", i, got, err)
		}
	}
	if len(created) != 1 || created[0].UserID != "ann" {
		t.Errorf("created events = %+v; want one, for ann", created)
	}

	// Refused: a malformed id, a stub left by Renew, a value that is not a record.
	_, err = a.Put(ctx(t), "short", session.Record{})
	t.Logf("Put with a bad id: %v", err)
	if !errors.Is(err, session.ErrInvalidID) || !strings.Contains(err.Error(), "16 to 256 printable ASCII characters") {
		t.Errorf("Put with a bad id = %v", err)
	}
	newID, err := a.Renew(ctx(t), id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Put(ctx(t), id, session.Record{Bytes: []byte("late")}); !errors.Is(err, session.ErrReadOnly) {
		t.Errorf("Put over a renewed id = %v; want ErrReadOnly", err)
	}
	recordKey := onlyRecordKey(t, c, "kv:{s:put}:", newID, a)
	if err := c.Do(ctx(t), c.B().Set().Key(recordKey).Value(`{"v":1,"sid":"x","created":"garbage"}`).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	_, err = b.Put(ctx(t), newID, session.Record{})
	t.Logf("Put over a value that is not a record: %v", err)
	if !errors.Is(err, session.ErrCorrupt) {
		t.Errorf("Put over a foreign value = %v; want ErrCorrupt", err)
	}
	if v, _ := c.Do(ctx(t), c.B().Get().Key(recordKey).Build()).ToString(); !strings.Contains(v, "garbage") {
		t.Errorf("the foreign value was replaced: %s", v)
	}
}

// TestPutMaxLifetime: with MaxLifetime, a blind write's expiry counts from
// the stored creation time, also in a process that never saw the session.
func TestPutMaxLifetime(t *testing.T) {
	t.Parallel()
	o := session.Options{Prefix: "putmax", Lifetime: time.Hour, MaxLifetime: 2 * time.Hour}
	_, c, a := setup(t, o)
	b := newStore(t, c, o)
	id := session.NewID()
	old := time.Now().Add(-90 * time.Minute).Truncate(time.Millisecond)
	if _, err := a.Put(ctx(t), id, session.Record{Created: old}); err != nil {
		t.Fatal(err)
	}
	rec, err := b.Put(ctx(t), id, session.Record{Bytes: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	want := old.Add(2 * time.Hour)
	if !rec.Created.Equal(old) || rec.Expires.Sub(want).Abs() > time.Second {
		t.Errorf("Created %s, Expires %s; want %s and %s (capped by MaxLifetime)", rec.Created, rec.Expires, old, want)
	}
	ttl, err := c.Do(ctx(t), c.B().Pttl().Key(onlyRecordKey(t, c, "kv:{s:putmax}:", id, a)).Build()).AsInt64()
	if err != nil || time.Duration(ttl)*time.Millisecond > 31*time.Minute {
		t.Errorf("the record's TTL is %d ms (%v); want at most the 30 minutes MaxLifetime leaves", ttl, err)
	}
}

// TestConcurrentPutsKeepIndexes: blind writes of one session from two
// processes, its user changing each time, leave it in exactly its final
// user's index.
func TestConcurrentPutsKeepIndexes(t *testing.T) {
	t.Parallel()
	_, c, a := setup(t, session.Options{Prefix: "putrace"})
	b := newStore(t, c, session.Options{Prefix: "putrace"})
	ids := []string{session.NewID(), session.NewID(), session.NewID()}
	users := []string{"", "u1", "u2", `we"ird <&> \\ü`}
	var wg sync.WaitGroup
	var conflicts atomic.Int32
	for w := range 8 {
		st := []*session.Store{a, b}[w%2]
		wg.Go(func() {
			for range 50 {
				id := ids[rand.IntN(len(ids))]
				_, err := st.Put(ctx(t), id, session.Record{UserID: users[rand.IntN(len(users))]})
				switch {
				case errors.Is(err, session.ErrConflict):
					// Every write changes the user, 8 writers on 3 sessions:
					// a write can meet 16 changes during its call.
					conflicts.Add(1)
				case err != nil:
					t.Errorf("put: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	t.Logf("%d of 400 puts met 16 changes of the session's user during the call (ErrConflict)", conflicts.Load())
	if conflicts.Load() > 40 {
		t.Errorf("%d of 400 puts failed with ErrConflict", conflicts.Load())
	}
	found := checkIndexes(t, c, "putrace")
	n := 0
	for _, k := range found {
		n += k
	}
	t.Logf("sessions by user after 400 racing puts: %v", found)
	if n > len(ids) {
		t.Errorf("%d indexed sessions for %d ids", n, len(ids))
	}
}
