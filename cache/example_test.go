package cache_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/cache"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/kvtest"
)

func Example() {
	addr, stop := kvtest.ExampleServer() // a throwaway local server
	defer stop()
	client, err := keyvalue.Open(keyvalue.Config{Addrs: []string{addr}})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	ctx := context.Background()

	pages, err := cache.New(client, "pages", cache.Options{DefaultLifetime: 24 * time.Hour, Compression: cache.CompressionZstd})
	if err != nil {
		log.Fatal(err)
	}
	_ = pages.Set(ctx, "page-1", []byte("<html>one</html>"), []string{"pageId_1", "site_a"}, cache.DefaultLifetime)
	_ = pages.Set(ctx, "page-2", []byte("<html>two</html>"), []string{"pageId_2", "site_a"}, time.Hour)

	html, _ := pages.Get(ctx, "page-1")
	fmt.Println(string(html))

	ids, _ := pages.FindIdentifiersByTag(ctx, "site_a")
	fmt.Println(ids)

	n, _ := pages.FlushByTags(ctx, "pageId_1", "pageId_2")
	fmt.Println("flushed", n)
	// Output:
	// <html>one</html>
	// [page-1 page-2]
	// flushed 2
}

func ExampleTyped_GetOrSet() {
	addr, stop := kvtest.ExampleServer()
	defer stop()
	client, _ := keyvalue.Open(keyvalue.Config{Addrs: []string{addr}})
	defer client.Close()

	type rootline struct{ Pages []int }
	b, _ := cache.New(client, "rootline", cache.Options{})
	rootlines := cache.NewTyped[rootline](b, cache.Msgpack)

	for range 2 {
		r, err := rootlines.GetOrSet(context.Background(), "page-42", func(context.Context) (rootline, []string, time.Duration, error) {
			fmt.Println("loading")
			return rootline{Pages: []int{1, 7, 42}}, []string{"pageId_42"}, time.Hour, nil
		})
		fmt.Println(r.Pages, err)
	}
	// Output:
	// loading
	// [1 7 42] <nil>
	// [1 7 42] <nil>
}
