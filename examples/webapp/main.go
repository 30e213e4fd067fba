// Command webapp is a small web application using all three building
// blocks on one shared connection:
//
//	GET  /login?user=42   creates a session (cookie "sid"), renewing it if one exists
//	GET  /page/7          renders page 7 through the tag-aware cache (tag pageId_7)
//	POST /publish/7       under the lock "publish-7": "publishes" page 7 and
//	                      flushes every cached entry tagged pageId_7
//
// Configure the server with KEYVALUE_URL (e.g. redis://127.0.0.1:6379) or
// any KEYVALUE_* variable; the session key comes from SESSION_KEY (32+ bytes).
//
//	KEYVALUE_URL=redis://127.0.0.1:6379 SESSION_KEY=$(openssl rand -hex 32) go run ./examples/webapp
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/cache"
	"github.com/keyvalue-go/keyvalue/lock"
	"github.com/keyvalue-go/keyvalue/session"
)

type app struct {
	pages    *cache.Typed[string]
	sessions *session.Store
	locks    *lock.Locker
}

func main() {
	cfg, _, err := keyvalue.ConfigFromEnv()
	if err != nil {
		log.Fatal(err)
	}
	client, err := keyvalue.Open(cfg) // no I/O yet; the first request connects
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	pages, err := cache.New(client, "pages", cache.Options{DefaultLifetime: 24 * time.Hour, Compression: cache.CompressionZstd})
	if err != nil {
		log.Fatal(err)
	}
	sessions, err := session.New(client, session.Options{Prefix: "web", Key: []byte(os.Getenv("SESSION_KEY"))})
	if err != nil {
		log.Fatal(err) // says how long the key must be
	}
	a := &app{pages: cache.NewTyped[string](pages, cache.Raw), sessions: sessions, locks: lock.New(client, lock.Options{TTL: 30 * time.Second})}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", a.login)
	mux.HandleFunc("GET /page/{id}", a.page)
	mux.HandleFunc("POST /publish/{id}", a.publish)
	log.Println("listening on 127.0.0.1:8080")
	log.Fatal(http.ListenAndServe("127.0.0.1:8080", mux))
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

func (a *app) page(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	html, err := a.pages.GetOrSet(r.Context(), "page-"+id, func(ctx context.Context) (string, []string, time.Duration, error) {
		return render(id), []string{"pageId_" + id}, cache.DefaultLifetime, nil
	})
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	fmt.Fprint(w, html)
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
	n, err := a.pages.Backend().FlushByTags(ctx, "pageId_"+id)
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintf(w, "published page %s (fencing token %d), flushed %d cached entries\n", id, lease.Token(), n)
}

func render(id string) string {
	return fmt.Sprintf("<html><body><h1>Page %s</h1><p>rendered %s</p></body></html>\n", id, time.Now().Format(time.RFC3339))
}
