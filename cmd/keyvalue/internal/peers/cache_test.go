package peers_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/cache"
	"github.com/keyvalue-go/keyvalue/cmd/keyvalue/internal/naive"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/servertest"
)

// The cache benchmarks run keyvalue and the naive baseline (internal/naive,
// written the way the usual integrations do it) side by side against one
// real local server. Compare the two rows of each pair; `make bench-cache`
// prints the ratios.

var quiet = slog.New(slog.DiscardHandler)

// tagged is the operation set both implementations offer.
type tagged interface {
	Set(ctx context.Context, id string, data []byte, tags []string, lifetime time.Duration) error
	FlushByTags(ctx context.Context, tags ...string) error
	Flush(ctx context.Context) error
	CollectGarbage(ctx context.Context) error
}

type kvImpl struct{ *cache.Backend }

func (k kvImpl) FlushByTags(ctx context.Context, tags ...string) error {
	_, err := k.Backend.FlushByTags(ctx, tags...)
	return err
}
func (k kvImpl) Flush(ctx context.Context) error {
	_, err := k.Backend.Flush(ctx, nil)
	return err
}
func (k kvImpl) CollectGarbage(ctx context.Context) error {
	_, err := k.Backend.CollectGarbage(ctx, nil)
	return err
}

// impls returns both implementations on one fresh server.
func impls(b *testing.B) (*keyvalue.Client, []struct {
	name string
	impl tagged
}) {
	s := servertest.Standalone(b)
	c, err := keyvalue.Open(keyvalue.Config{Addrs: []string{s.Addr()}, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	be, err := cache.New(c, "bench", cache.Options{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	return c, []struct {
		name string
		impl tagged
	}{{"naive", naive.New(c, "naive:")}, {"keyvalue", kvImpl{be}}}
}

func tagList(n int) []string {
	tags := make([]string, n)
	for i := range tags {
		tags[i] = fmt.Sprintf("tag_%d", i)
	}
	return tags
}

// fill writes n entries concurrently; entry i gets tag i%tagCount.
func fill(b *testing.B, impl tagged, n, tagCount int, lifetime time.Duration) {
	b.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < n; i += 16 {
				if err := impl.Set(context.Background(), fmt.Sprintf("e%d", i), []byte("payload"), []string{fmt.Sprintf("tag_%d", i%tagCount)}, lifetime); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

func BenchmarkCacheSet(b *testing.B) {
	_, all := impls(b)
	data := make([]byte, 512)
	for _, n := range []int{1, 5, 10, 20} {
		tags := tagList(n)
		for _, im := range all {
			b.Run(fmt.Sprintf("tags=%d/%s", n, im.name), func(b *testing.B) {
				ctx := context.Background()
				i := 0
				for b.Loop() {
					// Alternate two tag sets so every set also computes a tag diff.
					t := tags
					if i%2 == 1 {
						t = tags[:max(1, n-1)]
					}
					if err := im.impl.Set(ctx, fmt.Sprintf("id%d", i%100), data, t, time.Hour); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
		}
	}
}

func BenchmarkCacheFlushByTags10(b *testing.B) { benchFlushByTags(b, 1000, false) }

// BenchmarkCacheFlushByTags100k is the bench's cache/flush-by-tags-100k (10
// tags over 100,000 entries; keyvalue only), to profile with -cpuprofile
// and -benchtime 3x (each round fills the cache first, untimed).
func BenchmarkCacheFlushByTags100k(b *testing.B) { benchFlushByTags(b, 100000, true) }

// benchFlushByTags times flushing 10 tags over entries entries, filled
// anew before each round.
func benchFlushByTags(b *testing.B, entries int, keyvalueOnly bool) {
	_, all := impls(b)
	tags := tagList(10)
	for _, im := range all {
		if keyvalueOnly && im.name != "keyvalue" {
			continue
		}
		b.Run(im.name, func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				fill(b, im.impl, entries, 10, time.Hour)
				b.StartTimer()
				if err := im.impl.FlushByTags(context.Background(), tags...); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkCacheFlush10k(b *testing.B) {
	_, all := impls(b)
	for _, im := range all {
		b.Run(im.name, func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				fill(b, im.impl, 10000, 50, time.Hour)
				b.StartTimer()
				if err := im.impl.Flush(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkCacheGC5k(b *testing.B) {
	_, all := impls(b)
	for _, im := range all {
		b.Run(im.name, func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				fill(b, im.impl, 5000, 20, 50*time.Millisecond)
				time.Sleep(120 * time.Millisecond)
				b.StartTimer()
				if err := im.impl.CollectGarbage(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCacheGet compares a GET that reaches the server with one served by
// the local read cache (Options.LocalCacheTTL).
func BenchmarkCacheGet(b *testing.B) {
	c, all := impls(b)
	naiveImpl := all[0].impl.(*naive.Cache)
	local, err := cache.New(c, "bench", cache.Options{Logger: quiet, LocalCacheTTL: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	_ = naiveImpl.Set(ctx, "k", make([]byte, 512), []string{"t"}, time.Hour)
	_ = local.Set(ctx, "k", make([]byte, 512), []string{"t"}, time.Hour)
	b.Run("naive", func(b *testing.B) {
		for b.Loop() {
			if _, err := naiveImpl.Get(ctx, "k"); err != nil {
				b.Fatal(err)
			}
		}
	})
	server, err := cache.New(c, "bench", cache.Options{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	typed := cache.NewTyped[[]byte](server, cache.Raw)
	b.Run("valkey-go-raw", func(b *testing.B) { // the client library alone: the floor
		key := server.Prefix() + "v:k"
		for b.Loop() {
			if _, err := c.Do(ctx, c.B().Get().Key(key).Build()).AsBytes(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("keyvalue", func(b *testing.B) {
		for b.Loop() {
			if _, err := server.Get(ctx, "k"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("keyvalue-typed-getorset-hit", func(b *testing.B) {
		for b.Loop() {
			if _, err := typed.GetOrSet(ctx, "k", nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("keyvalue-local-hit", func(b *testing.B) {
		for b.Loop() {
			if _, err := local.Get(ctx, "k"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
