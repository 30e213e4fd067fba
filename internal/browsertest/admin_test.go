package browsertest

import (
	"context"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/admin"
	"github.com/keyvalue-go/keyvalue/cache"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/kvtest"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/servertest"
	"github.com/keyvalue-go/keyvalue/lock"
	"github.com/keyvalue-go/keyvalue/session"
)

// screenshotsEnv names the directory the test writes its screenshots to
// (make admin-screenshots sets it to docs/admin).
const screenshotsEnv = "KV_ADMIN_SCREENSHOTS"

const password = "correct horse battery staple"

// postDelay is how long the test site takes to answer a form submission.
const postDelay = 300 * time.Millisecond

// chromium returns the browser's path, or skips the test.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("browsertest: skipped: Chromium is not installed (apt-get install chromium; make test installs it as root)")
	return ""
}

// site is an application with a login that mounts the admin page at /ops/.
type site struct {
	srv      *httptest.Server
	pages    *cache.Backend
	sessions *session.Store
	locks    *lock.Locker
}

func newSite(t *testing.T) *site {
	t.Helper()
	s := servertest.Standalone(t)
	c := kvtest.Open(t, keyvalue.Config{Addrs: []string{s.Addr()}})
	st := &site{}
	var err error
	if st.pages, err = cache.New(c, "pages", cache.Options{Logger: kvtest.Quiet}); err != nil {
		t.Fatal(err)
	}
	if st.sessions, err = session.New(c, session.Options{Prefix: "web", Key: []byte(strings.Repeat("k", 32)), Logger: kvtest.Quiet}); err != nil {
		t.Fatal(err)
	}
	st.locks = lock.New(c, lock.Options{Logger: kvtest.Quiet, TTL: time.Minute})

	signedIn := fmt.Sprintf("%x", time.Now().UnixNano()) // the one operator's sign-in
	authorized := func(r *http.Request) bool {
		ck, err := r.Cookie("ops")
		return err == nil && ck.Value == signedIn
	}
	h, err := admin.New(admin.Options{
		Client: c, Caches: []*cache.Backend{st.pages}, Sessions: []*session.Store{st.sessions}, Locks: st.locks,
		Authorize: authorized, Who: func(*http.Request) string { return "operator" }, Logger: kvtest.Quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/ops/", http.StripPrefix("/ops", h))
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<!doctype html><title>Sign in</title><form method="post" action="/login">
<label>password <input id="password" type="password" name="password"></label><button id="sign-in">Sign in</button></form>`)
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if r.PostFormValue("password") != password {
			http.Error(w, "wrong password", http.StatusForbidden)
			return
		}
		http.SetCookie(w, &http.Cookie{Name: "ops", Value: signedIn, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
		http.Redirect(w, r, "/ops/", http.StatusSeeOther)
	})
	// Every form submission is answered slowly, as a busy server answers:
	// a wait after a click must find the next page, never an element of
	// the page it is leaving.
	slowPosts := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			select {
			case <-time.After(postDelay):
			case <-r.Context().Done():
				return
			}
		}
		mux.ServeHTTP(w, r)
	})
	st.srv = httptest.NewServer(slowPosts)
	t.Cleanup(st.srv.Close)
	return st
}

// fill stores entries tagged news and keep, one with a tag that is
// markup, sessions of a few users and a held lock.
func (st *site) fill(t *testing.T) {
	t.Helper()
	var entries []cache.Entry
	for i := range 60 {
		tags := []string{"keep", "page_" + strconv.Itoa(i%12)}
		if i%4 == 0 {
			tags = []string{"news", "page_" + strconv.Itoa(i%12)}
		}
		entries = append(entries, cache.Entry{ID: "page-" + strconv.Itoa(i), Data: []byte("<h1>page " + strconv.Itoa(i) + "</h1>"), Tags: tags, Lifetime: time.Hour})
	}
	entries = append(entries, cache.Entry{ID: "evil", Data: []byte("<script>alert(2)</script>"), Tags: []string{"<img/src=x/onerror=alert(1)>"}, Lifetime: time.Hour})
	if err := st.pages.SetMany(t.Context(), entries); err != nil {
		t.Fatal(err)
	}
	for i, user := range []string{"ann", "ann", "bob", "cy", "ann", ""} {
		if _, err := st.sessions.Create(t.Context(), session.Record{UserID: user, Device: []string{"Firefox on Linux", "Safari on iPhone", "Chrome on Windows"}[i%3]}); err != nil {
			t.Fatal(err)
		}
	}
	m, err := st.locks.Mutex("nightly-import")
	if err != nil {
		t.Fatal(err)
	}
	lease, err := m.Lock(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lease.Unlock(context.Background()) })
}

// browser starts headless Chromium for the test; dialogs counts the
// JavaScript dialogs that opened (each is dismissed).
func browser(t *testing.T) (context.Context, *atomic.Int32) {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium(t)), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.WindowSize(1200, 900))
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	dialogs := &atomic.Int32{}
	opening := chromedp.Events(bctx, page.JavascriptDialogOpening)
	go func() {
		for _, err := range opening {
			if err != nil {
				return
			}
			dialogs.Add(1)
			_, _ = chromedp.Call(bctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		}
	}()
	return bctx, dialogs
}

// shoot saves a screenshot of the page as name.png where
// KV_ADMIN_SCREENSHOTS says, and in the test's temporary directory.
func shoot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := os.Getenv(screenshotsEnv)
	if dir == "" {
		dir = t.TempDir()
	}
	p := filepath.Join(dir, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s (%d bytes)", p, len(png))
}

// settled runs a read of the page, and runs it again, for at most five
// seconds, while it fails because the document it read was being
// replaced: Chromium discards a page's JavaScript context when the next
// page commits, and a read that straddles that moment fails with
// "Cannot find context with specified id" or "Execution context was
// destroyed" although the next page is there a moment later.
func settled[T any](ctx context.Context, read func() (T, error)) (T, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		v, err := read()
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil || !replaced(err) {
			return v, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// replaced reports whether err says the document a read ran in was
// replaced by the next one.
func replaced(err error) bool {
	return strings.Contains(err.Error(), "Cannot find context with specified id") || strings.Contains(err.Error(), "Execution context was destroyed")
}

func location(t *testing.T, ctx context.Context) string {
	t.Helper()
	loc, err := settled(ctx, func() (string, error) { return chromedp.Run(ctx, chromedp.Location()) })
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := settled(ctx, func() (string, error) { return chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel))) })
	if err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
		t.Fatalf("text of %s at %s: %v\n%s", sel, loc, err, body)
	}
	return strings.TrimSpace(s)
}

func TestOperationsPageInChromium(t *testing.T) {
	st := newSite(t)
	st.fill(t)
	ctx, dialogs := browser(t)
	base := st.srv.URL

	// Without signing in every page is refused.
	for _, path := range []string{"/ops/", "/ops/caches/pages", "/ops/sessions/web", "/ops/locks"} {
		if err := chromedp.Do(ctx, chromedp.Navigate(base+path)); err != nil {
			t.Fatal(err)
		}
		if body := text(t, ctx, "body"); !strings.Contains(body, "403 forbidden") {
			t.Errorf("%s before signing in shows %q", path, body)
		}
	}

	// Sign in: the application's login leads to the Server page.
	var loc string
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/login"),
		chromedp.SendKeys(chromedp.CSS("#password"), password), chromedp.Click(chromedp.CSS("#sign-in")),
		chromedp.WaitVisible(chromedp.CSS("table.facts"))); err != nil {
		t.Fatal(err)
	}
	loc = location(t, ctx)
	if loc != base+"/ops/" || !strings.Contains(text(t, ctx, "h1"), "Server") {
		t.Fatalf("after signing in: %s", loc)
	}
	shoot(t, ctx, "server")

	// Open the cache: the survey's count.
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/ops/caches/pages"), chromedp.WaitVisible(chromedp.CSS("#entries"))); err != nil {
		t.Fatal(err)
	}
	if got := text(t, ctx, "#entries"); got != "61" {
		t.Errorf("the cache page counts %s entries, want 61", got)
	}
	shoot(t, ctx, "cache")

	// Flush the tag news through the form: a count to confirm, then the
	// result, then the tag's count.
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS("#flush-tags"), "news"), chromedp.Submit(chromedp.CSS("#flush-tags")),
		chromedp.WaitVisible(chromedp.CSS("#confirmation button.danger"))); err != nil {
		t.Fatal(err)
	}
	if q := text(t, ctx, "main p"); !strings.Contains(q, "list 15 entries") {
		t.Errorf("the confirmation asks %q", q)
	}
	shoot(t, ctx, "confirm")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#confirmation button.danger")), chromedp.WaitVisible(chromedp.CSS("#result"))); err != nil {
		t.Fatal(err)
	}
	if got := text(t, ctx, "#result"); got != "Flushed 15 entries carrying these tags." {
		t.Errorf("the result says %q", got)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/ops/caches/pages?tag=news"), chromedp.WaitVisible(chromedp.CSS("#tag-members"))); err != nil {
		t.Fatal(err)
	}
	if got := text(t, ctx, "#tag-members"); got != "0" {
		t.Errorf("after the flush the index of news lists %s entries", got)
	}
	// Through the API: news is gone, keep remains.
	for i := range 60 {
		_, err := st.pages.Get(t.Context(), "page-"+strconv.Itoa(i))
		if gone := errors.Is(err, cache.ErrNotFound); gone != (i%4 == 0) {
			t.Errorf("page-%d after flushing news: %v", i, err)
		}
	}

	// Markup in a tag, in a search and in a value is text: no dialog.
	for _, path := range []string{"/ops/caches/pages", "/ops/caches/pages?tag=" + url.QueryEscape("<img/src=x/onerror=alert(1)>"),
		"/ops/caches/pages?tag=" + url.QueryEscape("<img src=x onerror=alert(1)>"), "/ops/caches/pages?id=evil&value=1"} {
		if err := chromedp.Do(ctx, chromedp.Navigate(base+path), chromedp.WaitVisible(chromedp.CSS("main"))); err != nil {
			t.Fatal(err)
		}
		imgs, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("main img").length`))
		if err != nil {
			t.Fatal(err)
		}
		scripts, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("main script").length`))
		if err != nil {
			t.Fatal(err)
		}
		body := text(t, ctx, "main")
		if imgs != 0 || scripts != 0 || !(strings.Contains(body, "<img") || strings.Contains(body, "<script>alert(2)</script>")) {
			t.Errorf("%s: %d img, %d script elements; text %q", path, imgs, scripts, body)
		}
	}
	time.Sleep(200 * time.Millisecond) // an onerror would have fired by now
	if n := dialogs.Load(); n != 0 {
		t.Errorf("%d JavaScript dialogs opened", n)
	}

	// A page of another origin posts a flush with the operator's cookie:
	// refused, nothing flushed.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><form id="f" method="post" action="%s/ops/caches/pages/flush-tags">
<input name="tags" value="keep"><input name="confirm" value="yes"></form><script>document.getElementById("f").submit()</script>`, html.EscapeString(base))
	}))
	defer evil.Close()
	if err := chromedp.Do(ctx, chromedp.Navigate(evil.URL)); err != nil {
		t.Fatal(err)
	}
	// The page submits its form itself: wait until that navigation has
	// loaded (a read while the page is replaced fails and is tried again).
	servertest.WaitFor(t, 10*time.Second, "the page the cross-origin form posts to", func() error {
		l, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.readyState == "complete" ? location.href : ""`))
		if err == nil && l != base+"/ops/caches/pages/flush-tags" {
			err = fmt.Errorf("at %q", l)
		}
		return err
	})
	loc = location(t, ctx)
	if body := text(t, ctx, "body"); loc != base+"/ops/caches/pages/flush-tags" || !strings.Contains(strings.ToLower(body), "cross-origin") {
		t.Errorf("the cross-origin form landed on %s: %q", loc, body)
	}
	if n, err := st.pages.IndexSizes(t.Context(), "keep"); err != nil || n["keep"] != 45 {
		t.Errorf("after the cross-origin POST the index of keep lists %v, %v; want 45", n, err)
	}

	// The other pages.
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/ops/sessions/web"), chromedp.WaitVisible(chromedp.CSS("#session-count"))); err != nil {
		t.Fatal(err)
	}
	if got := text(t, ctx, "#session-count"); got != "6" {
		t.Errorf("the sessions page counts %s", got)
	}
	shoot(t, ctx, "sessions")
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/ops/sessions/web?user=ann"), chromedp.WaitVisible(chromedp.CSS("main table"))); err != nil {
		t.Fatal(err)
	}
	shoot(t, ctx, "devices")
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/ops/locks"), chromedp.WaitVisible(chromedp.CSS("main table"))); err != nil {
		t.Fatal(err)
	}
	if got := text(t, ctx, "main table tbody td"); got != "nightly-import" {
		t.Errorf("the locks page lists %q first", got)
	}
	shoot(t, ctx, "locks")
}
