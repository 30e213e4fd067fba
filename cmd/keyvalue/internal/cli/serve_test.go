package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/cache"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/kvtest"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/servertest"
	"github.com/keyvalue-go/keyvalue/session"
)

// startServe runs keyvalue serve with args until the test ends and
// returns the page's base URL and its output.
func startServe(t *testing.T, args ...string) (string, *kvtest.Output) {
	t.Helper()
	out := &kvtest.Output{}
	ctx, cancel := context.WithCancel(t.Context())
	cmd := NewRootCmd()
	cmd.SetArgs(append([]string{"serve", "--listen", "127.0.0.1:0"}, args...))
	cmd.SetOut(out)
	cmd.SetErr(out)
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("serve did not stop within 15s of its context ending")
		}
		t.Logf("keyvalue serve output:\n%s", out)
	})
	addr := regexp.MustCompile(`http://(127\.0\.0\.1:\d+)/`)
	var base string
	servertest.WaitFor(t, 10*time.Second, "serve to listen", func() error {
		select {
		case err := <-done:
			t.Fatalf("serve ended: %v\n%s", err, out)
		default:
		}
		m := addr.FindStringSubmatch(out.String())
		if m == nil {
			return errors.New("no address printed yet")
		}
		base = "http://" + m[1]
		return nil
	})
	return base, out
}

func fetch(t *testing.T, method, u string, form url.Values, auth func(*http.Request)) (int, string, http.Header) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(t.Context(), method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if auth != nil {
		auth(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestServe(t *testing.T) {
	t.Parallel()
	s := servertest.Standalone(t)
	c := kvtest.Open(t, keyvalue.Config{Addrs: []string{s.Addr()}})
	pages, err := cache.New(c, "pages", cache.Options{Logger: kvtest.Quiet})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b", "c"} {
		if err := pages.Set(t.Context(), id, []byte(id), []string{"news", "tag-" + id}, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	keyFile, tokenFile := filepath.Join(dir, "session.key"), filepath.Join(dir, "token")
	const token = "0123456789abcdef0123456789abcdef"
	if err := os.WriteFile(keyFile, bytes.Repeat([]byte("k"), 32), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := session.New(c, session.Options{Prefix: "web", KeyFile: keyFile, Logger: kvtest.Quiet})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := st.Create(t.Context(), session.Record{UserID: "ann"})
	if err != nil {
		t.Fatal(err)
	}

	base, out := startServe(t, "--url", "redis://"+s.Addr(), "--token-file", tokenFile, "--cache", "pages", "--sessions", "web="+keyFile, "--locks")
	bearer := func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }
	basic := func(r *http.Request) { r.SetBasicAuth("oncall", token) }

	// Without the token: 401 and a Basic challenge, so a browser asks.
	for _, auth := range []func(*http.Request){nil, func(r *http.Request) { r.SetBasicAuth("oncall", "guess") }, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token[:31]) }} {
		code, _, hdr := fetch(t, "GET", base+"/caches/pages", nil, auth)
		if code != http.StatusUnauthorized || hdr.Get("WWW-Authenticate") != `Basic realm="keyvalue"` {
			t.Errorf("without the token: %d %v", code, hdr)
		}
	}
	for _, auth := range []func(*http.Request){bearer, basic} {
		code, body, _ := fetch(t, "GET", base+"/caches/pages?tag=news", nil, auth)
		if code != http.StatusOK || !strings.Contains(body, `<strong id="tag-members">3</strong>`) {
			t.Errorf("cache page with the token: %d\n%s", code, body)
		}
	}
	if code, body, _ := fetch(t, "GET", base+"/sessions/web", nil, bearer); code != http.StatusOK || !strings.Contains(body, `<strong id="session-count">1</strong>`) || strings.Contains(body, rec.ID) {
		t.Errorf("sessions page: %d\n%s", code, body)
	}
	if code, _, _ := fetch(t, "GET", base+"/locks", nil, bearer); code != http.StatusOK {
		t.Errorf("locks page: %d", code)
	}
	// An action, from the page's origin as a browser sends it, logged
	// with who did it.
	code, body, _ := fetch(t, "POST", base+"/caches/pages/flush-tags", url.Values{"tags": {"tag-a"}, "confirm": {"yes"}}, func(r *http.Request) {
		basic(r)
		r.Header.Set("Origin", base)
	})
	if code != http.StatusOK || !strings.Contains(body, "Flushed 1 entries") {
		t.Errorf("flush-tags: %d\n%s", code, body)
	}
	if _, err := pages.Get(t.Context(), "a"); !errors.Is(err, cache.ErrNotFound) {
		t.Errorf("a after flushing tag-a: %v", err)
	}
	if _, err := pages.Get(t.Context(), "b"); err != nil {
		t.Errorf("b after flushing tag-a: %v", err)
	}
	servertest.WaitFor(t, 5*time.Second, "the action in the log", func() error {
		if l := out.String(); !strings.Contains(l, `msg="keyvalue admin: flush by tags"`) || !strings.Contains(l, `who="oncall (token)"`) || !strings.Contains(l, "removed=1") {
			return errors.New("not logged")
		}
		return nil
	})
	if strings.Contains(out.String(), token) {
		t.Error("the output shows the token")
	}
}

func TestServeRefusesWithoutToken(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	short := filepath.Join(dir, "short")
	if err := os.WriteFile(short, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "no --token-file: every request must present a token; create one (openssl rand -hex 32 > FILE) and pass --token-file FILE, or serve on a loopback --listen address with --insecure-local"},
		{[]string{"--listen", "0.0.0.0:0", "--insecure-local"}, "--insecure-local serves without a token, so only on a loopback address; --listen 0.0.0.0:0 is not one: use --token-file"},
		{[]string{"--token-file", short}, "the token must be one line of at least 32 characters without spaces (openssl rand -hex 32 makes one)"},
		{[]string{"--token-file", filepath.Join(dir, "missing")}, "--token-file: open " + filepath.Join(dir, "missing")},
		{[]string{"--insecure-local", "--sessions", "web"}, `--sessions "web": use PREFIX=KEY_FILE`},
	} {
		_, err := run(t, append([]string{"serve", "--url", "redis://127.0.0.1:1"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("serve %v = %v; want %q", tc.args, err, tc.want)
		}
	}
}

func TestServeInsecureLocal(t *testing.T) {
	t.Parallel()
	s := servertest.Standalone(t)
	base, _ := startServe(t, "--url", "redis://"+s.Addr(), "--insecure-local", "--read-only", "--cache", "pages")
	code, body, _ := fetch(t, "GET", base+"/", nil, nil)
	if code != http.StatusOK || !strings.Contains(body, "read-only") || !strings.Contains(body, "Cache pages") {
		t.Errorf("insecure-local page: %d\n%s", code, body)
	}
	if code, _, _ := fetch(t, "POST", base+"/caches/pages/gc", url.Values{}, func(r *http.Request) { r.Header.Set("Origin", base) }); code != http.StatusForbidden {
		t.Errorf("read-only POST: %d", code)
	}
}
