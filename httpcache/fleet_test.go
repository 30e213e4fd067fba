package httpcache_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/cache"
	"github.com/keyvalue-go/keyvalue/httpcache"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/kvtest"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/servertest"
)

// TestVary: responses with Vary are stored per value of the named
// request headers; a POST invalidates every variant of its URL.
func TestVary(t *testing.T) {
	t.Parallel()
	e := newEnv(t, cache.Options{})
	s := newSite(t, e.b, httpcache.Options{}, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			return
		}
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Vary", "Accept-Language")
		fmt.Fprint(w, "lang="+r.Header.Get("Accept-Language"))
	})
	for round := range 2 {
		for _, lang := range []string{"de", "fr", ""} {
			r := get(t, s.URL+"/v", "Accept-Language: "+lang)
			if r.body != "lang="+lang {
				t.Fatalf("round %d, %q: body %q", round, lang, r.body)
			}
			if hit := strings.HasPrefix(r.cacheStatus(), "keyvalue; hit"); hit != (round == 1) {
				t.Errorf("round %d, %q: Cache-Status %q", round, lang, r.cacheStatus())
			}
		}
	}
	if n := s.calls.Load(); n != 3 {
		t.Errorf("the handler ran %d times; want 3 (one per language)", n)
	}
	do(t, http.MethodPost, s.URL+"/v")
	for _, lang := range []string{"de", "fr"} {
		if r := get(t, s.URL+"/v", "Accept-Language: "+lang); strings.HasPrefix(r.cacheStatus(), "keyvalue; hit") {
			t.Errorf("%q after POST: %q; want a miss", lang, r.cacheStatus())
		}
	}
}

// TestSurrogateKeysAndPurge: tags from the response header and from
// Tag; the header does not reach clients (unless kept); Purge removes
// exactly the responses carrying a tag, and the PURGE endpoint needs its
// token.
func TestSurrogateKeysAndPurge(t *testing.T) {
	t.Parallel()
	e := newEnv(t, cache.Options{})
	handler := func(w http.ResponseWriter, r *http.Request) {
		page := strings.TrimPrefix(r.URL.Path, "/page/")
		w.Header().Set("Cache-Control", "max-age=600")
		w.Header().Set("Surrogate-Key", "page_"+page+" all-pages")
		httpcache.Tag(r, "layout")
		fmt.Fprint(w, "page "+page)
	}
	s := newSite(t, e.b, httpcache.Options{}, handler)
	kept := newSite(t, e.b, httpcache.Options{KeepTagHeader: true}, handler)
	for _, p := range []string{"1", "2", "3"} {
		if r := get(t, s.URL+"/page/"+p); r.header.Get("Surrogate-Key") != "" {
			t.Errorf("the client got Surrogate-Key %q; want it stripped", r.header.Get("Surrogate-Key"))
		}
	}
	if r := get(t, kept.URL+"/page/9"); r.header.Get("Surrogate-Key") != "page_9 all-pages" {
		t.Errorf("KeepTagHeader: the client got Surrogate-Key %q", r.header.Get("Surrogate-Key"))
	}
	if r := get(t, kept.URL+"/page/9"); r.header.Get("Surrogate-Key") != "all-pages layout page_9" {
		t.Errorf("KeepTagHeader: a hit has Surrogate-Key %q; want every tag", r.header.Get("Surrogate-Key"))
	}

	n, err := s.c.Purge(kvtest.Ctx(t, 0), "page_2")
	if err != nil || n != 1 {
		t.Fatalf("Purge(page_2) = %d, %v; want 1", n, err)
	}
	for p, wantHit := range map[string]bool{"1": true, "2": false, "3": true} {
		if hit := strings.HasPrefix(get(t, s.URL+"/page/"+p).cacheStatus(), "keyvalue; hit"); hit != wantHit {
			t.Errorf("page %s after Purge(page_2): hit %v, want %v", p, hit, wantHit)
		}
	}
	if n, err := s.c.Purge(kvtest.Ctx(t, 0), "layout"); err != nil || n != 4 {
		t.Errorf("Purge(layout) = %d, %v; want 4 (pages 1-3 and 9: tagged with Tag)", n, err)
	}
	if _, err := s.c.Purge(kvtest.Ctx(t, 0)); err == nil {
		t.Error("Purge without tags: no error")
	}

	// The PURGE endpoint.
	if _, err := s.c.PurgeHandler("short"); err == nil {
		t.Error("PurgeHandler with a 5-byte token: no error")
	} else {
		t.Logf("PurgeHandler(short): %v", err)
	}
	ph, err := s.c.PurgeHandler("0123456789abcdef-secret")
	if err != nil {
		t.Fatal(err)
	}
	admin := httptest.NewServer(ph)
	defer admin.Close()
	get(t, s.URL+"/page/1")
	get(t, s.URL+"/page/3")
	if r := do(t, "PURGE", admin.URL, "Surrogate-Key: page_1"); r.status != http.StatusUnauthorized || r.header.Get("WWW-Authenticate") == "" {
		t.Errorf("PURGE without a token = %d %q", r.status, r.body)
	}
	if r := do(t, "PURGE", admin.URL, "Authorization: Bearer wrong", "Surrogate-Key: page_1"); r.status != http.StatusUnauthorized {
		t.Errorf("PURGE with a wrong token = %d %q", r.status, r.body)
	}
	if r := do(t, "PURGE", admin.URL, "Authorization: Bearer 0123456789abcdef-secret"); r.status != http.StatusBadRequest {
		t.Errorf("PURGE without tags = %d %q", r.status, r.body)
	} else {
		t.Logf("PURGE without tags: %d %s", r.status, r.body)
	}
	if r := do(t, http.MethodGet, admin.URL, "Authorization: Bearer 0123456789abcdef-secret"); r.status != http.StatusMethodNotAllowed {
		t.Errorf("GET on the purge endpoint = %d", r.status)
	}
	r := do(t, "PURGE", admin.URL+"?tag=page_3", "Authorization: Bearer 0123456789abcdef-secret", "Surrogate-Key: page_1")
	if r.status != http.StatusOK || !strings.Contains(r.body, `"purged":2`) {
		t.Errorf("PURGE page_1 page_3 = %d %s; want 200 with purged 2", r.status, r.body)
	}
	if strings.HasPrefix(get(t, s.URL+"/page/1").cacheStatus(), "keyvalue; hit") {
		t.Error("page 1 is still served after the PURGE request")
	}
}

// TestPurgeRacingRender: a render that began before a Purge of its tag is
// not stored after it: its own client gets it, the next request renders
// again.
func TestPurgeRacingRender(t *testing.T) {
	t.Parallel()
	e := newEnv(t, cache.Options{})
	var version atomic.Int64
	g := newGate()
	s := newSite(t, e.b, httpcache.Options{}, func(w http.ResponseWriter, r *http.Request) {
		v := version.Load() // read the "database" before the purge
		if v == 0 {
			g.wait(t)
		}
		w.Header().Set("Cache-Control", "max-age=600")
		w.Header().Set("Surrogate-Key", "page_7")
		fmt.Fprintf(w, "version %d", v)
	})
	done := make(chan response, 1)
	go func() { done <- get(t, s.URL+"/page/7") }()
	g.awaitEntered(t)
	version.Store(1) // an editor saves...
	if _, err := s.c.Purge(kvtest.Ctx(t, 0), "page_7"); err != nil {
		t.Fatal(err)
	}
	g.open() // ...and the render that read version 0 finishes after the purge
	if r := <-done; r.body != "version 0" {
		t.Fatalf("the racing render's own client got %q", r.body)
	}
	r := get(t, s.URL+"/page/7")
	if r.body != "version 1" || strings.HasPrefix(r.cacheStatus(), "keyvalue; hit") {
		t.Errorf("after the purge: %q (%s); want version 1, rendered again", r.body, r.cacheStatus())
	}
	if r := get(t, s.URL+"/page/7"); r.body != "version 1" || !strings.HasPrefix(r.cacheStatus(), "keyvalue; hit") {
		t.Errorf("then: %q (%s); want version 1 from the cache", r.body, r.cacheStatus())
	}
}

// TestOneRenderAcrossProcesses: concurrent misses on two "processes"
// (two clients, two middlewares) render a page once; everyone gets it.
func TestOneRenderAcrossProcesses(t *testing.T) {
	t.Parallel()
	e := newEnv(t, cache.Options{})
	other := kvtest.Open(t, keyvalue.Config{Addrs: []string{e.srv.Addr()}})
	var renders atomic.Int64
	g := newGate()
	h := func(w http.ResponseWriter, r *http.Request) {
		renders.Add(1)
		g.wait(t)
		w.Header().Set("Cache-Control", "max-age=600")
		fmt.Fprint(w, "rendered once")
	}
	sites := []*site{newSite(t, e.b, httpcache.Options{}, h), newSite(t, newBackend(t, other, cache.Options{}), httpcache.Options{}, h)}
	const n = 32
	var wg sync.WaitGroup
	results := make(chan response, n)
	for i := range n {
		wg.Go(func() { results <- get(t, sites[i%2].URL+"/hot", "Host: www.example.test") })
	}
	g.awaitEntered(t)
	time.Sleep(200 * time.Millisecond) // let the others queue up
	g.open()
	wg.Wait()
	close(results)
	collapsed := 0
	for r := range results {
		if r.body != "rendered once" {
			t.Errorf("a client got %d %q", r.status, r.body)
		}
		if strings.Contains(r.cacheStatus(), "collapsed") {
			collapsed++
		}
	}
	if got := renders.Load(); got != 1 {
		t.Errorf("%d renders for %d concurrent misses on two processes; want 1", got, n)
	}
	t.Logf("%d of %d requests waited for the render (the others came after it)", collapsed, n)
}

// TestHandlerPanicHandsOver: a handler that panics while rendering for
// the fleet releases the render at once: the next request renders
// without waiting for the lease.
func TestHandlerPanicHandsOver(t *testing.T) {
	t.Parallel()
	e := newEnv(t, cache.Options{})
	var calls atomic.Int64
	s := newSite(t, e.b, httpcache.Options{Lease: 20 * time.Second}, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			panic(http.ErrAbortHandler)
		}
		w.Header().Set("Cache-Control", "max-age=60")
		fmt.Fprint(w, "ok")
	})
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/panics", nil)
	if _, err := http.DefaultClient.Do(req); err == nil {
		t.Fatal("the first request did not fail")
	}
	start := time.Now()
	if r := get(t, s.URL+"/panics"); r.body != "ok" {
		t.Fatalf("second request = %q", r.body)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("the second request took %s; want no wait for the 20 s lease", took)
	}
}

// TestStaleWhileRevalidate: a stale response within its
// stale-while-revalidate window is served at once while one background
// render replaces it.
func TestStaleWhileRevalidate(t *testing.T) {
	t.Parallel()
	e := newEnv(t, cache.Options{})
	var version atomic.Int64
	s := newSite(t, e.b, httpcache.Options{}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=1, stale-while-revalidate=60")
		fmt.Fprintf(w, "version %d", version.Add(1))
	})
	get(t, s.URL+"/swr")
	time.Sleep(1100 * time.Millisecond)
	r := get(t, s.URL+"/swr")
	if r.body != "version 1" || !strings.Contains(r.cacheStatus(), "detail=stale-while-revalidate") {
		t.Errorf("stale read = %q (%s); want version 1, served stale", r.body, r.cacheStatus())
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if r = get(t, s.URL+"/swr"); r.body != "version 1" {
			break
		}
		if !strings.HasPrefix(r.cacheStatus(), "keyvalue; hit") {
			t.Fatalf("while the background render runs: %q (%s); want a hit", r.body, r.cacheStatus())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Version 2 unless the machine is so slow that it went stale too.
	if r.body == "version 1" || !strings.HasPrefix(r.cacheStatus(), "keyvalue; hit") {
		t.Errorf("after the background render: %q (%s); want a newer version from the cache", r.body, r.cacheStatus())
	}
}

// TestStaleIfError: once a response is stale (and past any
// stale-while-revalidate), a server error from the handler is replaced by
// the stale response within its stale-if-error window; must-revalidate
// forbids that.
func TestStaleIfError(t *testing.T) {
	t.Parallel()
	e := newEnv(t, cache.Options{})
	var failing atomic.Bool
	h := func(cc string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if failing.Load() {
				http.Error(w, "database down", http.StatusServiceUnavailable)
				return
			}
			w.Header().Set("Cache-Control", cc)
			fmt.Fprint(w, "good")
		}
	}
	s := newSite(t, e.b, httpcache.Options{}, h("max-age=1, stale-if-error=60"))
	strict := newSite(t, e.b, httpcache.Options{StaleIfError: time.Minute}, h("max-age=1, must-revalidate"))
	get(t, s.URL+"/sie")
	get(t, strict.URL+"/strict")
	time.Sleep(1100 * time.Millisecond)
	failing.Store(true)
	r := get(t, s.URL+"/sie")
	if r.status != 200 || r.body != "good" || !strings.Contains(r.cacheStatus(), "detail=stale-if-error") {
		t.Errorf("handler failing, stale-if-error: %d %q (%s); want the stale 200", r.status, r.body, r.cacheStatus())
	}
	if r := get(t, strict.URL+"/strict"); r.status != http.StatusServiceUnavailable {
		t.Errorf("handler failing, must-revalidate: %d %q; want the 503", r.status, r.body)
	}
	failing.Store(false)
	if r := get(t, s.URL+"/sie"); r.body != "good" || !strings.Contains(r.cacheStatus(), "stored") {
		t.Errorf("handler back: %q (%s); want it rendered and stored", r.body, r.cacheStatus())
	}
}

// TestDegraded: with the server down or frozen, every request is served
// by the handler, bounded by LookupTimeout, and never fails because of
// the cache.
func TestDegraded(t *testing.T) {
	t.Parallel()
	e := newEnv(t, cache.Options{Degraded: true})
	var logs strings.Builder
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}), nil))
	s := newSite(t, e.b, httpcache.Options{LookupTimeout: 200 * time.Millisecond, Logger: logger}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		fmt.Fprint(w, "page")
	})
	get(t, s.URL+"/d")

	if err := e.srv.Freeze(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := get(t, s.URL+"/d")
	took := time.Since(start)
	if err := e.srv.Thaw(); err != nil {
		t.Fatal(err)
	}
	if r.status != 200 || r.body != "page" {
		t.Errorf("frozen server: %d %q", r.status, r.body)
	}
	t.Logf("frozen server: served in %s, Cache-Status %q", took, r.cacheStatus())
	if took > 2*time.Second {
		t.Errorf("frozen server: the request took %s; want about LookupTimeout (200ms) plus the render", took)
	}

	e.srv.Stop()
	for i := range 20 {
		start := time.Now()
		r := get(t, s.URL+fmt.Sprintf("/down/%d", i%3))
		if r.status != 200 || r.body != "page" {
			t.Fatalf("server down, request %d: %d %q", i, r.status, r.body)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("server down, request %d took %s", i, took)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if n := strings.Count(logs.String(), "\n"); n < 1 || n > 3 {
		t.Errorf("%d log lines for 21 requests without a server; want the first, rate-limited:\n%s", n, logs.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestStreamingAndLimits: the render reaches its client while it is
// still running; a body over MaxBodyBytes streams through uncached, and
// the requests after it pass (hit-for-pass) until HitForPass ends.
func TestStreamingAndLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t, cache.Options{})
	g := newGate()
	s := newSite(t, e.b, httpcache.Options{MaxBodyBytes: 1000, HitForPass: 300 * time.Millisecond}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		if r.URL.Path == "/stream" {
			fmt.Fprint(w, "first part;")
			http.NewResponseController(w).Flush()
			g.wait(t) // opened by the client once it read the first part
			fmt.Fprint(w, "second part")
			return
		}
		fmt.Fprint(w, strings.Repeat("x", 1500))
	})
	res, err := http.Get(s.URL + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len("first part;"))
	if _, err := io.ReadFull(res.Body, buf); err != nil || string(buf) != "first part;" {
		t.Fatalf("first part = %q, %v", buf, err)
	}
	g.open()
	rest, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(rest) != "second part" {
		t.Errorf("rest = %q", rest)
	}
	if r := get(t, s.URL+"/stream"); r.body != "first part;second part" || !strings.HasPrefix(r.cacheStatus(), "keyvalue; hit") {
		t.Errorf("the streamed response was not stored whole: %q (%s)", r.body, r.cacheStatus())
	}

	big := get(t, s.URL+"/big")
	if len(big.body) != 1500 || !strings.Contains(big.cacheStatus(), "detail=too-large") {
		t.Errorf("large body: %d bytes (%s); want it whole and not stored", len(big.body), big.cacheStatus())
	}
	if r := get(t, s.URL+"/big"); !strings.Contains(r.cacheStatus(), "hit-for-pass") {
		t.Errorf("after a large body: %s; want hit-for-pass", r.cacheStatus())
	}
	time.Sleep(400 * time.Millisecond)
	if r := get(t, s.URL+"/big"); !strings.Contains(r.cacheStatus(), "fwd=uri-miss") {
		t.Errorf("after HitForPass: %s; want a miss again", r.cacheStatus())
	}
}

// TestCompressedStorage: with the cache's compression on, a page is
// stored compressed and served whole.
func TestCompressedStorage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, cache.Options{Compression: cache.CompressionZstd})
	page := strings.Repeat("<p>the same paragraph again</p>\n", 2000)
	s := newSite(t, e.b, httpcache.Options{}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		fmt.Fprint(w, page)
	})
	get(t, s.URL+"/z")
	if r := get(t, s.URL+"/z"); r.body != page {
		t.Fatalf("hit body differs (%d bytes, want %d)", len(r.body), len(page))
	}
	admin := kvtest.Admin(t, e.client)
	keys, err := admin.Do(kvtest.Ctx(t, 0), admin.B().Keys().Pattern(e.b.Prefix()+"v:*").Build()).AsStrSlice()
	if err != nil || len(keys) != 1 {
		t.Fatalf("value keys = %v, %v", keys, err)
	}
	n, err := admin.Do(kvtest.Ctx(t, 0), admin.B().Strlen().Key(keys[0]).Build()).AsInt64()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("a %d-byte page is stored in %d bytes", len(page), n)
	if n > int64(len(page))/10 {
		t.Errorf("stored %d bytes for a %d-byte repetitive page; want it compressed", n, len(page))
	}
}

// TestBadOptions: what a user sees for options that cannot work.
func TestBadOptions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, cache.Options{})
	for _, tc := range []struct {
		opts httpcache.Options
		want string
	}{
		{httpcache.Options{Lease: -time.Second}, "httpcache: invalid options: Lease is -1s; use 0 for the default or a positive duration"},
		{httpcache.Options{MaxBodyBytes: -1}, "httpcache: invalid options: MaxBodyBytes is -1; use 0 for the default (1 MiB) or a positive size"},
		{httpcache.Options{TagHeader: "Surrogate Key"}, `httpcache: invalid options: TagHeader is "Surrogate Key"; want a header name such as Surrogate-Key`},
	} {
		_, err := httpcache.New(e.b, tc.opts)
		if !errors.Is(err, httpcache.ErrInvalidOptions) || err.Error() != tc.want {
			t.Errorf("New(%+v) = %v; want %q", tc.opts, err, tc.want)
		}
	}
	if _, err := httpcache.New(nil, httpcache.Options{}); err == nil || err.Error() != "httpcache: invalid options: no cache backend (create one with cache.New)" {
		t.Errorf("New(nil) = %v", err)
	}
	// Middleware cannot return the error: it logs it and passes through.
	mw := httpcache.Middleware(nil, httpcache.Options{Logger: kvtest.Quiet})
	rec := httptest.NewRecorder()
	mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Body.String() != "ok" || rec.Header().Get("Cache-Status") != "keyvalue; fwd=bypass; detail=misconfigured" {
		t.Errorf("misconfigured middleware: %q %q", rec.Body.String(), rec.Header().Get("Cache-Status"))
	}
	_ = context.Background
}

// TestHeadNeverStoresItsEmptyBody: a handler that writes no body for HEAD
// never gets its HEAD response stored as the GET's: a stale HEAD within
// stale-while-revalidate refreshes with a GET, and beyond it passes
// through.
func TestHeadNeverStoresItsEmptyBody(t *testing.T) {
	t.Parallel()
	e := newEnv(t, cache.Options{})
	var version atomic.Int64
	s := newSite(t, e.b, httpcache.Options{}, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/swr") {
			w.Header().Set("Cache-Control", "max-age=1, stale-while-revalidate=60")
		} else {
			w.Header().Set("Cache-Control", "max-age=1")
		}
		v := version.Add(1)
		if r.Method == http.MethodHead {
			return
		}
		fmt.Fprintf(w, "full body %d", v)
	})
	for _, path := range []string{"/h/swr", "/h/plain"} {
		get(t, s.URL+path)
	}
	time.Sleep(1100 * time.Millisecond)
	for _, path := range []string{"/h/swr", "/h/plain"} {
		r := do(t, http.MethodHead, s.URL+path)
		t.Logf("stale HEAD %s: %d %s", path, r.status, r.cacheStatus())
	}
	servertest.WaitFor(t, 5*time.Second, "the background refresh stored a GET", func() error {
		r := get(t, s.URL+"/h/swr")
		if !strings.HasPrefix(r.body, "full body") {
			return fmt.Errorf("GET /h/swr = %q (%s)", r.body, r.cacheStatus())
		}
		if r.body == "full body 1" {
			return errors.New("not refreshed yet")
		}
		return nil
	})
	if r := get(t, s.URL+"/h/plain"); !strings.HasPrefix(r.body, "full body") {
		t.Errorf("GET /h/plain after a stale HEAD = %q (%s)", r.body, r.cacheStatus())
	}
}

// TestStaleIfErrorForWaiters: while one request renders a stale page and
// the handler fails, the requests waiting for that render get the stale
// page too (stale-if-error), instead of rendering one after another.
func TestStaleIfErrorForWaiters(t *testing.T) {
	t.Parallel()
	e := newEnv(t, cache.Options{})
	var failing atomic.Bool
	g := newGate()
	s := newSite(t, e.b, httpcache.Options{}, func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			g.wait(t)
			http.Error(w, "database down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Cache-Control", "max-age=1, stale-if-error=60")
		fmt.Fprint(w, "good")
	})
	get(t, s.URL+"/w")
	time.Sleep(1100 * time.Millisecond)
	failing.Store(true)
	const n = 6
	results := make(chan response, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { results <- get(t, s.URL+"/w") })
	}
	g.awaitEntered(t)
	time.Sleep(200 * time.Millisecond) // the others wait for that render
	g.open()
	wg.Wait()
	close(results)
	for r := range results {
		if r.status != 200 || r.body != "good" {
			t.Errorf("got %d %q (%s); want the stale page", r.status, r.body, r.cacheStatus())
		}
	}
	if calls := s.calls.Load(); calls != 2 {
		t.Errorf("the handler ran %d times; want 2 (the first render and one failing revalidation)", calls)
	}
}
