package session_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/keyvalue-go/keyvalue/session"
)

var (
	_ scs.Store         = (*session.SCS)(nil)
	_ scs.CtxStore      = (*session.SCS)(nil)
	_ scs.IterableStore = (*session.SCS)(nil)
)

func TestSCSEndToEnd(t *testing.T) {
	t.Parallel()
	_, _, st := setup(t, session.Options{})
	sm := scs.New()
	sm.Store = st.SCS()
	mux := http.NewServeMux()
	mux.HandleFunc("/put", func(w http.ResponseWriter, r *http.Request) {
		sm.Put(r.Context(), "msg", r.URL.Query().Get("v"))
	})
	mux.HandleFunc("/get", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, sm.GetString(r.Context(), "msg"))
	})
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		if err := sm.RenewToken(r.Context()); err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	srv := httptest.NewServer(sm.LoadAndSave(mux))
	defer srv.Close()
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar}
	get := func(path string) string {
		res, err := client.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return string(b)
	}
	get("/put?v=hello")
	if got := get("/get"); got != "hello" {
		t.Fatalf("value through scs = %q", got)
	}
	get("/login")
	if got := get("/get"); got != "hello" {
		t.Fatalf("after RenewToken = %q", got)
	}
	all, err := st.SCS().All()
	if err != nil || len(all) != 1 {
		t.Fatalf("All = %d sessions, %v", len(all), err)
	}
	for token, data := range all {
		if !strings.Contains(string(data), "hello") || len(token) < 16 {
			t.Errorf("All: %q → %q", token, data)
		}
	}
}

// TestSCSWithKeyRotation: a token committed under key A is found through
// [B, A]; the next commit moves it to B (the copy under A is deleted), so a
// store with B alone finds it.
func TestSCSWithKeyRotation(t *testing.T) {
	t.Parallel()
	_, c, storeA := setup(t, session.Options{Key: keyA})
	token := session.NewID()
	expiry := time.Now().Add(time.Hour)
	if err := storeA.SCS().Commit(token, []byte("a"), expiry); err != nil {
		t.Fatal(err)
	}
	ba := newStore(t, c, session.Options{Key: keyB, PreviousKeys: [][]byte{keyA}}).SCS()
	if b, found, err := ba.Find(token); err != nil || !found || string(b) != "a" {
		t.Fatalf("[B, A] Find = %q, %v, %v", b, found, err)
	}
	if err := ba.Commit(token, []byte("b"), expiry); err != nil {
		t.Fatal(err)
	}
	if keys := recordKeys(t, c); len(keys) != 1 {
		t.Fatalf("after a commit through [B, A]: records %v; want one (the copy under A deleted)", keys)
	}
	if b, found, err := newStore(t, c, session.Options{Key: keyB}).SCS().Find(token); err != nil || !found || string(b) != "b" {
		t.Fatalf("[B] Find = %q, %v, %v", b, found, err)
	}
	if err := ba.Delete(token); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := ba.Find(token); found {
		t.Error("found after Delete")
	}
}
