// Command webapp is a small web application using all three building
// blocks on one shared connection:
//
//	GET  /login?user=42   creates a session (cookie "sid"), renewing it if one exists
//	GET  /page/7          page 7, through the HTTP cache middleware (tag pageId_7)
//	POST /publish/7       under the lock "publish-7": "publishes" page 7 and
//	                      purges every cached response tagged pageId_7
//	GET  /metrics         the library's OpenTelemetry metrics, through the
//	                      Prometheus exporter (cache hits, operation latency, ...)
//	GET  /ops/            keyvalue's operations page (package admin), for the
//	                      users named in ADMIN_USERS who are logged in
//
// Pages are rendered once across every process running this (the cache's
// computing lease), served stale for up to an hour while one process
// renders them again, and the cache turns into a pass-through (degraded
// mode) while the server is down; the Cache-Status response header says
// what happened to each request. It is its own Go module, so that the
// OpenTelemetry SDK and the Prometheus exporter stay out of the library's
// dependencies.
//
// Configure the server with KEYVALUE_URL (e.g. redis://127.0.0.1:6379) or
// any KEYVALUE_* variable; the session key comes from SESSION_KEY (32+ bytes),
// the users who may see the operations page from ADMIN_USERS (comma-separated).
//
//	cd examples/webapp && KEYVALUE_URL=redis://127.0.0.1:6379 SESSION_KEY=$(openssl rand -hex 32) ADMIN_USERS=ops go run .
//
// then open http://127.0.0.1:8080/login?user=ops and http://127.0.0.1:8080/ops/.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/admin"
	"github.com/keyvalue-go/keyvalue/cache"
	"github.com/keyvalue-go/keyvalue/httpcache"
	"github.com/keyvalue-go/keyvalue/lock"
	"github.com/keyvalue-go/keyvalue/session"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

type app struct {
	pages    *httpcache.Cache
	sessions *session.Store
	locks    *lock.Locker
}

func main() {
	var cfg keyvalue.Config
	if _, err := keyvalue.LoadEnv(os.Environ(), &cfg); err != nil {
		log.Fatal(err)
	}
	client, err := keyvalue.Open(cfg) // no I/O yet; the first request connects
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	admins := strings.Split(os.Getenv("ADMIN_USERS"), ",")
	handler, err := newHandler(client, []byte(os.Getenv("SESSION_KEY")), admins)
	if err != nil {
		log.Fatal(err) // says how long the session key must be
	}
	log.Println("listening on 127.0.0.1:8080")
	log.Fatal(http.ListenAndServe("127.0.0.1:8080", handler))
}

// newHandler wires the building blocks and their metrics on client; the
// users named in admins may see the operations page.
func newHandler(client *keyvalue.Client, sessionKey []byte, admins []string) (http.Handler, error) {
	// Metrics: the library records through the OpenTelemetry API; this
	// application picks the SDK and exports to Prometheus.
	registry := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(registry))
	if err != nil {
		return nil, err
	}
	meters := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))

	pages, err := cache.New(client, "pages", cache.Options{
		DefaultLifetime: 10 * time.Minute,
		Compression:     cache.CompressionZstd,
		Degraded:        true, // a dead server makes pages render uncached, not fail
		MeterProvider:   meters,
	})
	if err != nil {
		return nil, err
	}
	sessions, err := session.New(client, session.Options{Prefix: "web", Key: sessionKey, MeterProvider: meters})
	if err != nil {
		return nil, err
	}
	hc, err := httpcache.New(pages, httpcache.Options{MeterProvider: meters})
	if err != nil {
		return nil, err
	}
	a := &app{
		pages:    hc,
		sessions: sessions,
		locks:    lock.New(client, lock.Options{TTL: 30 * time.Second, MeterProvider: meters}),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", a.login)
	mux.Handle("GET /page/{id}", hc.Middleware(http.HandlerFunc(a.page)))
	mux.HandleFunc("POST /publish/{id}", a.publish)
	mux.Handle("GET /metrics", promhttp.HandlerFor(registry, promhttp.HandlerOpts{}))

	// The operations page, behind this application's own login: a request
	// is authorized when its session belongs to one of admins.
	ops, err := admin.New(admin.Options{
		Client:    client,
		Caches:    []*cache.Backend{pages},
		Sessions:  []*session.Store{sessions},
		Locks:     a.locks,
		Authorize: func(r *http.Request) bool { u := a.user(r); return u != "" && slices.Contains(admins, u) },
		Who:       a.user,
	})
	if err != nil {
		return nil, err
	}
	mux.Handle("/ops/", http.StripPrefix("/ops", ops))
	return mux, nil
}

// user is the logged-in user of r's session ("" for none).
func (a *app) user(r *http.Request) string {
	c, err := r.Cookie("sid")
	if err != nil {
		return ""
	}
	rec, err := a.sessions.Get(r.Context(), c.Value)
	if err != nil {
		return ""
	}
	return rec.UserID
}

func (a *app) login(w http.ResponseWriter, r *http.Request) {
	user := r.URL.Query().Get("user")
	id := ""
	if c, err := r.Cookie("sid"); err == nil {
		// Session fixation: an existing session moves to a new id on login.
		if newID, err := a.sessions.Renew(r.Context(), c.Value); err == nil {
			id = newID
			if _, err := a.sessions.Update(r.Context(), id, func(rec *session.Record) error { rec.UserID = user; return nil }); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
	}
	if id == "" {
		rec, err := a.sessions.Create(r.Context(), session.Record{UserID: user})
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		id = rec.ID
	}
	http.SetCookie(w, &http.Cookie{Name: "sid", Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	fmt.Fprintf(w, "logged in as %s\n", user)
}

// page renders a page; the cache middleware in front of it stores the
// response under the page's tag, serves it for 10 minutes, then stale for
// up to an hour while one process renders it again (or for a day while
// rendering fails).
func (a *app) page(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	w.Header().Set("Cache-Control", "max-age=600, stale-while-revalidate=3600, stale-if-error=86400")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	httpcache.Tag(r, "pageId_"+id)
	fmt.Fprint(w, render(id))
}

func (a *app) publish(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	mu, err := a.locks.Mutex("publish-" + id)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	lease, err := mu.Lock(ctx) // another publisher of this page makes us wait, without polling
	if errors.Is(err, context.DeadlineExceeded) {
		http.Error(w, "page is being published, try again", http.StatusConflict)
		return
	} else if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	defer func() {
		if err := lease.Unlock(context.WithoutCancel(ctx)); err != nil {
			log.Printf("publish %s: unlock: %v", id, err) // the lease ran out: the work above may have overlapped another holder
		}
	}()
	// A real application would write to its database here, passing
	// lease.Token() so the database can reject a stale publisher.
	n, err := a.pages.Purge(ctx, "pageId_"+id)
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintf(w, "published page %s (fencing token %d), flushed %d cached entries\n", id, lease.Token(), n)
}

func render(id string) string {
	return fmt.Sprintf("<html><body><h1>Page %s</h1><p>rendered %s</p></body></html>\n", id, time.Now().Format(time.RFC3339))
}
