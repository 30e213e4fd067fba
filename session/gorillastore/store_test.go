package gorillastore_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/servertest"
	"github.com/keyvalue-go/keyvalue/session"
	"github.com/keyvalue-go/keyvalue/session/gorillastore"
)

func TestGorillaHandlers(t *testing.T) {
	s := servertest.Standalone(t)
	c, err := keyvalue.Open(keyvalue.Config{Addrs: []string{s.Addr()}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st, err := session.New(c, session.Options{Prefix: "web", Key: []byte("0123456789abcdef0123456789abcdef"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	store := gorillastore.New(st)
	store.Options.Secure = false // httptest serves plain HTTP
	mux := http.NewServeMux()
	mux.HandleFunc("/set", func(w http.ResponseWriter, r *http.Request) {
		sess, _ := store.Get(r, "sid")
		sess.Values["user"] = r.URL.Query().Get("u")
		sess.Values[42] = 7
		if err := sess.Save(r, w); err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	mux.HandleFunc("/get", func(w http.ResponseWriter, r *http.Request) {
		sess, _ := store.Get(r, "sid")
		u, _ := sess.Values["user"].(string)
		if u != "" && sess.Values[42] != 7 {
			u += " (int key lost)"
		}
		io.WriteString(w, u)
	})
	var cookieMaxAge string
	mux.HandleFunc("/browser-session", func(w http.ResponseWriter, r *http.Request) {
		// MaxAge 0: a browser-session cookie; the session stays on the server.
		sess, _ := store.Get(r, "sid")
		sess.Values["user"] = "bob"
		sess.Options.MaxAge = 0
		if err := sess.Save(r, w); err != nil {
			http.Error(w, err.Error(), 500)
		}
		cookieMaxAge = w.Header().Get("Set-Cookie")
	})
	mux.HandleFunc("/logout", func(w http.ResponseWriter, r *http.Request) {
		sess, _ := store.Get(r, "sid")
		sess.Options.MaxAge = -1
		_ = sess.Save(r, w)
	})
	get := browser(t, mux)
	get("/set?u=alice")
	if got := get("/get"); got != "alice" {
		t.Fatalf("session value = %q", got)
	}
	get("/browser-session")
	if got := get("/get"); got != "bob" {
		t.Fatalf("MaxAge 0 must keep the session (gorilla/sessions: a browser-session cookie), got %q", got)
	}
	if strings.Contains(cookieMaxAge, "Max-Age") || strings.Contains(cookieMaxAge, "Expires") {
		t.Errorf("MaxAge 0 cookie carries an age: %s", cookieMaxAge)
	}
	get("/logout")
	if got := get("/get"); got != "" {
		t.Fatalf("after logout = %q", got)
	}
}

// TestGorillaWithKeyRotation: a session saved under key A keeps working
// after the application switches to [B, A], moves to B on its next save,
// and is then found with B alone.
func TestGorillaWithKeyRotation(t *testing.T) {
	s := servertest.Standalone(t)
	c, err := keyvalue.Open(keyvalue.Config{Addrs: []string{s.Addr()}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	keyA := []byte("A123456789abcdef0123456789abcdef")
	keyB := []byte("B123456789abcdef0123456789abcdef")
	storeWith := func(o session.Options) *gorillastore.Store {
		o.Prefix, o.Logger = "web", slog.New(slog.DiscardHandler)
		st, err := session.New(c, o)
		if err != nil {
			t.Fatal(err)
		}
		g := gorillastore.New(st)
		g.Options.Secure = false
		return g
	}
	var current atomic.Pointer[gorillastore.Store]
	current.Store(storeWith(session.Options{Key: keyA}))
	mux := http.NewServeMux()
	mux.HandleFunc("/set", func(w http.ResponseWriter, r *http.Request) {
		sess, _ := current.Load().Get(r, "sid")
		sess.Values["user"] = r.URL.Query().Get("u")
		if err := sess.Save(r, w); err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	mux.HandleFunc("/get", func(w http.ResponseWriter, r *http.Request) {
		sess, _ := current.Load().Get(r, "sid")
		u, _ := sess.Values["user"].(string)
		io.WriteString(w, u)
	})
	get := browser(t, mux)
	get("/set?u=alice")
	current.Store(storeWith(session.Options{Key: keyB, PreviousKeys: [][]byte{keyA}}))
	if got := get("/get"); got != "alice" {
		t.Fatalf("[B, A] reads the session saved under A: %q", got)
	}
	get("/set?u=bob") // the save moves it to B
	current.Store(storeWith(session.Options{Key: keyB}))
	if got := get("/get"); got != "bob" {
		t.Fatalf("[B] after the move: %q", got)
	}
}

// browser serves h and returns a getter that keeps cookies like a browser.
func browser(t *testing.T, h http.Handler) func(path string) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	jar, _ := cookiejar.New(nil)
	cl := &http.Client{Jar: jar}
	return func(p string) string {
		res, err := cl.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return string(b)
	}
}
