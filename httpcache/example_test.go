package httpcache_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/cache"
	"github.com/keyvalue-go/keyvalue/httpcache"
)

// A page handler behind the middleware: tagged with the page it shows,
// purged when that page changes.
func Example() {
	var cfg keyvalue.Config // e.g. KEYVALUE_URL=redis://127.0.0.1:6379
	if _, err := keyvalue.LoadEnv(os.Environ(), &cfg); err != nil {
		log.Fatal(err)
	}
	client, err := keyvalue.Open(cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	pages, err := cache.New(client, "example-pages", cache.Options{Compression: cache.CompressionZstd, Degraded: true})
	if err != nil {
		log.Fatal(err)
	}
	hc, err := httpcache.New(pages, httpcache.Options{})
	if err != nil {
		log.Fatal(err)
	}
	version := 1
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		w.Header().Set("Cache-Control", "max-age=300, stale-while-revalidate=60")
		httpcache.Tag(r, "pageId_"+id)
		fmt.Fprintf(w, "page %s, version %d", id, version)
	})
	mux := http.NewServeMux()
	mux.Handle("GET /page/{id}", hc.Middleware(page))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	show := func() {
		res, err := http.Get(srv.URL + "/page/7")
		if err != nil {
			log.Fatal(err)
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s (%s)\n", body, res.Header.Get("Cache-Status"))
	}
	show()
	show()
	version = 2 // an editor saves page 7
	if _, err := hc.Purge(context.Background(), "pageId_7"); err != nil {
		log.Fatal(err)
	}
	show()
	// Output:
	// page 7, version 1 (keyvalue; fwd=uri-miss; fwd-status=200; stored)
	// page 7, version 1 (keyvalue; hit; ttl=299)
	// page 7, version 2 (keyvalue; fwd=uri-miss; fwd-status=200; stored)
}
