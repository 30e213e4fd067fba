package httpcache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyvalue-go/keyvalue/cache"
	"github.com/keyvalue-go/keyvalue/internal/telemetry"
	"go.opentelemetry.io/otel/attribute"
)

// Cache is an HTTP response cache on a tag-aware cache backend. Build it
// with New; it is safe for concurrent use.
type Cache struct {
	b    *cache.Backend
	opts Options
	tel  *telemetry.Recorder

	refreshing sync.Map // ids being refreshed in the background by this process
	lastWarn   atomic.Int64
}

// New returns a response cache storing in b (give it a cache of its own,
// e.g. cache.New(client, "pages", ...): its Compression, Degraded and
// local read cache settings apply). It returns an error matching
// ErrInvalidOptions for options it cannot use.
func New(b *cache.Backend, opts Options) (*Cache, error) {
	if b == nil {
		return nil, fmt.Errorf("%w: no cache backend (create one with cache.New)", ErrInvalidOptions)
	}
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	tel := telemetry.New("httpcache", "keyvalue.cache.name", b.Name(), o.MeterProvider, o.TracerProvider, map[string]string{
		"requests": "Requests through the middleware, by keyvalue.httpcache.result: hit, stale, stale_if_error, collapsed, miss, pass, method, unavailable.",
		"purged":   "Cached responses removed by Purge.",
	})
	return &Cache{b: b, opts: o, tel: tel}, nil
}

// Middleware returns a middleware caching the responses of the handlers
// it wraps in b; see the package doc for the rules. It works with
// net/http and with every router that takes func(http.Handler)
// http.Handler middleware (chi, gorilla/mux, echo's and gin's adapters).
//
// Options it cannot use (see New) are logged, and the middleware then
// passes every request to the handler uncached (Cache-Status detail
// "misconfigured"); use New to get the error instead.
func Middleware(b *cache.Backend, opts Options) func(http.Handler) http.Handler {
	c, err := New(b, opts)
	if err != nil {
		logger := opts.Logger
		if logger == nil {
			logger = slog.Default()
		}
		logger.Error("httpcache: the middleware caches nothing", "error", err)
		name := opts.Name
		if name == "" {
			name = DefaultName
		}
		return func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Cache-Status", name+"; fwd=bypass; detail=misconfigured")
				next.ServeHTTP(w, r)
			})
		}
	}
	return c.Middleware
}

// Middleware wraps next with the cache.
func (c *Cache) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { c.serve(w, r, next) })
}

// Backend returns the cache backend responses are stored in.
func (c *Cache) Backend() *cache.Backend { return c.b }

// Purge removes every cached response tagged with any of tags and returns
// how many entries it removed. When it returns, no process serves those
// responses any more (processes with a local read cache: within its
// invalidation window, see cache.Options.LocalCache), and a response
// whose render began before Purge is not stored after it.
func (c *Cache) Purge(ctx context.Context, tags ...string) (int, error) {
	if len(tags) == 0 {
		return 0, errors.New("httpcache: Purge needs at least one tag")
	}
	ctx, sp := c.tel.Start(ctx, "purge")
	n, err := c.b.FlushByTags(ctx, tags...)
	sp.End(ctx, err)
	c.tel.Add(ctx, "purged", int64(n))
	if err != nil {
		return n, fmt.Errorf("httpcache: purge %q: %w", tags, err)
	}
	return n, nil
}

// tagsKey is the request context key of the tags Tag adds.
type tagsKey struct{}

type tagSet struct {
	mu   sync.Mutex
	tags []string
}

// Tag tags the response to r with surrogate keys, as the TagHeader
// response header does: Purge with any of them removes it. Call it from a
// handler wrapped by the middleware, before the response is written; it
// does nothing elsewhere. Tags may not contain whitespace or control
// characters (at most 250 bytes each, see the cache package).
func Tag(r *http.Request, tags ...string) {
	if s, ok := r.Context().Value(tagsKey{}).(*tagSet); ok {
		s.mu.Lock()
		s.tags = append(s.tags, tags...)
		s.mu.Unlock()
	}
}

// serve handles one request and counts it by its Cache-Status.
func (c *Cache) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	defer func() { c.tel.Add(r.Context(), "requests", 1, resultAttr(w.Header().Get("Cache-Status"))) }()
	c.route(w, r, next)
}

// The values of keyvalue.httpcache.result, built once.
var results = func() map[string]attribute.KeyValue {
	m := map[string]attribute.KeyValue{}
	for _, r := range []string{"hit", "stale", "stale_if_error", "collapsed", "miss", "pass", "method", "unavailable"} {
		m[r] = attribute.String("keyvalue.httpcache.result", r)
	}
	return m
}()

// resultAttr classifies a response by its Cache-Status value.
func resultAttr(status string) attribute.KeyValue {
	_, params, _ := strings.Cut(status, "; ")
	switch {
	case strings.Contains(params, "detail=unavailable"):
		return results["unavailable"]
	case strings.Contains(params, "detail=stale-if-error"):
		return results["stale_if_error"]
	case strings.Contains(params, "detail=stale-while-revalidate"):
		return results["stale"]
	case strings.HasPrefix(params, "hit") && strings.Contains(params, "collapsed"):
		return results["collapsed"]
	case strings.HasPrefix(params, "hit"):
		return results["hit"]
	case strings.HasPrefix(params, "fwd=method"):
		return results["method"]
	case strings.Contains(params, "fwd-status="):
		return results["miss"] // rendered (stored or not)
	}
	return results["pass"]
}

// route handles one request.
func (c *Cache) route(w http.ResponseWriter, r *http.Request, next http.Handler) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch:
		c.invalidating(w, r, next)
		return
	default:
		c.pass(w, r, next, "fwd=method")
		return
	}
	key := c.key(r)
	id, primary := entryID(key), true
	for range 3 { // the key, then its variant; once more if a variant moved
		rec, err := c.lookup(r.Context(), id, key)
		if err != nil {
			c.bypass(w, r, next, err)
			return
		}
		how := "hit"
		if rec == nil {
			if r.Method == http.MethodHead {
				c.pass(w, r, next, "fwd=uri-miss; detail=head")
				return
			}
			if rec = c.fill(w, r, next, key, id, primary); rec == nil {
				return // rendered (or passed) by fill
			}
			how = "hit; collapsed"
		}
		switch rec.Kind {
		case kindPass:
			c.pass(w, r, next, "fwd=bypass; detail=hit-for-pass")
			return
		case kindVary:
			if !primary {
				c.pass(w, r, next, "fwd=bypass; detail=nested-vary")
				return
			}
			id, primary = variantID(key, rec, r), false
			continue
		}
		c.reuse(w, r, next, key, id, primary, rec, how)
		return
	}
	c.pass(w, r, next, "fwd=bypass; detail=vary-changing")
}

// lookup reads the entry under id. A miss is (nil, nil); an entry that
// cannot be used (undecodable, another key's) counts as a miss.
func (c *Cache) lookup(ctx context.Context, id, key string) (*record, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.LookupTimeout)
	defer cancel()
	data, err := c.b.Get(ctx, id)
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
		// The server did not answer in time (in degraded mode the cache
		// reports that as a miss): do not wait for it again to fill.
		return nil, fmt.Errorf("httpcache: no answer from the cache within LookupTimeout (%s): %w", c.opts.LookupTimeout, ctx.Err())
	}
	if errors.Is(err, cache.ErrNotFound) || errors.Is(err, cache.ErrCorrupt) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	rec, err := decodeRecord(data, key)
	if err != nil {
		c.warn("httpcache: unusable entry; treating it as a miss", err)
		return nil, nil
	}
	return rec, nil
}

// reuse serves rec, a stored response, when it is fresh or may be served
// stale; otherwise the response is rendered again.
func (c *Cache) reuse(w http.ResponseWriter, r *http.Request, next http.Handler, key, id string, primary bool, rec *record, how string) {
	now := time.Now()
	f := rec.freshness()
	age := rec.currentAge(now)
	switch {
	case age < f.fresh:
		c.write(w, r, rec, age, how+"; ttl="+ttl(f.fresh-age))
		return
	case !f.revalidate && age < f.fresh+f.swr:
		c.refreshInBackground(r, next, key, id, primary)
		c.write(w, r, rec, age, how+"; ttl="+ttl(f.fresh-age)+"; detail=stale-while-revalidate")
		return
	}
	if r.Method == http.MethodHead {
		c.pass(w, r, next, "fwd=stale; detail=head") // only a GET renders for the cache
		return
	}
	// Stale: render again, one request across the fleet; the others wait
	// for its response. The stale one is the fallback for stale-if-error.
	var fallback *record
	if !f.revalidate && age < f.fresh+f.sie {
		fallback = rec
	}
	for range 3 {
		ctx, cancel := context.WithTimeout(r.Context(), c.lease()+c.opts.LookupTimeout)
		data, fill, err := c.b.Refill(ctx, id, c.opts.Lease)
		cancel()
		if err != nil {
			c.bypass(w, r, next, err)
			return
		}
		if fill != nil {
			c.render(w, r, next, key, id, primary, fill, fallback, "fwd=stale")
			return
		}
		fresh, err := decodeRecord(data, key)
		var left time.Duration // how long fresh stays fresh
		if err == nil {
			left = fresh.freshness().fresh - fresh.currentAge(time.Now())
		}
		switch {
		case err == nil && fresh.Kind == kindResponse && left > 0:
			c.write(w, r, fresh, fresh.freshness().fresh-left, "hit; collapsed; ttl="+ttl(left))
			return
		case err == nil && fresh.Kind != kindResponse:
			c.pass(w, r, next, "fwd=stale; detail=changed-kind")
			return
		case fallback != nil:
			// The render waited for did not replace the stale response
			// (it failed, or was not storable): within stale-if-error,
			// serve the stale one rather than render once more.
			c.write(w, r, fallback, fallback.currentAge(time.Now()), "hit; fwd=stale; collapsed; detail=stale-if-error")
			return
		}
	}
	c.pass(w, r, next, "fwd=stale; detail=no-fresh-render")
}

// fill handles a miss: it renders the response (one request across the
// fleet), or waits for the request rendering it and returns its record.
// nil means the response was written already.
func (c *Cache) fill(w http.ResponseWriter, r *http.Request, next http.Handler, key, id string, primary bool) *record {
	// Bounded: a server that stops answering now costs at most the lease.
	ctx, cancel := context.WithTimeout(r.Context(), c.lease()+c.opts.LookupTimeout)
	defer cancel()
	data, fill, err := c.b.GetOrFill(ctx, id, c.opts.Lease)
	if err != nil {
		if r.Context().Err() == nil { // else the client left while waiting
			c.bypass(w, r, next, err)
		}
		return nil
	}
	if fill == nil {
		rec, err := decodeRecord(data, key)
		if err != nil {
			c.warn("httpcache: unusable entry; serving uncached", err)
			c.pass(w, r, next, "fwd=bypass; detail=unusable-entry")
			return nil
		}
		return rec
	}
	fwd := "fwd=uri-miss"
	if !primary {
		fwd = "fwd=vary-miss"
	}
	c.render(w, r, next, key, id, primary, fill, nil, fwd)
	return nil
}

// bypass sends r to the handler because the cache failed (err, logged).
func (c *Cache) bypass(w http.ResponseWriter, r *http.Request, next http.Handler, err error) {
	c.warn("httpcache: cache unavailable; serving uncached", err)
	c.pass(w, r, next, "fwd=bypass; detail=unavailable")
}

// pass sends r to the handler, uncached, with a Cache-Status saying why.
func (c *Cache) pass(w http.ResponseWriter, r *http.Request, next http.Handler, status string) {
	w.Header().Set("Cache-Status", c.opts.Name+"; "+status)
	next.ServeHTTP(w, r)
}

// invalidating passes an unsafe request to the handler and, when it
// succeeds, invalidates the cached responses of its URL (RFC 9111,
// section 4.4), all variants included.
func (c *Cache) invalidating(w http.ResponseWriter, r *http.Request, next http.Handler) {
	sw := &statusWriter{ResponseWriter: w}
	c.pass(sw, r, next, "fwd=method")
	if sw.status >= 400 { // 0: the handler wrote nothing, an implicit 200
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), c.opts.LookupTimeout)
	defer cancel()
	if _, err := c.b.Remove(ctx, entryID(c.key(r))); err != nil {
		c.warn("httpcache: could not invalidate the cached responses after an unsafe request", err)
	}
}

// statusWriter records the status of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 && code >= 200 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(p []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// write serves a stored response to the client.
func (c *Cache) write(w http.ResponseWriter, r *http.Request, rec *record, age time.Duration, status string) {
	h := w.Header()
	copyHeader(h, rec.Header)
	h.Set("Age", strconv.FormatInt(int64(age/time.Second), 10))
	if c.opts.KeepTagHeader && len(rec.Tags) > 0 {
		h.Set(c.opts.TagHeader, strings.Join(rec.Tags, " "))
	}
	h.Set("Cache-Status", c.opts.Name+"; "+status)
	if rec.Status == http.StatusOK && notModified(r, rec.Header) {
		toNotModified(h)
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if h.Get("Content-Length") == "" && rec.Status != http.StatusNoContent {
		// Known for a stored body, and what HEAD needs to answer.
		h.Set("Content-Length", strconv.Itoa(len(rec.Body)))
	}
	w.WriteHeader(rec.Status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(rec.Body)
	}
}

// warn logs a cache problem, at most once per 10 seconds.
func (c *Cache) warn(msg string, err error) {
	now := time.Now().UnixNano()
	last := c.lastWarn.Load()
	if now-last < int64(10*time.Second) || !c.lastWarn.CompareAndSwap(last, now) {
		return
	}
	c.opts.Logger.Warn(msg, "cache", c.b.Name(), "error", err)
}

// lease is Options.Lease or its default.
func (c *Cache) lease() time.Duration {
	if c.opts.Lease > 0 {
		return c.opts.Lease
	}
	return cache.DefaultLease
}

// ttl formats a response's remaining freshness for Cache-Status, in whole
// seconds, negative once it is stale.
func ttl(left time.Duration) string {
	return strconv.FormatInt(int64(math.Floor(left.Seconds())), 10)
}
