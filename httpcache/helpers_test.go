package httpcache_test

import (
	"io"
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
	"github.com/valkey-io/valkey-go"
)

// env is one server, a client on it and a cache backend for pages.
type env struct {
	srv    *servertest.Server
	client *keyvalue.Client
	b      *cache.Backend
}

func newEnv(t *testing.T, opts cache.Options) *env {
	t.Helper()
	s := servertest.Standalone(t)
	c := kvtest.Open(t, keyvalue.Config{Addrs: []string{s.Addr()}})
	return &env{srv: s, client: c, b: newBackend(t, c, opts)}
}

func newBackend(t *testing.T, c valkey.Client, opts cache.Options) *cache.Backend {
	t.Helper()
	opts.Logger = kvtest.Quiet
	b, err := cache.New(c, "pages", opts)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// site serves h through a Cache with opts; the handler counts its calls.
type site struct {
	*httptest.Server
	c     *httpcache.Cache
	calls atomic.Int64
}

func newSite(t *testing.T, b *cache.Backend, opts httpcache.Options, h http.HandlerFunc) *site {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = kvtest.Quiet
	}
	c, err := httpcache.New(b, opts)
	if err != nil {
		t.Fatal(err)
	}
	s := &site{c: c}
	s.Server = httptest.NewServer(c.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.calls.Add(1)
		h(w, r)
	})))
	t.Cleanup(s.Close)
	return s
}

// response is what a client got.
type response struct {
	status int
	header http.Header
	body   string
}

func (r response) cacheStatus() string { return r.header.Get("Cache-Status") }

// do sends a request with header lines "Name: value" and reads it all.
func do(t *testing.T, method, url string, header ...string) response {
	t.Helper()
	req, err := http.NewRequestWithContext(kvtest.Ctx(t, 20*time.Second), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range header {
		name, value, _ := strings.Cut(h, ":")
		if name == "Host" {
			req.Host = strings.TrimSpace(value) // as behind a load balancer
			continue
		}
		req.Header.Add(name, strings.TrimSpace(value))
	}
	res, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{res.StatusCode, res.Header, string(body)}
}

// noRedirects returns redirects as they are.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func get(t *testing.T, url string, header ...string) response {
	t.Helper()
	return do(t, http.MethodGet, url, header...)
}

// gate holds handlers until it is opened.
type gate struct {
	once    sync.Once
	ch      chan struct{}
	entered chan struct{}
}

func newGate() *gate { return &gate{ch: make(chan struct{}), entered: make(chan struct{}, 100)} }

func (g *gate) wait(t *testing.T) {
	g.entered <- struct{}{}
	select {
	case <-g.ch:
	case <-time.After(20 * time.Second):
		t.Error("gate never opened")
	}
}

func (g *gate) open() { g.once.Do(func() { close(g.ch) }) }

func (g *gate) awaitEntered(t *testing.T) {
	t.Helper()
	select {
	case <-g.entered:
	case <-time.After(20 * time.Second):
		t.Fatal("the handler was never called")
	}
}
