package session_test

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/session"
)

// TestStrictRecords: a record with bytes after it, or a field of the wrong
// JSON type, is ErrCorrupt for every reader, Renew included, and nothing
// is written over it.
func TestStrictRecords(t *testing.T) {
	t.Parallel()
	_, c, st := setup(t, session.Options{Prefix: "strict"})
	for name, mutate := range map[string]func(string) string{
		"trailing newline": func(v string) string { return v + "\n" },
		"trailing object":  func(v string) string { return v + `{}` },
		"numeric user":     func(v string) string { return strings.Replace(v, `"user_id":"42"`, `"user_id":42`, 1) },
		"only a version":   func(string) string { return `{"v":1}` },
		"fields reordered": func(v string) string { // {"sid":…,"v":1,…}: the same fields, sid first
			sid, rest, _ := strings.Cut(strings.TrimPrefix(v, `{"v":1,`), `,`)
			return "{" + sid + `,"v":1,` + rest
		},
	} {
		rec, err := st.Create(ctx(t), session.Record{UserID: "42"})
		if err != nil {
			t.Fatal(err)
		}
		key := onlyRecordKey(t, c, "kv:{s:strict}:", rec.ID, st)
		raw, err := c.Do(ctx(t), c.B().Get().Key(key).Build()).ToString()
		if err != nil {
			t.Fatal(err)
		}
		bad := mutate(raw)
		if bad == raw {
			t.Fatalf("%s: mutation changed nothing in %s", name, raw)
		}
		if err := c.Do(ctx(t), c.B().Set().Key(key).Value(bad).Keepttl().Build()).Error(); err != nil {
			t.Fatal(err)
		}
		_, gerr := st.Get(ctx(t), rec.ID)
		_, rerr := st.Renew(ctx(t), rec.ID)
		t.Logf("%s: Get: %v; Renew: %v", name, gerr, rerr)
		if !errors.Is(gerr, session.ErrCorrupt) || !errors.Is(rerr, session.ErrCorrupt) {
			t.Errorf("%s: Get = %v, Renew = %v; want ErrCorrupt from both", name, gerr, rerr)
		}
		if v, _ := c.Do(ctx(t), c.B().Get().Key(key).Build()).ToString(); v != bad {
			t.Errorf("%s: the record was changed", name)
		}
		if err := c.Do(ctx(t), c.B().Del().Key(key).Build()).Error(); err != nil {
			t.Fatal(err)
		}
	}
	// Lifetimes under a millisecond cannot be stored: refused up front.
	if _, err := session.New(c, session.Options{Prefix: "x", Key: key, Lifetime: time.Microsecond}); !errors.Is(err, session.ErrInvalidOptions) {
		t.Errorf("1µs lifetime: %v", err)
	} else {
		t.Logf("1µs lifetime: %v", err)
	}
	// A short scs token is an invalid token, not "not found".
	err := st.SCS().Commit("short", []byte("x"), time.Now().Add(time.Hour))
	t.Logf("short scs token: %v", err)
	if !errors.Is(err, session.ErrInvalidID) || !strings.Contains(err.Error(), "invalid token") {
		t.Errorf("short scs token: %v", err)
	}
}

// onlyRecordKey finds the record key of the session id (the only record
// key under prefix that Get of id reads).
func onlyRecordKey(t *testing.T, c *keyvalue.Client, prefix, id string, st *session.Store) string {
	t.Helper()
	for _, line := range strings.Split(dump(t, c), "\n") {
		if !strings.HasPrefix(line, prefix) || len(line) != len(prefix)+64 {
			continue
		}
		v, _ := c.Do(ctx(t), c.B().Get().Key(line).Build()).ToString()
		saved := v
		if err := c.Do(ctx(t), c.B().Set().Key(line).Value("x").Keepttl().Build()).Error(); err != nil {
			t.Fatal(err)
		}
		_, err := st.GetWith(ctx(t), id, session.GetOptions{NoTouch: true})
		if err := c.Do(ctx(t), c.B().Set().Key(line).Value(saved).Keepttl().Build()).Error(); err != nil {
			t.Fatal(err)
		}
		if errors.Is(err, session.ErrCorrupt) {
			return line
		}
	}
	t.Fatalf("no record key for %s", id)
	return ""
}

// TestRenewWithoutGuess: a process that has not seen the session (no
// guess of its user) renews it all the same, in two calls, and the user's
// index follows the new id.
func TestRenewWithoutGuess(t *testing.T) {
	t.Parallel()
	_, c, a := setup(t, session.Options{Prefix: "guess"})
	b := newStore(t, c, session.Options{Prefix: "guess"})
	rec, err := a.Create(ctx(t), session.Record{UserID: "7"})
	if err != nil {
		t.Fatal(err)
	}
	newID, err := b.Renew(ctx(t), rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := a.GetAllByUser(ctx(t), "7")
	if err != nil || len(recs) != 1 || recs[0].ID != newID {
		t.Fatalf("user 7's sessions after a renew by another process: %v, %v", recs, err)
	}
}

func TestKeyFile(t *testing.T) {
	t.Parallel()
	_, c, st := setup(t, session.Options{Prefix: "kf"})
	file := t.TempDir() + "/key"
	if err := os.WriteFile(file, append(slices.Clone(key), '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	fromFile := newStore(t, c, session.Options{Prefix: "kf", KeyFile: file})
	rec, err := st.Create(ctx(t), session.Record{UserID: "1"})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := fromFile.Get(ctx(t), rec.ID); err != nil || got.UserID != "1" {
		t.Errorf("a store with the same key from a file cannot read the session: %v", err)
	}
	if _, err := session.New(c, session.Options{Prefix: "kf", KeyFile: file + ".missing"}); !errors.Is(err, session.ErrInvalidOptions) {
		t.Errorf("missing key file: %v", err)
	}
}
