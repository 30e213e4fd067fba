package httpcache_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyvalue-go/keyvalue/cache"
	"github.com/keyvalue-go/keyvalue/httpcache"
)

// TestRFC9111StoreDecisions: directive × expected decision. Each row
// sends the same request twice: a stored response is served the second
// time without calling the handler (Cache-Status "hit"); otherwise the
// handler runs again. The first response's Cache-Status says why.
func TestRFC9111StoreDecisions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, cache.Options{})
	future := time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)
	past := time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)
	rows := []struct {
		name     string
		opts     httpcache.Options
		request  []string
		status   int
		response []string
		stored   bool
		detail   string // in the first response's Cache-Status
	}{
		{name: "max-age", response: []string{"Cache-Control: max-age=60"}, stored: true},
		{name: "s-maxage", response: []string{"Cache-Control: s-maxage=60"}, stored: true},
		{name: "s-maxage over max-age=0", response: []string{"Cache-Control: max-age=0, s-maxage=60"}, stored: true},
		{name: "public max-age", response: []string{"Cache-Control: public, max-age=60"}, stored: true},
		{name: "no-store", response: []string{"Cache-Control: no-store, max-age=60"}, detail: "detail=no-store"},
		{name: "private", response: []string{"Cache-Control: private, max-age=60"}, detail: "detail=private"},
		{name: "private with field", response: []string{`Cache-Control: private="Set-Cookie", max-age=60`}, detail: "detail=private"},
		{name: "no-cache", response: []string{"Cache-Control: no-cache, max-age=60"}, detail: "detail=no-cache"},
		{name: "no freshness", detail: "detail=no-freshness-information"},
		{name: "no freshness, DefaultTTL", opts: httpcache.Options{DefaultTTL: time.Minute}, stored: true},
		{name: "no freshness, DefaultTTL, status 201", opts: httpcache.Options{DefaultTTL: time.Minute}, status: 201, detail: "detail=status-201"},
		{name: "Expires in the future", response: []string{"Expires: " + future}, stored: true},
		{name: "Expires in the past", response: []string{"Expires: " + past}, detail: "detail=stale-on-arrival"},
		{name: "Expires invalid", response: []string{"Expires: 0"}, detail: "detail=stale-on-arrival"},
		{name: "max-age over Expires", response: []string{"Cache-Control: max-age=60", "Expires: " + past}, stored: true},
		{name: "max-age=0", response: []string{"Cache-Control: max-age=0"}, detail: "detail=stale-on-arrival"},
		{name: "Age over max-age", response: []string{"Cache-Control: max-age=60", "Age: 100"}, detail: "detail=stale-on-arrival"},
		{name: "malformed Cache-Control", response: []string{"Cache-Control: max-age=soon"}, detail: "detail=malformed-Cache-Control"},
		{name: "Set-Cookie", response: []string{"Cache-Control: max-age=60", "Set-Cookie: a=b"}, detail: "detail=set-cookie"},
		{name: "Set-Cookie, StoreSetCookie", opts: httpcache.Options{StoreSetCookie: true}, response: []string{"Cache-Control: max-age=60", "Set-Cookie: a=b"}, stored: true},
		{name: "Authorization", request: []string{"Authorization: Bearer x"}, response: []string{"Cache-Control: max-age=60"}, detail: "detail=authorization"},
		{name: "Authorization, public", request: []string{"Authorization: Bearer x"}, response: []string{"Cache-Control: public, max-age=60"}, stored: true},
		{name: "Authorization, s-maxage", request: []string{"Authorization: Bearer x"}, response: []string{"Cache-Control: s-maxage=60"}, stored: true},
		{name: "Authorization, must-revalidate", request: []string{"Authorization: Bearer x"}, response: []string{"Cache-Control: max-age=60, must-revalidate"}, stored: true},
		{name: "request no-store", request: []string{"Cache-Control: no-store"}, response: []string{"Cache-Control: max-age=60"}, detail: "detail=request-no-store"},
		{name: "Vary *", response: []string{"Cache-Control: max-age=60", "Vary: *"}, detail: "detail=vary-*"},
		{name: "404 max-age", status: 404, response: []string{"Cache-Control: max-age=60"}, stored: true},
		{name: "410, DefaultTTL", opts: httpcache.Options{DefaultTTL: time.Minute}, status: 410, stored: true},
		{name: "302 max-age", status: 302, response: []string{"Cache-Control: max-age=60", "Location: /x"}, stored: true},
		{name: "302, DefaultTTL", opts: httpcache.Options{DefaultTTL: time.Minute}, status: 302, response: []string{"Location: /x"}, detail: "detail=no-freshness-information"},
		{name: "206", status: 206, response: []string{"Cache-Control: max-age=60", "Content-Range: bytes 0-1/10"}, detail: "detail=status-206"},
		{name: "500 max-age", status: 500, response: []string{"Cache-Control: max-age=60"}, detail: "detail=status-500"},
		{name: "503 max-age", status: 503, response: []string{"Cache-Control: max-age=60"}, detail: "detail=status-503"},
		{name: "501 max-age", status: 501, response: []string{"Cache-Control: max-age=60"}, stored: true},
	}
	for i, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			status := row.status
			if status == 0 {
				status = 200
			}
			s := newSite(t, e.b, row.opts, func(w http.ResponseWriter, r *http.Request) {
				for _, h := range row.response {
					name, value, _ := strings.Cut(h, ":")
					w.Header().Add(name, strings.TrimSpace(value))
				}
				w.WriteHeader(status)
				fmt.Fprint(w, "body of "+row.name)
			})
			url := fmt.Sprintf("%s/row/%d", s.URL, i)
			first := get(t, url, row.request...)
			if first.status != status {
				t.Fatalf("first response: status %d, want %d", first.status, status)
			}
			if row.detail != "" && !strings.Contains(first.cacheStatus(), row.detail) {
				t.Errorf("first response's Cache-Status = %q; want it to contain %q", first.cacheStatus(), row.detail)
			}
			if row.stored && !strings.Contains(first.cacheStatus(), "stored") {
				t.Errorf("first response's Cache-Status = %q; want it to say stored", first.cacheStatus())
			}
			second := get(t, url, row.request...)
			calls := s.calls.Load()
			switch {
			case row.stored && (calls != 1 || !strings.HasPrefix(second.cacheStatus(), "keyvalue; hit")):
				t.Errorf("want the second request served from the cache; the handler ran %d times, Cache-Status %q", calls, second.cacheStatus())
			case !row.stored && calls != 2:
				t.Errorf("want the second request rendered again; the handler ran %d times, Cache-Status %q", calls, second.cacheStatus())
			}
			if second.status != status || second.body != "body of "+row.name {
				t.Errorf("second response: %d %q; want %d %q", second.status, second.body, status, "body of "+row.name)
			}
		})
	}
}

// TestReuse: Age on hits, the stored Date kept, 304 for matching
// conditional requests (on a hit and on the render itself), HEAD served
// from the cached GET, and unsafe methods invalidating the URL.
func TestReuse(t *testing.T) {
	t.Parallel()
	e := newEnv(t, cache.Options{})
	lastModified := time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)
	s := newSite(t, e.b, httpcache.Options{}, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Cache-Control", "max-age=600")
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Last-Modified", lastModified)
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, "hello")
	})

	first := get(t, s.URL+"/p", `If-None-Match: "v1"`)
	if first.status != http.StatusNotModified || first.body != "" {
		t.Errorf("conditional request on a miss = %d %q; want 304 without a body (rendered and stored)", first.status, first.body)
	}
	time.Sleep(1100 * time.Millisecond)
	hit := get(t, s.URL+"/p")
	if hit.status != 200 || hit.body != "hello" || !strings.HasPrefix(hit.cacheStatus(), "keyvalue; hit") {
		t.Fatalf("second request = %d %q %q; want a hit", hit.status, hit.body, hit.cacheStatus())
	}
	if age := hit.header.Get("Age"); age != "1" {
		t.Errorf("Age = %q; want 1 (stored 1.1 s ago)", age)
	}
	if hit.header.Get("Date") == "" || hit.header.Get("Content-Type") != "text/plain" {
		t.Errorf("hit lost stored headers: %v", hit.header)
	}
	date, _ := http.ParseTime(hit.header.Get("Date"))
	if time.Since(date) < time.Second {
		t.Errorf("Date = %s; want the time the response was rendered, not now", hit.header.Get("Date"))
	}
	for _, cond := range [][]string{{`If-None-Match: W/"v1"`}, {`If-None-Match: "x", "v1"`}, {"If-None-Match: *"}, {"If-Modified-Since: " + lastModified}} {
		if r := get(t, s.URL+"/p", cond...); r.status != http.StatusNotModified || r.header.Get("ETag") != `"v1"` {
			t.Errorf("hit with %q = %d (ETag %q); want 304 with the ETag", cond, r.status, r.header.Get("ETag"))
		}
	}
	if r := get(t, s.URL+"/p", `If-None-Match: "v0"`); r.status != 200 || r.body != "hello" {
		t.Errorf("hit with a non-matching If-None-Match = %d %q; want the full response", r.status, r.body)
	}
	head := do(t, http.MethodHead, s.URL+"/p")
	if head.status != 200 || head.body != "" || head.header.Get("Content-Length") != "5" || !strings.HasPrefix(head.cacheStatus(), "keyvalue; hit") {
		t.Errorf("HEAD = %d %q, Content-Length %q, %q; want the cached GET's header without a body", head.status, head.body, head.header.Get("Content-Length"), head.cacheStatus())
	}
	if n := s.calls.Load(); n != 1 {
		t.Errorf("the handler ran %d times; want 1", n)
	}
	if r := do(t, http.MethodPost, s.URL+"/p"); r.status != http.StatusNoContent || !strings.Contains(r.cacheStatus(), "fwd=method") {
		t.Errorf("POST = %d %q", r.status, r.cacheStatus())
	}
	if r := get(t, s.URL+"/p"); !strings.Contains(r.cacheStatus(), "fwd=uri-miss") {
		t.Errorf("GET after a successful POST = %q; want a miss (RFC 9111, section 4.4)", r.cacheStatus())
	}
	if r := do(t, http.MethodHead, s.URL+"/never-got"); r.status != 200 || !strings.Contains(r.cacheStatus(), "detail=head") {
		t.Errorf("HEAD on a miss = %d %q; want the handler's answer, not stored", r.status, r.cacheStatus())
	}
}

// TestKeyNormalisation: query parameter order and ignored parameters do
// not make new entries; the host and path do.
func TestKeyNormalisation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, cache.Options{})
	s := newSite(t, e.b, httpcache.Options{IgnoreParams: []string{"utm_*", "fbclid"}}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		fmt.Fprint(w, r.URL.RequestURI())
	})
	get(t, s.URL+"/k?a=1&b=2")
	for _, u := range []string{"/k?b=2&a=1", "/k?a=1&b=2&utm_source=x&utm_medium=y", "/k?fbclid=z&b=2&a=1"} {
		if r := get(t, s.URL+u); !strings.HasPrefix(r.cacheStatus(), "keyvalue; hit") {
			t.Errorf("%s = %q; want the entry of /k?a=1&b=2", u, r.cacheStatus())
		}
	}
	if r := get(t, s.URL+"/k?a=1&b=3"); strings.HasPrefix(r.cacheStatus(), "keyvalue; hit") {
		t.Errorf("/k?a=1&b=3 was a hit; want a miss")
	}
}
