package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/keyvalue-go/keyvalue/keyvaluetest"
)

// TestMetricsEndpoint runs the application against a real server, renders
// a page twice (a miss that computes, then a hit), logs in and publishes,
// then scrapes /metrics and checks the main series.
func TestMetricsEndpoint(t *testing.T) {
	client := keyvaluetest.Start(t).Client(t)
	handler, err := newHandler(client, []byte(strings.Repeat("k", 32)), nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(handler)
	defer srv.Close()
	get := func(method, path string, want int) string {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, body)
		}
		return string(body)
	}
	first := get("GET", "/page/7", 200)
	if again := get("GET", "/page/7", 200); again != first {
		t.Errorf("the second read was not served from the cache")
	}
	get("GET", "/login?user=42", 200)
	if out := get("POST", "/publish/7", 200); !strings.Contains(out, "flushed 1 cached entries") {
		t.Errorf("publish: %s", out)
	}
	metrics := get("GET", "/metrics", 200)
	for _, series := range []string{
		`keyvalue_cache_hits_total{keyvalue_cache_name="pages"`,
		`keyvalue_cache_misses_total{keyvalue_cache_name="pages"`,
		`keyvalue_cache_recomputes_total{keyvalue_cache_name="pages"`,
		`keyvalue_cache_operation_duration_seconds_bucket{keyvalue_cache_name="pages",keyvalue_operation="get_or_fill"`,
		`keyvalue_cache_operation_duration_seconds_count{keyvalue_cache_name="pages",keyvalue_operation="flush_by_tags"`,
		`keyvalue_session_created_total{keyvalue_session_prefix="web"`,
		`keyvalue_lock_operation_duration_seconds_count{keyvalue_operation="lock"`,
		`keyvalue_lock_operation_duration_seconds_count{keyvalue_operation="unlock"`,
		`keyvalue_httpcache_requests_total{keyvalue_cache_name="pages",keyvalue_httpcache_result="hit"`,
		`keyvalue_httpcache_requests_total{keyvalue_cache_name="pages",keyvalue_httpcache_result="miss"`,
		`keyvalue_httpcache_purged_total{keyvalue_cache_name="pages"`,
	} {
		if !strings.Contains(metrics, series) {
			t.Errorf("/metrics lacks %s", series)
		}
	}
	for _, line := range strings.Split(metrics, "\n") {
		if strings.HasPrefix(line, "keyvalue_cache_hits_total") || strings.HasPrefix(line, "keyvalue_cache_misses_total") {
			t.Log(line)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", metrics)
	}
}

// TestOperationsPageBehindLogin: the operations page is the admins'
// only: refused without a session and for other users, shown to an admin,
// and its actions refused when another site's page sends them.
func TestOperationsPageBehindLogin(t *testing.T) {
	client := keyvaluetest.Start(t).Client(t)
	handler, err := newHandler(client, []byte(strings.Repeat("k", 32)), []string{"ops"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(handler)
	defer srv.Close()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Jar: jar}
	do := func(method, path string, form url.Values, hdr map[string]string) (int, string) {
		t.Helper()
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, err := http.NewRequest(method, srv.URL+path, body)
		if err != nil {
			t.Fatal(err)
		}
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := do("GET", "/ops/", nil, nil); code != http.StatusForbidden {
		t.Errorf("/ops/ without a session: %d, want 403", code)
	}
	do("GET", "/login?user=42", nil, nil)
	if code, _ := do("GET", "/ops/caches/pages", nil, nil); code != http.StatusForbidden {
		t.Errorf("/ops/ as user 42: %d, want 403", code)
	}
	do("GET", "/login?user=ops", nil, nil)
	do("GET", "/page/7", nil, nil)
	code, body := do("GET", "/ops/caches/pages?tag=pageId_7", nil, nil)
	if code != http.StatusOK || !strings.Contains(body, `<strong id="tag-members">1</strong>`) || !strings.Contains(body, `href="/ops/sessions/web"`) {
		t.Fatalf("/ops/ as the admin: %d\n%s", code, body)
	}
	form := url.Values{"tags": {"pageId_7"}, "confirm": {"yes"}}
	if code, _ := do("POST", "/ops/caches/pages/flush-tags", form, map[string]string{"Origin": "https://elsewhere.example"}); code != http.StatusForbidden {
		t.Errorf("cross-origin flush: %d, want 403", code)
	}
	if code, body := do("POST", "/ops/caches/pages/flush-tags", form, map[string]string{"Origin": srv.URL}); code != http.StatusOK || !strings.Contains(body, "Flushed 1 entries") {
		t.Errorf("flush from the page: %d\n%s", code, body)
	}
}
