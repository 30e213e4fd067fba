package gorillastore_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/sessions"
	"github.com/keyvalue-go/keyvalue/keyvaluetest"
	"github.com/keyvalue-go/keyvalue/session"
	"github.com/keyvalue-go/keyvalue/session/gorillastore"
)

func TestGorillaHandlers(t *testing.T) {
	c := keyvaluetest.Start(t).Client(t)
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
	c := keyvaluetest.Start(t).Client(t)
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

// userApp is a gorilla/sessions application whose sessions are indexed by
// user: /login?user=U&device=D, /whoami, /logout (the user out of the
// values), /others (RemoveOthers of the current session).
func userApp(t *testing.T, st *session.Store) *gorillastore.Store {
	t.Helper()
	store := gorillastore.New(st, gorillastore.WithUser(func(values map[any]any) (string, string) {
		user, _ := values["user"].(string)
		device, _ := values["device"].(string)
		return user, device
	}))
	store.Options.Secure = false // httptest serves plain HTTP
	return store
}

func userMux(store *gorillastore.Store, st *session.Store) *http.ServeMux {
	mux := http.NewServeMux()
	save := func(w http.ResponseWriter, r *http.Request, change func(*sessions.Session)) {
		sess, err := store.Get(r, "sid")
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		change(sess)
		if err := sess.Save(r, w); err != nil {
			http.Error(w, err.Error(), 500)
		}
	}
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		save(w, r, func(s *sessions.Session) {
			s.Values["user"] = r.URL.Query().Get("user")
			s.Values["device"] = r.URL.Query().Get("device")
		})
	})
	mux.HandleFunc("/logout", func(w http.ResponseWriter, r *http.Request) {
		save(w, r, func(s *sessions.Session) { delete(s.Values, "user") })
	})
	mux.HandleFunc("/whoami", func(w http.ResponseWriter, r *http.Request) {
		sess, _ := store.Get(r, "sid")
		u, _ := sess.Values["user"].(string)
		io.WriteString(w, u)
	})
	mux.HandleFunc("/others", func(w http.ResponseWriter, r *http.Request) {
		sess, _ := store.Get(r, "sid")
		n, err := st.RemoveOthers(r.Context(), sess.ID)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprint(w, n)
	})
	return mux
}

// TestGorillaPerUser: through gorilla's HTTP flow, sessions are indexed by
// the user in their values: log out everywhere, the device list, the
// per-user limit, RemoveOthers and a logout that leaves the index.
func TestGorillaPerUser(t *testing.T) {
	c := keyvaluetest.Start(t).Client(t)
	newStore := func(prefix string, limit int) *session.Store {
		st, err := session.New(c, session.Options{Prefix: prefix, Key: []byte("0123456789abcdef0123456789abcdef"), MaxSessionsPerUser: limit, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	ctx := context.Background()

	st := newStore("g1", 0)
	mux := userMux(userApp(t, st), st)
	laptop, phone, other := browser(t, mux), browser(t, mux), browser(t, mux)
	laptop("/login?user=ann&device=laptop")
	phone("/login?user=ann&device=phone")
	other("/login?user=bob")
	list, err := st.GetAllByUser(ctx, "ann")
	if err != nil || len(list) != 2 {
		t.Fatalf("ann's sessions: %d, %v", len(list), err)
	}
	devices := []string{list[0].Device, list[1].Device}
	slices.Sort(devices)
	if !slices.Equal(devices, []string{"laptop", "phone"}) {
		t.Errorf("ann's devices = %v", devices)
	}
	if n, err := st.RemoveByUser(ctx, "ann"); err != nil || n != 2 {
		t.Fatalf("RemoveByUser = %d, %v", n, err)
	}
	if got := []string{laptop("/whoami"), phone("/whoami"), other("/whoami")}; !slices.Equal(got, []string{"", "", "bob"}) {
		t.Errorf("after RemoveByUser(ann): %q; want both of ann's cookies anonymous, bob's untouched", got)
	}

	st = newStore("g2", 2)
	mux = userMux(userApp(t, st), st)
	var gets []func(string) string
	for i := range 3 {
		get := browser(t, mux)
		get(fmt.Sprintf("/login?user=cy&device=d%d", i))
		gets = append(gets, get)
		time.Sleep(5 * time.Millisecond) // the sessions' expiries order the logins
	}
	if got := []string{gets[0]("/whoami"), gets[1]("/whoami"), gets[2]("/whoami")}; !slices.Equal(got, []string{"", "cy", "cy"}) {
		t.Errorf("after 3 logins with a limit of 2: %q; want the oldest evicted", got)
	}
	if n := gets[2]("/others"); n != "1" {
		t.Errorf("RemoveOthers removed %s; want 1", n)
	}
	if got := []string{gets[1]("/whoami"), gets[2]("/whoami")}; !slices.Equal(got, []string{"", "cy"}) {
		t.Errorf("after RemoveOthers from the third: %q", got)
	}
	gets[2]("/logout")
	if list, err := st.GetAllByUser(ctx, "cy"); err != nil || len(list) != 0 {
		t.Errorf("cy's sessions after the logout: %d, %v", len(list), err)
	}
	if n, err := c.Do(ctx, c.B().Zcard().Key("kv:{s:g2}:u:cy").Build()).AsInt64(); err != nil || n != 0 {
		t.Errorf("cy's index holds %d sessions after the logout (%v); want none", n, err)
	}
}
