package cache_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/cache"
)

func Example() {
	// The server comes from KEYVALUE_URL (or KEYVALUE_CONFIG, KEYVALUE_*).
	var cfg keyvalue.Config
	if _, err := keyvalue.LoadEnv(os.Environ(), &cfg); err != nil {
		log.Fatal(err)
	}
	client, err := keyvalue.Open(cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	ctx := context.Background()

	pages, err := cache.New(client, "pages", cache.Options{DefaultLifetime: 24 * time.Hour, Compression: cache.CompressionZstd})
	if err != nil {
		log.Fatal(err)
	}
	if err := pages.Set(ctx, "page-1", []byte("<html>one</html>"), []string{"pageId_1", "site_a"}, cache.DefaultLifetime); err != nil {
		log.Fatal(err)
	}
	if err := pages.Set(ctx, "page-2", []byte("<html>two</html>"), []string{"pageId_2", "site_a"}, time.Hour); err != nil {
		log.Fatal(err)
	}

	html, err := pages.Get(ctx, "page-1")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(html))

	ids, err := pages.IDsByTag(ctx, "site_a")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ids)

	n, err := pages.FlushByTags(ctx, "pageId_1", "pageId_2")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("flushed", n)
	// Output:
	// <html>one</html>
	// [page-1 page-2]
	// flushed 2
}

func ExampleTyped_GetOrSet() {
	var cfg keyvalue.Config
	if _, err := keyvalue.LoadEnv(os.Environ(), &cfg); err != nil {
		log.Fatal(err)
	}
	client, err := keyvalue.Open(cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	type rootline struct{ Pages []int }
	b, err := cache.New(client, "rootline", cache.Options{})
	if err != nil {
		log.Fatal(err)
	}
	rootlines := cache.NewTyped[rootline](b, cache.Msgpack)

	for range 2 {
		r, err := rootlines.GetOrSet(context.Background(), "page-42", func(context.Context) (rootline, []string, time.Duration, error) {
			fmt.Println("loading")
			return rootline{Pages: []int{1, 7, 42}}, []string{"pageId_42"}, time.Hour, nil
		})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(r.Pages)
	}
	// Output:
	// loading
	// [1 7 42]
	// [1 7 42]
}

func ExampleOpen() {
	// The connection comes from the environment (KEYVALUE_URL, or a file
	// in KEYVALUE_CONFIG with a caches: section); the caches are declared
	// here in code, as a file or KEYVALUE_CACHES_NAME_KEY variables would.
	var cfg cache.Config
	if _, err := keyvalue.LoadEnv(os.Environ(), &cfg); err != nil {
		log.Fatal(err)
	}
	cfg.Caches = map[string]cache.Spec{
		"pages":    {DefaultLifetime: "720h", Compression: "zstd"},
		"rootline": {Codec: "msgpack", DefaultLifetime: "unlimited"},
	}
	group, err := cache.Open(cfg) // one client for both: they use the same database
	if err != nil {
		log.Fatal(err)
	}
	defer group.Close()

	pages, err := group.Backend("pages")
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if err := pages.Set(ctx, "page-7", []byte("<html>seven</html>"), []string{"pageId_7"}, cache.DefaultLifetime); err != nil {
		log.Fatal(err)
	}
	html, err := pages.Get(ctx, "page-7")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(group.Names(), string(html))
	// Output:
	// [pages rootline] <html>seven</html>
}

// A page cache that never makes a visitor wait for a re-render: a page is
// fresh for a minute, then served stale for up to an hour while one
// process across the fleet renders it again in the background. A render
// that straddles an editor's purge of its tag is not stored.
func ExampleNewTypedWith() {
	var cfg keyvalue.Config
	if _, err := keyvalue.LoadEnv(os.Environ(), &cfg); err != nil {
		log.Fatal(err)
	}
	client, err := keyvalue.Open(cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	b, err := cache.New(client, "pages-swr", cache.Options{})
	if err != nil {
		log.Fatal(err)
	}
	pages := cache.NewTypedWith[string](b, cache.Raw, cache.LoadOptions{
		Lease: 5 * time.Second, // a render takes well under that
		Grace: time.Hour,       // serve a stale page this long while it is rendered again
		Beta:  1,               // and re-render hot pages a little before they turn stale
	})
	render := func(ctx context.Context) (string, []string, time.Duration, error) {
		return "<h1>Page 7</h1>", []string{"pageId_7"}, time.Minute, nil
	}
	page, err := pages.GetOrSet(context.Background(), "/page/7", render)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(page)

	// The editor saved page 7: purge it. A render that began before this
	// returns its page to its own caller but does not store it.
	if _, err := b.FlushByTags(context.Background(), "pageId_7"); err != nil {
		log.Fatal(err)
	}
	// Output:
	// <h1>Page 7</h1>
}

// A cache that keeps the application up while the server is down: reads
// become misses (GetOrSet computes and returns without storing), writes
// are dropped with a warning, and after five failures in a row calls fail
// fast for five seconds instead of waiting for a timeout each. A flush
// still returns its error: an invalidation is never dropped silently.
func ExampleOptions_degraded() {
	var cfg keyvalue.Config
	if _, err := keyvalue.LoadEnv(os.Environ(), &cfg); err != nil {
		log.Fatal(err)
	}
	client, err := keyvalue.Open(cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	b, err := cache.New(client, "fragments", cache.Options{
		Degraded:         true,
		BreakerThreshold: 5,
		BreakerCooldown:  5 * time.Second,
	})
	if err != nil {
		log.Fatal(err)
	}
	fragments := cache.NewTyped[string](b, cache.Raw)
	html, err := fragments.GetOrSet(context.Background(), "footer", func(context.Context) (string, []string, time.Duration, error) {
		return "<footer>…</footer>", []string{"layout"}, time.Hour, nil
	})
	if err != nil {
		log.Fatal(err) // the computation's own error; never the server's in degraded mode
	}
	fmt.Println(html)
	if _, err := b.FlushByTags(context.Background(), "layout"); errors.Is(err, cache.ErrUnavailable) {
		log.Print("layout not purged: the server is down; retry later")
	}
	// Output:
	// <footer>…</footer>
}

// Many ids at once: the hits in one round trip, the misses computed once
// across the fleet with one call of the loader (one query for all of
// them), and the ids the loader did not find remembered as absent for a
// minute.
func ExampleTyped_GetOrSetMany() {
	var cfg keyvalue.Config
	if _, err := keyvalue.LoadEnv(os.Environ(), &cfg); err != nil {
		log.Fatal(err)
	}
	client, err := keyvalue.Open(cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	type product struct{ Name string }
	b, err := cache.New(client, "products", cache.Options{})
	if err != nil {
		log.Fatal(err)
	}
	products := cache.NewTypedWith[product](b, cache.JSON, cache.LoadOptions{NotFoundLifetime: time.Minute})
	database := map[string]string{"p1": "Lamp", "p2": "Desk"}
	load := func(ctx context.Context, missing []string) ([]cache.Item[product], error) {
		fmt.Println("loading", missing) // e.g. SELECT ... WHERE id IN (...)
		var items []cache.Item[product]
		for _, id := range missing {
			if name, ok := database[id]; ok {
				items = append(items, cache.Item[product]{ID: id, Value: product{name}, Tags: []string{"product:" + id}, Lifetime: time.Hour})
			}
		}
		return items, nil
	}
	for range 2 {
		found, err := products.GetOrSetMany(context.Background(), []string{"p1", "p2", "p3"}, load)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(len(found), found["p1"].Name, found["p2"].Name)
	}
	// Output:
	// loading [p1 p2 p3]
	// 2 Lamp Desk
	// 2 Lamp Desk
}

// There is no "delete by key prefix": tag each entry with the groups it
// belongs to and flush a group by its tag (three round trips, however
// many entries; none missed, unlike a SCAN for a prefix while others
// write). A whole namespace is a cache of its own, emptied with Flush.
func ExampleBackend_FlushByTags() {
	var cfg keyvalue.Config
	if _, err := keyvalue.LoadEnv(os.Environ(), &cfg); err != nil {
		log.Fatal(err)
	}
	client, err := keyvalue.Open(cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	ctx := context.Background()

	views, err := cache.New(client, "views", cache.Options{})
	if err != nil {
		log.Fatal(err)
	}
	// Instead of keys "user:42:profile", "user:42:orders", ... deleted by
	// the prefix "user:42:": the tag "user:42".
	err = views.SetMany(ctx, []cache.Entry{
		{ID: "user:42:profile", Data: []byte("..."), Tags: []string{"user:42"}},
		{ID: "user:42:orders", Data: []byte("..."), Tags: []string{"user:42", "orders"}},
		{ID: "user:7:profile", Data: []byte("..."), Tags: []string{"user:7"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	n, err := views.FlushByTags(ctx, "user:42")
	if err != nil {
		log.Fatal(err)
	}
	left, err := views.GetMany(ctx, []string{"user:42:profile", "user:42:orders", "user:7:profile"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("flushed", n, "left", len(left))
	// Output:
	// flushed 2 left 1
}
