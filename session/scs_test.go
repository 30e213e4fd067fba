package session_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
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

// scsApp is an application on scs whose sessions are indexed by user:
// /login?user=U&device=D (RenewToken, then the user and device in the
// session), /note?v=V (a value in the session), /whoami, /logout (the user out of the session, RenewToken),
// /others (RemoveOthers of the current session).
func scsApp(t *testing.T, st *session.Store) *httptest.Server {
	t.Helper()
	sm := scs.New()
	sm.Store = st.SCS(session.SCSUser(sm.Codec, func(values map[string]any) (string, string) {
		user, _ := values["userID"].(string)
		device, _ := values["device"].(string)
		return user, device
	}))
	mux := http.NewServeMux()
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		if err := sm.RenewToken(r.Context()); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		sm.Put(r.Context(), "userID", r.URL.Query().Get("user"))
		sm.Put(r.Context(), "device", r.URL.Query().Get("device"))
	})
	mux.HandleFunc("/note", func(w http.ResponseWriter, r *http.Request) {
		sm.Put(r.Context(), "note", r.URL.Query().Get("v"))
	})
	mux.HandleFunc("/whoami", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, sm.GetString(r.Context(), "userID"))
	})
	mux.HandleFunc("/logout", func(w http.ResponseWriter, r *http.Request) {
		sm.Remove(r.Context(), "userID")
		if err := sm.RenewToken(r.Context()); err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	mux.HandleFunc("/others", func(w http.ResponseWriter, r *http.Request) {
		n, err := st.RemoveOthers(r.Context(), sm.Token(r.Context()))
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprint(w, n)
	})
	srv := httptest.NewServer(sm.LoadAndSave(mux))
	t.Cleanup(srv.Close)
	return srv
}

// browser is one client with its own cookie jar.
type browser struct {
	t      *testing.T
	srv    *httptest.Server
	client *http.Client
}

func newBrowser(t *testing.T, srv *httptest.Server) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, srv: srv, client: &http.Client{Jar: jar}}
}

func (b *browser) get(path string) string {
	b.t.Helper()
	res, err := b.client.Get(b.srv.URL + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		b.t.Fatalf("GET %s: %s: %s", path, res.Status, body)
	}
	return string(body)
}

// TestSCSPerUser: through scs's SessionManager and LoadAndSave, sessions
// are indexed by the user the application puts in them, so log out
// everywhere, the device list, the per-user limit and RemoveOthers work;
// a logout takes the session out of the user's index.
func TestSCSPerUser(t *testing.T) {
	t.Parallel()
	t.Run("RemoveByUser", func(t *testing.T) {
		t.Parallel()
		_, c, st := setup(t, session.Options{Prefix: "scsu1"})
		srv := scsApp(t, st)
		laptop, phone, other := newBrowser(t, srv), newBrowser(t, srv), newBrowser(t, srv)
		laptop.get("/login?user=ann&device=laptop")
		phone.get("/login?user=ann&device=phone")
		other.get("/login?user=bob&device=laptop")
		list, err := st.GetAllByUser(ctx(t), "ann")
		if err != nil || len(list) != 2 {
			t.Fatalf("ann's sessions: %d, %v", len(list), err)
		}
		var devices []string
		for _, r := range list {
			devices = append(devices, r.Device)
		}
		slices.Sort(devices)
		if !slices.Equal(devices, []string{"laptop", "phone"}) {
			t.Errorf("ann's devices = %v", devices)
		}
		if users := checkIndexes(t, c, "scsu1"); users["ann"] != 2 || users["bob"] != 1 {
			t.Errorf("indexed sessions = %v", users)
		}
		if n, err := st.RemoveByUser(ctx(t), "ann"); err != nil || n != 2 {
			t.Fatalf("RemoveByUser = %d, %v", n, err)
		}
		for _, b := range []*browser{laptop, phone} {
			if who := b.get("/whoami"); who != "" {
				t.Errorf("after RemoveByUser, a cookie of ann's is still %q", who)
			}
		}
		if who := other.get("/whoami"); who != "bob" {
			t.Errorf("bob's session = %q; want untouched", who)
		}
	})
	t.Run("MaxSessionsPerUser", func(t *testing.T) {
		t.Parallel()
		_, c, st := setup(t, session.Options{Prefix: "scsu2", MaxSessionsPerUser: 2})
		srv := scsApp(t, st)
		var bs []*browser
		for i := range 3 {
			b := newBrowser(t, srv)
			b.get(fmt.Sprintf("/login?user=ann&device=d%d", i))
			bs = append(bs, b)
			time.Sleep(5 * time.Millisecond) // scs's expiries order the logins
		}
		got := []string{bs[0].get("/whoami"), bs[1].get("/whoami"), bs[2].get("/whoami")}
		if !slices.Equal(got, []string{"", "ann", "ann"}) {
			t.Errorf("after 3 logins with a limit of 2: %q; want the oldest evicted", got)
		}
		if users := checkIndexes(t, c, "scsu2"); users["ann"] != 2 {
			t.Errorf("indexed sessions = %v", users)
		}
	})
	t.Run("RemoveOthersAndLogout", func(t *testing.T) {
		t.Parallel()
		_, c, st := setup(t, session.Options{Prefix: "scsu3"})
		srv := scsApp(t, st)
		a, b, d := newBrowser(t, srv), newBrowser(t, srv), newBrowser(t, srv)
		for _, x := range []*browser{a, b, d} {
			x.get("/login?user=cy")
		}
		if n := b.get("/others"); n != "2" {
			t.Errorf("RemoveOthers removed %s sessions; want 2", n)
		}
		got := []string{a.get("/whoami"), b.get("/whoami"), d.get("/whoami")}
		if !slices.Equal(got, []string{"", "cy", ""}) {
			t.Errorf("after RemoveOthers from the second: %q", got)
		}
		b.get("/logout")
		if list, err := st.GetAllByUser(ctx(t), "cy"); err != nil || len(list) != 0 {
			t.Errorf("cy's sessions after the logout: %d, %v", len(list), err)
		}
		if users := checkIndexes(t, c, "scsu3"); len(users) != 0 {
			t.Errorf("indexed sessions after the logout = %v", users)
		}
	})
	t.Run("IndexedOnTheNextCommit", func(t *testing.T) {
		t.Parallel()
		_, c, st := setup(t, session.Options{Prefix: "scsu4"})
		// A session committed before the option existed: not indexed.
		sm := scs.New()
		sm.Store = st.SCS()
		h := sm.LoadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sm.Put(r.Context(), "userID", "dee")
		}))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		cookies := rec.Result().Cookies()
		if len(cookies) != 1 {
			t.Fatalf("cookies = %v", cookies)
		}
		if users := checkIndexes(t, c, "scsu4"); len(users) != 0 {
			t.Fatalf("indexed without the option: %v", users)
		}
		// The next commit with the option indexes it.
		srv := scsApp(t, st)
		b := newBrowser(t, srv)
		u, _ := url.Parse(srv.URL)
		b.client.Jar.SetCookies(u, []*http.Cookie{{Name: cookies[0].Name, Value: cookies[0].Value}})
		if who := b.get("/whoami"); who != "dee" {
			t.Fatalf("the old session through the new manager = %q", who)
		}
		b.get("/note?v=x")
		if list, err := st.GetAllByUser(ctx(t), "dee"); err != nil || len(list) != 1 || list[0].ID != cookies[0].Value {
			t.Errorf("dee's sessions after a commit with the option: %d, %v; want the old session", len(list), err)
		}
	})
	t.Run("BadData", func(t *testing.T) {
		t.Parallel()
		_, _, st := setup(t, session.Options{Prefix: "scsu5"})
		a := st.SCS(session.SCSUser(scs.GobCodec{}, func(map[string]any) (string, string) { return "x", "" }))
		err := a.Commit(session.NewID(), []byte("not gob"), time.Now().Add(time.Hour))
		t.Logf("Commit of data the codec cannot decode: %v", err)
		if err == nil || !strings.Contains(err.Error(), "decode the session's values to read its user") {
			t.Errorf("Commit of bad data = %v", err)
		}
		if all, _ := a.All(); len(all) != 0 {
			t.Errorf("stored after the error: %d sessions", len(all))
		}
	})
}
