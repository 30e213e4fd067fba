package httpcache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyvalue-go/keyvalue/cache"
	"github.com/keyvalue-go/keyvalue/internal/telemetry"
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
		status := forwarded("bypass", "misconfigured").header(name)
		return func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Cache-Status", status)
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
// invalidation window, see cache.Options.LocalCacheTTL), and a response
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

// request is one request through the middleware: what every step of
// serving it needs, and its outcome once decided.
type request struct {
	c       *Cache
	w       http.ResponseWriter // nil for a background refresh
	r       *http.Request
	next    http.Handler
	key     string  // the cache key
	id      string  // the entry looked up: the key's own, or a variant's
	primary bool    // id is the key's own entry, not a Vary variant's
	out     outcome // set by the step that answers the request
}

// serve handles one request and counts it by its outcome.
func (c *Cache) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	q := &request{c: c, w: w, r: r, next: next}
	q.route()
	c.tel.Add(r.Context(), "requests", 1, q.out.result())
}

// route handles the request.
func (q *request) route() {
	switch q.r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch:
		q.invalidating()
		return
	default:
		q.pass(forwarded("method", ""))
		return
	}
	q.key = q.c.key(q.r)
	q.id, q.primary = entryID(q.key), true
	for range 3 { // the key, then its variant; once more if a variant moved
		rec, err := q.lookup()
		if err != nil {
			q.bypass(err)
			return
		}
		collapsed := false
		if rec == nil {
			if q.r.Method == http.MethodHead {
				q.pass(forwarded("uri-miss", "head"))
				return
			}
			if rec = q.fill(); rec == nil {
				return // rendered (or passed) by fill
			}
			collapsed = true
		}
		switch rec.Kind {
		case kindPass:
			q.pass(forwarded("bypass", "hit-for-pass"))
			return
		case kindVary:
			if !q.primary {
				q.pass(forwarded("bypass", "nested-vary"))
				return
			}
			q.id, q.primary = variantID(q.key, rec, q.r), false
			continue
		}
		q.reuse(rec, collapsed)
		return
	}
	q.pass(forwarded("bypass", "vary-changing"))
}

// lookup reads the entry under q.id. A miss is (nil, nil); an entry that
// cannot be used (undecodable, another key's) counts as a miss.
func (q *request) lookup() (*record, error) {
	ctx, cancel := context.WithTimeout(q.r.Context(), q.c.opts.LookupTimeout)
	defer cancel()
	data, err := q.c.b.Get(ctx, q.id)
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
		// The server did not answer in time (in degraded mode the cache
		// reports that as a miss): do not wait for it again to fill.
		return nil, fmt.Errorf("httpcache: no answer from the cache within LookupTimeout (%s): %w", q.c.opts.LookupTimeout, ctx.Err())
	}
	if errors.Is(err, cache.ErrNotFound) || errors.Is(err, cache.ErrCorrupt) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	rec, err := decodeRecord(data, q.key)
	if err != nil {
		q.c.warn("httpcache: unusable entry; treating it as a miss", err)
		return nil, nil
	}
	return rec, nil
}

// reuse serves rec, a stored response (collapsed: one another request
// rendered while this one waited), when it is fresh or may be served
// stale; otherwise the response is rendered again.
func (q *request) reuse(rec *record, collapsed bool) {
	now := time.Now()
	f := rec.freshness()
	age := rec.currentAge(now)
	served := hit(f.fresh - age)
	served.collapsed = collapsed
	switch {
	case age < f.fresh:
		q.write(rec, age, served)
		return
	case !f.revalidate && age < f.fresh+f.swr:
		q.refreshInBackground()
		served.detail = "stale-while-revalidate"
		q.write(rec, age, served)
		return
	}
	if q.r.Method == http.MethodHead {
		q.pass(forwarded("stale", "head")) // only a GET renders for the cache
		return
	}
	// Stale: render again, one request across the fleet; the others wait
	// for its response. The stale one is the fallback for stale-if-error.
	var fallback *record
	if !f.revalidate && age < f.fresh+f.sie {
		fallback = rec
	}
	for range 3 {
		// Waiting lasts as long as another request's render (its lease is
		// renewed while it renders), or one lease after its process died.
		data, fill, err := q.c.b.Refill(q.r.Context(), q.id, q.c.opts.Lease)
		if err != nil {
			q.bypass(err)
			return
		}
		if fill != nil {
			q.render(fill, fallback, "stale")
			return
		}
		fresh, err := decodeRecord(data, q.key)
		var left time.Duration // how long fresh stays fresh
		if err == nil {
			left = fresh.freshness().fresh - fresh.currentAge(time.Now())
		}
		switch {
		case err == nil && fresh.Kind == kindResponse && left > 0:
			served := hit(left)
			served.collapsed = true
			q.write(fresh, fresh.freshness().fresh-left, served)
			return
		case err == nil && fresh.Kind != kindResponse:
			q.pass(forwarded("stale", "changed-kind"))
			return
		case fallback != nil:
			// The render waited for did not replace the stale response
			// (it failed, or was not storable): within stale-if-error,
			// serve the stale one rather than render once more.
			q.write(fallback, fallback.currentAge(time.Now()), outcome{hit: true, fwd: "stale", collapsed: true, detail: "stale-if-error"})
			return
		}
	}
	q.pass(forwarded("stale", "no-fresh-render"))
}

// fill handles a miss: it renders the response (one request across the
// fleet), or waits for the request rendering it and returns its record.
// nil means the response was written already.
func (q *request) fill() *record {
	// Waiting lasts as long as another request's render (its lease is
	// renewed while it renders), or one lease after its process died.
	data, fill, err := q.c.b.GetOrFill(q.r.Context(), q.id, q.c.opts.Lease)
	if err != nil {
		if q.r.Context().Err() == nil { // else the client left while waiting
			q.bypass(err)
		}
		return nil
	}
	if fill == nil {
		rec, err := decodeRecord(data, q.key)
		if err != nil {
			q.c.warn("httpcache: unusable entry; serving uncached", err)
			q.pass(forwarded("bypass", "unusable-entry"))
			return nil
		}
		return rec
	}
	fwd := "uri-miss"
	if !q.primary {
		fwd = "vary-miss"
	}
	q.render(fill, nil, fwd)
	return nil
}

// bypass sends the request to the handler because the cache failed (err,
// logged).
func (q *request) bypass(err error) {
	q.c.warn("httpcache: cache unavailable; serving uncached", err)
	q.pass(forwarded("bypass", "unavailable"))
}

// pass sends the request to the handler, uncached, with out in its
// Cache-Status.
func (q *request) pass(out outcome) {
	q.out = out
	q.w.Header().Set("Cache-Status", out.header(q.c.opts.Name))
	q.next.ServeHTTP(q.w, q.r)
}

// invalidating passes an unsafe request to the handler and, when it
// succeeds, invalidates the cached responses of its URL (RFC 9111,
// section 4.4), all variants included.
func (q *request) invalidating() {
	sw := &statusWriter{ResponseWriter: q.w}
	q.w = sw
	q.pass(forwarded("method", ""))
	if sw.status >= 400 { // 0: the handler wrote nothing, an implicit 200
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(q.r.Context()), q.c.opts.LookupTimeout)
	defer cancel()
	if _, err := q.c.b.Remove(ctx, entryID(q.c.key(q.r))); err != nil {
		q.c.warn("httpcache: could not invalidate the cached responses after an unsafe request", err)
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
func (q *request) write(rec *record, age time.Duration, out outcome) {
	q.out = out
	h := q.w.Header()
	copyHeader(h, rec.Header)
	h.Set("Age", strconv.FormatInt(int64(age/time.Second), 10))
	if q.c.opts.KeepTagHeader && len(rec.Tags) > 0 {
		h.Set(q.c.opts.TagHeader, strings.Join(rec.Tags, " "))
	}
	h.Set("Cache-Status", out.header(q.c.opts.Name))
	if rec.Status == http.StatusOK && notModified(q.r, rec.Header) {
		toNotModified(h)
		q.w.WriteHeader(http.StatusNotModified)
		return
	}
	if h.Get("Content-Length") == "" && rec.Status != http.StatusNoContent {
		// Known for a stored body, and what HEAD needs to answer.
		h.Set("Content-Length", strconv.Itoa(len(rec.Body)))
	}
	q.w.WriteHeader(rec.Status)
	if q.r.Method != http.MethodHead {
		_, _ = q.w.Write(rec.Body)
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
