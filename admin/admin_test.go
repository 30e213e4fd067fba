package admin_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/admin"
	"github.com/keyvalue-go/keyvalue/cache"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/kvtest"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/servertest"
	"github.com/keyvalue-go/keyvalue/lock"
	"github.com/keyvalue-go/keyvalue/session"
)

const token = "let-me-in"

// fixture is a server, the components on it, and the admin handler over
// them served by httptest under /ops.
type fixture struct {
	s        *servertest.Server
	c        *keyvalue.Client
	pages    *cache.Backend
	sessions *session.Store
	locks    *lock.Locker
	srv      *httptest.Server
	log      *kvtest.Output
}

func ctx(t *testing.T) context.Context { return kvtest.Ctx(t, 0) }

func newFixture(t *testing.T, edit func(*admin.Options)) *fixture {
	t.Helper()
	f := &fixture{s: servertest.Standalone(t), log: &kvtest.Output{}}
	f.c = kvtest.Open(t, keyvalue.Config{Addrs: []string{f.s.Addr()}})
	var err error
	if f.pages, err = cache.New(f.c, "pages", cache.Options{Logger: kvtest.Quiet}); err != nil {
		t.Fatal(err)
	}
	if f.sessions, err = session.New(f.c, session.Options{Prefix: "web", Key: bytes.Repeat([]byte{7}, 32), Logger: kvtest.Quiet}); err != nil {
		t.Fatal(err)
	}
	f.locks = lock.New(f.c, lock.Options{Logger: kvtest.Quiet})
	o := admin.Options{
		Client: f.c, Caches: []*cache.Backend{f.pages}, Sessions: []*session.Store{f.sessions}, Locks: f.locks,
		Authorize: func(r *http.Request) bool { return r.Header.Get("Authorization") == "Bearer "+token },
		Who:       func(r *http.Request) string { return "tester" },
		Logger:    f.log.Logger(),
		Pings:     1,
	}
	if edit != nil {
		edit(&o)
	}
	h, err := admin.New(o)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/ops/", http.StripPrefix("/ops", h))
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// get fetches path (under /ops) as the signed-in operator.
func (f *fixture) get(t *testing.T, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx(t), http.MethodGet, f.srv.URL+"/ops"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	return f.do(t, req)
}

// post submits a form to path as the signed-in operator, from the page's
// own origin (as a browser does).
func (f *fixture) post(t *testing.T, path string, form url.Values) (int, string) {
	t.Helper()
	req := f.postRequest(t, path, form)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return f.do(t, req)
}

func (f *fixture) postRequest(t *testing.T, path string, form url.Values) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx(t), http.MethodPost, f.srv.URL+"/ops"+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req
}

func (f *fixture) do(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func (f *fixture) mutex(t *testing.T, name string) *lock.Mutex {
	t.Helper()
	m, err := f.locks.Mutex(name)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// fill stores n entries tagged "all" and "even"/"odd".
func (f *fixture) fill(t *testing.T, n int) {
	t.Helper()
	var entries []cache.Entry
	for i := range n {
		tag := []string{"even", "odd"}[i%2]
		entries = append(entries, cache.Entry{ID: "p" + strconv.Itoa(i), Data: []byte("page " + strconv.Itoa(i)), Tags: []string{"all", tag}, Lifetime: time.Hour})
		if len(entries) == 1000 || i == n-1 {
			if err := f.pages.SetMany(ctx(t), entries); err != nil {
				t.Fatal(err)
			}
			entries = entries[:0]
		}
	}
}

// routes are every page and action.
var routes = []struct{ method, path string }{
	{"GET", "/"}, {"GET", "/static/admin.css"}, {"GET", "/caches/pages"}, {"GET", "/caches/pages?tag=all"},
	{"POST", "/caches/pages/flush-tags"}, {"POST", "/caches/pages/flush"}, {"POST", "/caches/pages/gc"}, {"POST", "/caches/pages/remove"},
	{"GET", "/sessions/web"}, {"POST", "/sessions/web/revoke"}, {"POST", "/sessions/web/revoke-user"},
	{"GET", "/locks"}, {"POST", "/locks/release"},
}

func TestNewRefusesMissingOptions(t *testing.T) {
	t.Parallel()
	c := kvtest.Open(t, keyvalue.Config{Addrs: []string{"127.0.0.1:1"}})
	for _, tc := range []struct {
		o    admin.Options
		want string
	}{
		{admin.Options{Client: c}, "admin: Options.Authorize is nil: every request needs an authorization decision"},
		{admin.Options{Authorize: func(*http.Request) bool { return true }}, "admin: Options.Client is nil"},
	} {
		if _, err := admin.New(tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New = %v; want %q", err, tc.want)
		}
	}
}

// TestRefusedWithoutAuthorization: every page, asset and action is 403
// without authorization (401 with a challenge), and nothing is done.
func TestRefusedWithoutAuthorization(t *testing.T) {
	t.Parallel()
	for _, challenge := range []string{"", `Basic realm="keyvalue"`} {
		f := newFixture(t, func(o *admin.Options) { o.Challenge = challenge })
		f.fill(t, 10)
		for _, rt := range routes {
			req := f.postRequest(t, rt.path, url.Values{"tags": {"all"}, "confirm": {"yes"}})
			req.Method = rt.method
			req.Header.Set("Authorization", "Bearer wrong")
			resp, err := f.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			want, text := http.StatusForbidden, "403 forbidden: you may not see the keyvalue operations page"
			if challenge != "" {
				want, text = http.StatusUnauthorized, "401 unauthorized: sign in to see the keyvalue operations page"
				if got := resp.Header.Get("WWW-Authenticate"); got != challenge {
					t.Errorf("%s %s: WWW-Authenticate %q", rt.method, rt.path, got)
				}
			}
			if resp.StatusCode != want || !strings.Contains(string(body), text) {
				t.Errorf("%s %s without authorization: %d %q; want %d %q", rt.method, rt.path, resp.StatusCode, body, want, text)
			}
		}
		if n, err := f.pages.IndexSizes(ctx(t), "all"); err != nil || n["all"] != 10 {
			t.Errorf("after refused requests the index of all has %v, %v; want 10", n, err)
		}
	}
}

// TestSecurityHeaders: no framing, no inline or foreign script, no
// sniffing, no caching, no referrer, on pages and errors alike.
func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	for _, path := range []string{"/", "/caches/pages", "/caches/nope", "/locks"} {
		req, _ := http.NewRequestWithContext(ctx(t), http.MethodGet, f.srv.URL+"/ops"+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := f.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		h := resp.Header
		csp := h.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") ||
			h.Get("X-Frame-Options") != "DENY" || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Cache-Control") != "no-store" ||
			h.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("GET %s: headers %v", path, h)
		}
	}
	// No inline script anywhere: every <script> has a src.
	_, body := f.get(t, "/")
	if regexp.MustCompile(`<script(?:\s[^>]*)?>[^<]`).MatchString(body) || strings.Contains(body, " onclick=") {
		t.Errorf("the Server page has inline script:\n%s", body)
	}
}

// TestCrossOriginPostRefused: a form another site's page submits, with
// the operator's credentials, is refused and changes nothing.
func TestCrossOriginPostRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	f.fill(t, 10)
	for _, hdr := range []map[string]string{
		{"Sec-Fetch-Site": "cross-site"},
		{"Origin": "https://evil.example"},
	} {
		req := f.postRequest(t, "/caches/pages/flush-tags", url.Values{"tags": {"all"}, "confirm": {"yes"}})
		req.Header.Set("Authorization", "Bearer "+token)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		if code, body := f.do(t, req); code != http.StatusForbidden {
			t.Errorf("cross-origin POST (%v): %d %q; want 403", hdr, code, body)
		}
	}
	if n, err := f.pages.IndexSizes(ctx(t), "all"); err != nil || n["all"] != 10 {
		t.Errorf("after cross-origin POSTs the index of all has %v, %v; want 10", n, err)
	}
	if strings.Contains(f.log.String(), "flush") {
		t.Errorf("a refused POST was logged as an action: %s", f.log)
	}
}

// TestFlushByTagsFlow: the form asks to confirm with the count, then
// flushes; the other tag's entries remain; the action is logged.
func TestFlushByTagsFlow(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	f.fill(t, 40)
	code, body := f.post(t, "/caches/pages/flush-tags", url.Values{"tags": {"even"}})
	if code != http.StatusOK || !strings.Contains(body, "The indexes of these 1 tags list 20 entries") || !strings.Contains(body, `name="confirm" value="yes"`) {
		t.Fatalf("flush-tags without confirmation: %d\n%s", code, body)
	}
	if n, _ := f.pages.IndexSizes(ctx(t), "even"); n["even"] != 20 {
		t.Fatalf("asking to confirm flushed: %v", n)
	}
	code, body = f.post(t, "/caches/pages/flush-tags", url.Values{"tags": {"even"}, "confirm": {"yes"}})
	if code != http.StatusOK || !strings.Contains(body, "Flushed 20 entries carrying these tags.") {
		t.Fatalf("flush-tags confirmed: %d\n%s", code, body)
	}
	for i := range 40 {
		_, err := f.pages.Get(ctx(t), "p"+strconv.Itoa(i))
		if gone := errors.Is(err, cache.ErrNotFound); gone != (i%2 == 0) {
			t.Errorf("p%d after flushing even: %v", i, err)
		}
	}
	log := f.log.String()
	if !strings.Contains(log, `msg="keyvalue admin: flush by tags"`) || !strings.Contains(log, "who=tester") ||
		!strings.Contains(log, `component="cache pages"`) || !strings.Contains(log, "tags=[even]") || !strings.Contains(log, "removed=20") {
		t.Errorf("action log: %s", log)
	}

	// The cache page's tag search shows the count, and after the flush an
	// empty index.
	code, body = f.get(t, "/caches/pages?tag=odd")
	if code != http.StatusOK || !strings.Contains(body, `<strong id="tag-members">20</strong>`) {
		t.Errorf("tag search: %d\n%s", code, body)
	}
	if _, body = f.get(t, "/caches/pages?tag=even"); !strings.Contains(body, `<strong id="tag-members">0</strong>`) {
		t.Errorf("tag search after the flush:\n%s", body)
	}
}

// TestBadInputSaysWhatToDo: refused forms get 400 with what to do, and
// nothing is removed.
func TestBadInputSaysWhatToDo(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	f.fill(t, 10)
	held, err := f.mutex(t, "jobs").Lock(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Unlock(context.Background())
	for _, tc := range []struct {
		path string
		form url.Values
		want string
	}{
		{"/caches/pages/flush", url.Values{"confirm": {"page"}}, `type the cache&#39;s name, &#34;pages&#34;, to confirm flushing all of it (you typed &#34;page&#34;); nothing was removed`},
		{"/caches/pages/flush-tags", url.Values{}, "name at least one tag to flush"},
		{"/caches/pages/remove", url.Values{"id": {"two words"}}, "two words"},
		{"/locks/release", url.Values{"name": {"jobs"}, "confirm": {"job"}}, `type the lock&#39;s name, &#34;jobs&#34;, to confirm releasing it (you typed &#34;job&#34;); nothing was released`},
		{"/sessions/web/revoke", url.Values{"ref": {"abc"}}, "session: invalid session reference"},
		{"/sessions/web/revoke-user", url.Values{}, "name the user whose sessions to revoke"},
	} {
		code, body := f.post(t, tc.path, tc.form)
		if code != http.StatusBadRequest || !strings.Contains(body, tc.want) {
			t.Errorf("POST %s %v: %d; want 400 saying %q:\n%s", tc.path, tc.form, code, tc.want, body)
		}
	}
	if code, body := f.get(t, "/caches/pages?tag="+url.QueryEscape("two words")); code != http.StatusBadRequest || !strings.Contains(body, "two words") {
		t.Errorf("tag search with a space: %d\n%s", code, body)
	}
	if code, body := f.get(t, "/caches/nope"); code != http.StatusNotFound || !strings.Contains(body, "This page shows no cache named &#34;nope&#34;; what it shows is listed at the top.") {
		t.Errorf("unknown cache: %d\n%s", code, body)
	}
	if code, body := f.get(t, "/sessions/web?page=0"); code != http.StatusBadRequest || !strings.Contains(body, "use a page number from 1") {
		t.Errorf("page 0: %d\n%s", code, body)
	}
	if n, _ := f.pages.IndexSizes(ctx(t), "all"); n["all"] != 10 {
		t.Errorf("bad input removed entries: %v", n)
	}
	if info, _ := f.locks.Inspect(ctx(t), "jobs"); !info.Held() {
		t.Error("a refused release released the lock")
	}
	// The right confirmations do it.
	if code, body := f.post(t, "/caches/pages/flush", url.Values{"confirm": {"pages"}}); code != http.StatusOK || !strings.Contains(body, "Flushed the cache") {
		t.Errorf("flush all: %d\n%s", code, body)
	}
	if n, _ := f.pages.IndexSizes(ctx(t), "all"); n["all"] != 0 {
		t.Errorf("flush all left %v", n)
	}
	if code, body := f.post(t, "/locks/release", url.Values{"name": {"jobs"}, "confirm": {"jobs"}}); code != http.StatusOK || !strings.Contains(body, "it had 1 holders") {
		t.Errorf("release: %d\n%s", code, body)
	}
	if info, _ := f.locks.Inspect(ctx(t), "jobs"); info.Held() {
		t.Error("the lock is still held after a forced release")
	}
}

// TestValuesAreEscaped: a tag and a value that are markup are shown as
// text.
func TestValuesAreEscaped(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	const evil = `<img/src=x/onerror=alert(1)>`
	if err := f.pages.Set(ctx(t), "x", []byte(`<script>alert(2)</script>`), []string{evil}, time.Hour); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/caches/pages", "/caches/pages?tag=" + url.QueryEscape(evil), "/caches/pages?id=x&value=1",
		"/caches/pages?tag=" + url.QueryEscape("<img src=x onerror=alert(1)>")} {
		_, body := f.get(t, path)
		if strings.Contains(body, "<img") || strings.Contains(body, "<script>alert") {
			t.Errorf("GET %s shows markup unescaped:\n%s", path, body)
		}
		if !strings.Contains(body, "&lt;img") && !strings.Contains(body, "&lt;script&gt;alert(2)") {
			t.Errorf("GET %s does not show the markup as text:\n%s", path, body)
		}
	}
}

// TestReadOnly: no action is offered and every POST is refused.
func TestReadOnly(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(o *admin.Options) { o.ReadOnly = true })
	f.fill(t, 10)
	rec, err := f.sessions.Create(ctx(t), session.Record{UserID: "ann"})
	if err != nil {
		t.Fatal(err)
	}
	held, err := f.mutex(t, "jobs").Lock(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Unlock(context.Background())
	for _, path := range []string{"/", "/caches/pages", "/caches/pages?tag=all", "/caches/pages?id=p1", "/sessions/web", "/sessions/web?user=ann", "/locks"} {
		code, body := f.get(t, path)
		if code != http.StatusOK || strings.Contains(body, `method="post"`) || !strings.Contains(body, "read-only") {
			t.Errorf("read-only GET %s: %d, offers an action or no badge:\n%s", path, code, body)
		}
	}
	for _, rt := range routes {
		if rt.method != "POST" {
			continue
		}
		code, body := f.post(t, rt.path, url.Values{"tags": {"all"}, "confirm": {"yes"}, "ref": {rec.Ref}, "user": {"ann"}})
		if code != http.StatusForbidden || !strings.Contains(body, "403 forbidden: this operations page is read-only") {
			t.Errorf("read-only POST %s: %d %q", rt.path, code, body)
		}
	}
	if n, _ := f.pages.IndexSizes(ctx(t), "all"); n["all"] != 10 {
		t.Errorf("read-only page removed entries: %v", n)
	}
	if _, err := f.sessions.Get(ctx(t), rec.ID); err != nil {
		t.Errorf("read-only page revoked a session: %v", err)
	}
}

// TestSessionsNeverShowIDs: listings, a user's devices and revocations
// show fingerprints and act by reference; no id appears in any page.
func TestSessionsNeverShowIDs(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	var ids []string
	var annRef string
	for i := range 120 {
		user := []string{"ann", "bob", "cy"}[i%3]
		rec, err := f.sessions.Create(ctx(t), session.Record{UserID: user, Device: "browser " + strconv.Itoa(i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rec.ID)
		if user == "ann" {
			annRef = rec.Ref
		}
	}
	noIDs := func(what, body string) {
		t.Helper()
		for _, id := range ids {
			if strings.Contains(body, id) || strings.Contains(body, url.QueryEscape(id)) {
				t.Fatalf("%s shows a session id:\n%s", what, body)
			}
		}
	}
	pages := ""
	for p := 1; p <= 3; p++ {
		code, body := f.get(t, "/sessions/web?page="+strconv.Itoa(p))
		if code != http.StatusOK || !strings.Contains(body, `<strong id="session-count">120</strong>`) {
			t.Fatalf("page %d: %d\n%s", p, code, body)
		}
		noIDs("a listing", body)
		pages += body
	}
	if n := strings.Count(pages, `name="ref"`); n != 120 {
		t.Errorf("three pages list %d sessions, want 120", n)
	}
	code, body := f.get(t, "/sessions/web?user=ann")
	if code != http.StatusOK || strings.Count(body, `name="ref"`) != 40 || !strings.Contains(body, "Revoke all 40 sessions of this user") {
		t.Fatalf("ann's devices: %d\n%s", code, body)
	}
	noIDs("a user's devices", body)

	code, body = f.post(t, "/sessions/web/revoke", url.Values{"ref": {annRef}})
	if code != http.StatusOK || !strings.Contains(body, "Revoked the session "+annRef[:12]) {
		t.Fatalf("revoke: %d\n%s", code, body)
	}
	noIDs("a revocation", body)
	if recs, _ := f.sessions.GetAllByUser(ctx(t), "ann"); len(recs) != 39 {
		t.Errorf("ann has %d sessions after a revocation, want 39", len(recs))
	}
	code, body = f.post(t, "/sessions/web/revoke-user", url.Values{"user": {"ann"}})
	if code != http.StatusOK || !strings.Contains(body, `Revoked 39 sessions of the user &#34;ann&#34;.`) {
		t.Fatalf("revoke-user: %d\n%s", code, body)
	}
	if n, _ := f.sessions.Count(ctx(t)); n != 80 {
		t.Errorf("%d sessions left, want 80", n)
	}
	noIDs("the action log", f.log.String())
}

// TestLocksPage: a held lock's name, holder fingerprint and fencing
// token; never the holder's lease token.
func TestLocksPage(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	held, err := f.mutex(t, "reports").Lock(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Unlock(context.Background())
	info, err := f.locks.Inspect(ctx(t), "reports")
	if err != nil {
		t.Fatal(err)
	}
	code, body := f.get(t, "/locks")
	if code != http.StatusOK || !strings.Contains(body, "1 held of 1 locks found") || !strings.Contains(body, "<td>reports</td>") ||
		!strings.Contains(body, fmt.Sprintf(`<td class="num">%d</td>`, held.Token())) || strings.Contains(body, info.Holder) {
		t.Errorf("locks page: %d\n%s", code, body)
	}
}

// TestServerPage: what doctor reports, and links under the mount path.
func TestServerPage(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	code, body := f.get(t, "/")
	for _, want := range []string{"<th scope=\"row\">server</th>", "<th scope=\"row\">eviction</th>", "<th scope=\"row\">memory</th>", "<th scope=\"row\">latency</th>",
		`href="/ops/caches/pages"`, `href="/ops/sessions/web"`, `href="/ops/locks"`, `href="/ops/static/admin.css"`, `data-refresh="5"`} {
		if !strings.Contains(body, want) {
			t.Errorf("Server page lacks %s (%d):\n%s", want, code, body)
		}
	}
	// A stopped server is reported, not a failed page.
	f.s.Stop()
	code, body = f.get(t, "/")
	if code != http.StatusOK || !strings.Contains(body, `class="bad"`) {
		t.Errorf("Server page with the server stopped: %d\n%s", code, body)
	}
}

// TestLargeCachePage: a page view of a cache of 100,000 entries reads
// the background survey and sends no SCAN; the time it takes is logged
// (measured, not asserted: see BENCHMARKS.md).
func TestLargeCachePage(t *testing.T) {
	if testing.Short() {
		t.Skip("fills 100,000 entries")
	}
	t.Parallel()
	f := newFixture(t, func(o *admin.Options) { o.SurveyInterval = time.Hour })
	f.fill(t, 100_000)
	// The first view starts the survey; wait for it to end.
	servertest.WaitFor(t, time.Minute, "the survey", func() error {
		_, body := f.get(t, "/caches/pages")
		if !strings.Contains(body, `<td id="entries">100000</td>`) {
			return errors.New("not yet")
		}
		t.Logf("the background survey: %s", regexp.MustCompile(`Counted [^<]*`).FindString(body))
		return nil
	})
	if _, err := f.s.Do("CONFIG", "RESETSTAT"); err != nil {
		t.Fatal(err)
	}
	const views = 20
	var worst, total time.Duration
	for range views {
		start := time.Now()
		code, body := f.get(t, "/caches/pages?tag=even")
		d := time.Since(start)
		total += d
		worst = max(worst, d)
		if code != http.StatusOK || !strings.Contains(body, `<strong id="tag-members">50000</strong>`) {
			t.Fatalf("cache page: %d\n%s", code, body)
		}
	}
	t.Logf("cache page of 100,000 entries with a tag search: mean %s, worst %s over %d views", total/views, worst, views)
	stats, err := f.s.Do("INFO", "commandstats")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stats, "cmdstat_scan:") || strings.Contains(stats, "cmdstat_memory") {
		t.Errorf("page views walked the cache:\n%s", stats)
	}
}
