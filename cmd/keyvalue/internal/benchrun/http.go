package benchrun

import (
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/keyvalue-go/keyvalue/cache"
	"github.com/keyvalue-go/keyvalue/httpcache"
	"github.com/valkey-io/valkey-go"
)

// The bench's page: the handler reads one record of 100 items from the
// server (its database) and renders them with html/template, about 12 KB
// of HTML, tagged with its page and "bench-all".
var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html><html><head><title>{{.Title}}</title></head><body><h1>{{.Title}}</h1><ul>
{{range .Items}}<li><a href="/item/{{.ID}}">{{.Name}}</a> <span class="price">{{.Price}}</span></li>
{{end}}</ul></body></html>`))

type pageData struct {
	Title string
	Items []struct {
		ID    int     `json:"id"`
		Name  string  `json:"name"`
		Price float64 `json:"price"`
	}
}

// pageSite is the handler (counting its renders) and its data.
type pageSite struct {
	c       valkey.Client
	key     string // the page data's key
	renders atomic.Int64
}

func newPageSite(ctx context.Context, c valkey.Client, prefix string) (*pageSite, error) {
	var d pageData
	d.Title = "Bench page"
	for i := range 100 {
		d.Items = append(d.Items, struct {
			ID    int     `json:"id"`
			Name  string  `json:"name"`
			Price float64 `json:"price"`
		}{i, "Item number " + strconv.Itoa(i) + " with a longer name", float64(i) * 1.25})
	}
	raw, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	s := &pageSite{c: c, key: prefix + "page-data"}
	return s, c.Do(ctx, c.B().Set().Key(s.key).Value(string(raw)).Ex(time.Hour).Build()).Error()
}

func (s *pageSite) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.renders.Add(1)
	raw, err := s.c.Do(r.Context(), s.c.B().Get().Key(s.key).Build()).AsBytes()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	var d pageData
	if err := json.Unmarshal(raw, &d); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Cache-Control", "max-age=3600")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Surrogate-Key", "bench-all page_"+strings.TrimPrefix(r.URL.Path, "/page/"))
	if err := pageTemplate.Execute(w, d); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

// serve sends one GET through h and checks its status.
func serve(ctx context.Context, h http.Handler, path string) (*httptest.ResponseRecorder, error) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequestWithContext(ctx, http.MethodGet, "http://bench.test"+path, nil))
	if rec.Code != http.StatusOK {
		return rec, fmt.Errorf("GET %s: %d %s", path, rec.Code, rec.Body.String())
	}
	return rec, nil
}

// pageCache opens a page site, and with kv a Cache in front of it.
func pageCache(ctx context.Context, env *Env, kv bool, scenario string) (*pageSite, http.Handler, *httpcache.Cache, func(), error) {
	c, prefix, done, err := rawClient(env, scenario)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	site, err := newPageSite(ctx, c, prefix)
	if err != nil || !kv {
		return site, site, nil, done, err
	}
	b, err := cache.New(c, env.name(strings.ReplaceAll(scenario, "/", "-"), strconv.FormatInt(time.Now().UnixNano(), 36)), cache.Options{Logger: quiet})
	if err != nil {
		done()
		return nil, nil, nil, nil, err
	}
	hc, err := httpcache.New(b, httpcache.Options{Logger: quiet})
	if err != nil {
		done()
		return nil, nil, nil, nil, err
	}
	return site, hc.Middleware(site), hc, func() { _, _ = b.Flush(context.Background(), nil); done() }, nil
}

// pageHit times requests for one page: through the middleware (all hits
// after the first) or straight to the handler (baseline). Value is the
// p50 in µs, Extra["p99"] the 99th percentile.
func pageHit(kv bool) Impl {
	return func(ctx context.Context, env *Env) (Measure, error) {
		site, h, _, done, err := pageCache(ctx, env, kv, "http-hit")
		if err != nil {
			return Measure{}, err
		}
		defer done()
		if _, err := serve(ctx, h, "/page/1"); err != nil { // the miss that stores it
			return Measure{}, err
		}
		n := max(env.sizes().getOps/20, 10)
		lat := make([]time.Duration, n)
		for i := range n {
			start := time.Now()
			if _, err := serve(ctx, h, "/page/1"); err != nil {
				return Measure{}, err
			}
			lat[i] = time.Since(start)
		}
		if kv && site.renders.Load() != 1 {
			return Measure{}, fmt.Errorf("http/page-hit: %d renders; want 1 (every request after the first a hit)", site.renders.Load())
		}
		return percentiles(lat), nil
	}
}

// pageHitLimit: one GET of a value the size of the stored page, p50 (p99).
func pageHitLimit(ctx context.Context, env *Env) (Measure, error) {
	c, prefix, done, err := rawClient(env, "http-hit")
	if err != nil {
		return Measure{}, err
	}
	defer done()
	site, err := newPageSite(ctx, c, prefix)
	if err != nil {
		return Measure{}, err
	}
	rec, err := serve(ctx, site, "/page/1")
	if err != nil {
		return Measure{}, err
	}
	key := prefix + "stored-page"
	if err := c.Do(ctx, c.B().Set().Key(key).Value(strings.Repeat("x", rec.Body.Len()+300)).Ex(time.Hour).Build()).Error(); err != nil {
		return Measure{}, err
	}
	n := max(env.sizes().getOps/20, 10)
	lat := make([]time.Duration, n)
	for i := range n {
		start := time.Now()
		if err := c.Do(ctx, c.B().Get().Key(key).Build()).Error(); err != nil {
			return Measure{}, err
		}
		lat[i] = time.Since(start)
	}
	return percentiles(lat), nil
}

// purge100 stores 100 pages tagged bench-all and times Purge of that tag;
// it checks that every page then misses (renders again).
func purge100(ctx context.Context, env *Env) (Measure, error) {
	site, h, hc, done, err := pageCache(ctx, env, true, "http-purge")
	if err != nil {
		return Measure{}, err
	}
	defer done()
	pages := env.n(100)
	for i := range pages {
		if _, err := serve(ctx, h, "/page/"+strconv.Itoa(i)); err != nil {
			return Measure{}, err
		}
	}
	start := time.Now()
	n, err := hc.Purge(ctx, "bench-all")
	took := time.Since(start)
	if err != nil {
		return Measure{}, err
	}
	if n != pages {
		return Measure{}, fmt.Errorf("http/purge-100: purged %d entries; want %d", n, pages)
	}
	before := site.renders.Load()
	for i := range pages {
		if _, err := serve(ctx, h, "/page/"+strconv.Itoa(i)); err != nil {
			return Measure{}, err
		}
	}
	if got := site.renders.Load() - before; got != int64(pages) {
		return Measure{}, fmt.Errorf("http/purge-100: %d of %d pages rendered again after the purge; want all", got, pages)
	}
	return Measure{Value: per(took, 1, "ms")}, nil
}

// purgeLimit: one UNLINK of 100 keys of the stored pages' size.
func purgeLimit(ctx context.Context, env *Env) (Measure, error) {
	c, prefix, done, err := rawClient(env, "http-purge")
	if err != nil {
		return Measure{}, err
	}
	defer done()
	keys, err := setKeys(ctx, c, prefix, env.n(100), strings.Repeat("x", 12000))
	if err != nil {
		return Measure{}, err
	}
	start := time.Now()
	if err := c.Do(ctx, c.B().Unlink().Key(keys...).Build()).Error(); err != nil {
		return Measure{}, err
	}
	return Measure{Value: per(time.Since(start), 1, "ms")}, nil
}

// percentiles is the p50 in Value and the p99 in Extra, in µs.
func percentiles(lat []time.Duration) Measure {
	slices.Sort(lat)
	p := func(q float64) float64 { return per(lat[min(len(lat)-1, int(q*float64(len(lat))))], 1, "µs") }
	return Measure{Value: p(0.5), Extra: map[string]float64{"p99": p(0.99)}}
}
