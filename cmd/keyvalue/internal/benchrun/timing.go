package benchrun

import (
	"sync"
	"sync/atomic"
	"time"
)

// Parallel runs total calls of fn over workers goroutines and returns the
// elapsed time, or the first error. Every implementation of a throughput
// scenario (keyvalue, the baseline and the peers) is timed with it, so
// they are measured the same way.
func Parallel(workers, total int, fn func() error) (time.Duration, error) {
	var left atomic.Int64
	left.Store(int64(total))
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for left.Add(-1) >= 0 {
				if err := fn(); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		return 0, err
	}
	return time.Since(start), nil
}
