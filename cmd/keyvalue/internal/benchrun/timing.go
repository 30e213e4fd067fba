package benchrun

import (
	"sync"
	"sync/atomic"
	"time"
)

// Throughput calls fn from workers goroutines for about d and returns
// the calls completed per second, or the first error. Every
// implementation of a throughput scenario (keyvalue, the baseline, the
// limit and the peers) is timed with it for the same time, so a slower
// one does not make its scenario longer (a count of calls would: at a
// 250µs round trip, a peer three times slower took three times as long).
func Throughput(workers int, d time.Duration, fn func() error) (float64, error) {
	var stop atomic.Bool
	var calls atomic.Int64
	start := time.Now()
	timer := time.AfterFunc(d, func() { stop.Store(true) })
	defer timer.Stop()
	err := spread(workers, func() bool { return !stop.Load() }, func() error {
		err := fn()
		if err == nil {
			calls.Add(1)
		}
		return err
	})
	if err != nil {
		return 0, err
	}
	return float64(calls.Load()) / time.Since(start).Seconds(), nil
}

// Parallel runs total calls of fn over workers goroutines and returns the
// elapsed time, or the first error (scenarios that do a fixed amount of
// work: contended locks, filling a cache).
func Parallel(workers, total int, fn func() error) (time.Duration, error) {
	var left atomic.Int64
	left.Store(int64(total))
	start := time.Now()
	if err := spread(workers, func() bool { return left.Add(-1) >= 0 }, fn); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// spread calls fn from workers goroutines while more says so, and returns
// the first error fn returned; after an error no worker starts another
// call.
func spread(workers int, more func() bool, fn func() error) error {
	// An atomic.Pointer, not an atomic.Value: errors of different types
	// from two workers would make a Value's CompareAndSwap panic.
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for firstErr.Load() == nil && more() {
				if err := fn(); err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	if p := firstErr.Load(); p != nil {
		return *p
	}
	return nil
}
