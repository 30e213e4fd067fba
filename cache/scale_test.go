package cache_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/cache"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/servertest"
	"github.com/keyvalue-go/keyvalue/session"
)

// TestScaleOut measures how Flush, CollectGarbage and FlushByTags of a
// sharded cache, and a session store's GetAll, grow with the number of
// primaries of a Cluster (3, 6, 9). It is a measurement, not a promise:
// it runs only with KEYVALUE_SCALE=1 (make bench-scale) and prints a
// table; docs/scaling.md extrapolates from it.
func TestScaleOut(t *testing.T) {
	if os.Getenv("KEYVALUE_SCALE") == "" {
		t.Skip("a measurement: run it with make bench-scale (KEYVALUE_SCALE=1)")
	}
	const entries, tags = 20000, 200
	type row struct {
		primaries                          int
		fill, flushByTags, gc, flush, list time.Duration
		gcMembers                          int
	}
	var rows []row
	for _, n := range []int{3, 6, 9} {
		cl := servertest.Cluster(t, n)
		c := connect(t, keyvalue.Config{Mode: keyvalue.ModeCluster, Addrs: cl.Addrs()})
		b := newBackend(t, c, fmt.Sprintf("scale%d", n), cache.Options{Sharded: true})
		ctx := context.Background()
		r := row{primaries: n}
		start := time.Now()
		if err := eachParallel(entries, 32, func(i int) error {
			life := time.Hour
			if i%4 == 0 {
				life = 100 * time.Millisecond // a quarter expires: garbage for the GC
			}
			return b.Set(ctx, "e"+strconv.Itoa(i), []byte("payload of entry "+strconv.Itoa(i)), []string{"t" + strconv.Itoa(i%tags), "all" + strconv.Itoa(i%7)}, life)
		}); err != nil {
			t.Fatal(err)
		}
		r.fill = time.Since(start)
		time.Sleep(200 * time.Millisecond)
		start = time.Now()
		if _, err := b.FlushByTags(ctx, "t1", "t2", "t3", "t4", "t5", "t6", "t7", "t8", "t9", "t10"); err != nil {
			t.Fatal(err)
		}
		r.flushByTags = time.Since(start)
		start = time.Now()
		st, err := b.CollectGarbage(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		r.gc, r.gcMembers = time.Since(start), st.RemovedMembers
		start = time.Now()
		if _, err := b.Flush(ctx, nil); err != nil {
			t.Fatal(err)
		}
		r.flush = time.Since(start)
		store, err := session.New(c, session.Options{Prefix: "scale", Key: []byte("0123456789abcdef0123456789abcdef"), Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		for range 500 {
			if _, err := store.Create(ctx, session.Record{}); err != nil {
				t.Fatal(err)
			}
		}
		start = time.Now()
		if all, err := store.GetAll(ctx); err != nil || len(all) != 500 {
			t.Fatalf("GetAll: %d, %v", len(all), err)
		}
		r.list = time.Since(start)
		rows = append(rows, r)
	}
	t.Logf("sharded cache of %d entries over %d tags (+7 wide tags), a quarter expired; a session store of 500", entries, tags)
	t.Logf("%-10s %12s %16s %12s %12s %14s", "primaries", "fill", "flush-by-tags-10", "gc", "flush", "session getall")
	for _, r := range rows {
		t.Logf("%-10d %12s %16s %12s %12s %14s", r.primaries, r.fill.Round(time.Millisecond), r.flushByTags.Round(10*time.Microsecond),
			r.gc.Round(time.Millisecond), r.flush.Round(time.Millisecond), r.list.Round(10*time.Microsecond))
	}
}

// eachParallel calls fn(0..n-1) over workers goroutines; first error wins.
func eachParallel(n, workers int, fn func(i int) error) error {
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			for i := w; i < n; i += workers {
				if err := fn(i); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	var first error
	for range workers {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}
