package cache_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/keyvalue-go/keyvalue/cache"
)

// TestFill: the bytes-level fill. One caller gets the Fill, concurrent
// callers wait for its value; Abandon hands the Fill to a waiter; a flush
// of a tag after the Fill was handed out refuses Store and StoreOther;
// TryFill never waits; Refill waits and returns the value stored.
func TestFill(t *testing.T) {
	t.Parallel()
	_, c := standalone(t)
	b := newBackend(t, c, "fill", cache.Options{})

	data, f, err := b.GetOrFill(ctx(t), "a", time.Second)
	if err != nil || data != nil || f == nil || !f.Leased() || f.ID() != "a" {
		t.Fatalf("first GetOrFill = %q, %v, %v; want a leased Fill", data, f, err)
	}
	var wg sync.WaitGroup
	got := make([]string, 8)
	for i := range got {
		wg.Go(func() {
			d, f2, err := b.GetOrFill(ctx(t), "a", time.Second)
			if err != nil || f2 != nil {
				t.Errorf("waiter %d: Fill %v, error %v; want the value", i, f2, err)
			}
			got[i] = string(d)
		})
	}
	time.Sleep(100 * time.Millisecond)
	if err := f.Store(ctx(t), []byte("A"), []string{"t"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i, v := range got {
		if v != "A" {
			t.Errorf("waiter %d got %q", i, v)
		}
	}
	if err := f.Store(ctx(t), []byte("again"), nil, time.Minute); err != nil {
		t.Errorf("a second Store = %v; want nil (it does nothing)", err)
	}
	if v, _ := b.Get(ctx(t), "a"); string(v) != "A" {
		t.Errorf("after a second Store: %q", v)
	}

	// Abandon: the waiter gets the Fill at once.
	_, f, _ = b.GetOrFill(ctx(t), "b", 10*time.Second)
	handed := make(chan *cache.Fill, 1)
	go func() {
		_, f2, err := b.GetOrFill(ctx(t), "b", 10*time.Second)
		if err != nil {
			t.Error(err)
		}
		handed <- f2
	}()
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	f.Abandon(ctx(t))
	f2 := <-handed
	if f2 == nil || !f2.Leased() || time.Since(start) > 2*time.Second {
		t.Fatalf("after Abandon the waiter got %v in %s; want the Fill at once", f2, time.Since(start))
	}

	// A flush after the Fill was handed out refuses the write.
	if _, err := b.FlushByTags(ctx(t), "page"); err != nil {
		t.Fatal(err)
	}
	if err := f2.StoreOther(ctx(t), "b-variant", []byte("old"), []string{"page"}, time.Minute); !errors.Is(err, cache.ErrFlushedWhileComputing) {
		t.Errorf("StoreOther after a flush of its tag = %v; want ErrFlushedWhileComputing", err)
	}
	if err := f2.Store(ctx(t), []byte("old"), []string{"page"}, time.Minute); !errors.Is(err, cache.ErrFlushedWhileComputing) {
		t.Errorf("Store after a flush of its tag = %v; want ErrFlushedWhileComputing", err)
	} else {
		t.Logf("Store after a flush: %v", err)
	}
	if ok, _ := b.Has(ctx(t), "b"); ok {
		t.Error("a refused value was stored")
	}

	// TryFill on an entry being filled returns nil; Refill waits for the
	// new value instead of returning the current one.
	_, f3, _ := b.Refill(ctx(t), "a", 10*time.Second)
	if f3 == nil {
		t.Fatal("Refill of a present entry: no Fill")
	}
	if f4, err := b.TryFill(ctx(t), "a", time.Second); f4 != nil || err != nil {
		t.Errorf("TryFill while another fills = %v, %v; want nil, nil", f4, err)
	}
	refilled := make(chan string, 1)
	go func() {
		d, f5, err := b.Refill(ctx(t), "a", 10*time.Second)
		if err != nil || f5 != nil {
			t.Errorf("waiting Refill = %v, %v", f5, err)
		}
		refilled <- string(d)
	}()
	time.Sleep(50 * time.Millisecond)
	if err := f3.Store(ctx(t), []byte("A2"), nil, time.Minute); err != nil {
		t.Fatal(err)
	}
	if v := <-refilled; v != "A2" {
		t.Errorf("waiting Refill got %q; want the new value A2", v)
	}
	if _, _, err := b.GetOrFill(ctx(t), "bad id", time.Second); !errors.Is(err, cache.ErrInvalidID) {
		t.Errorf("GetOrFill with a bad id = %v", err)
	}
}
