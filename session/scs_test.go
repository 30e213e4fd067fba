package session_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"testing"

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
