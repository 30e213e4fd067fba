package benchrun

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/cmd/keyvalue/internal/naive"
	"github.com/keyvalue-go/keyvalue/lock"
)

// ---- locks

// Locker is a lock implementation as the lock scenarios use it; peers
// provide their own.
type Locker interface {
	Lock(ctx context.Context) (unlock func() error, err error)
}

// LockerFunc adapts a function to Locker.
type LockerFunc func(ctx context.Context) (func() error, error)

// Lock calls f.
func (f LockerFunc) Lock(ctx context.Context) (func() error, error) { return f(ctx) }

// LockTTL is the lease TTL every lock scenario uses.
const LockTTL = 10 * time.Second

// KeyvalueLocker is keyvalue's Mutex name (inside env's namespace) as a Locker.
func KeyvalueLocker(env *Env, c *keyvalue.Client, name string) (Locker, error) {
	m, err := lock.New(c, lock.Options{TTL: LockTTL, Logger: quiet}).Mutex(env.name(name))
	if err != nil {
		return nil, err
	}
	return LockerFunc(func(ctx context.Context) (func() error, error) {
		l, err := m.Lock(ctx)
		if err != nil {
			return nil, err
		}
		return func() error { return l.Unlock(ctx) }, nil
	}), nil
}

// NaiveLocker is the polling baseline lock (10ms retry) as a Locker.
func NaiveLocker(env *Env, c *keyvalue.Client, name string) Locker {
	l := naive.NewLock(c, env.name(name), LockTTL, 10*time.Millisecond)
	return LockerFunc(func(ctx context.Context) (func() error, error) {
		tok, err := l.Lock(ctx)
		if err != nil {
			return nil, err
		}
		return func() error { return l.Unlock(ctx, tok) }, nil
	})
}

// LockMeasure measures a lock scenario with two instances of one lock
// implementation, each on its own client, as two processes would hold
// them: lock/handoff hands over from the first to the second;
// lock/contended-8 uses the first.
type LockMeasure func(ctx context.Context, env *Env, first, second Locker) (Measure, error)

// lockImpl turns a measure into keyvalue's or the baseline's Impl.
func lockImpl(kv bool, measure LockMeasure) Impl {
	return func(ctx context.Context, env *Env) (Measure, error) {
		name := "lock-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		var lockers [2]Locker
		for i := range lockers {
			c, err := env.client("")
			if err != nil {
				return Measure{}, err
			}
			defer c.Close()
			if !kv {
				lockers[i] = NaiveLocker(env, c, name)
			} else if lockers[i], err = KeyvalueLocker(env, c, name); err != nil {
				return Measure{}, err
			}
		}
		return measure(ctx, env, lockers[0], lockers[1])
	}
}

func handoff(kv bool) Impl { return lockImpl(kv, HandoffMeasure) }

func contended(kv bool) Impl { return lockImpl(kv, ContendedMeasure) }

func contendedTwo(kv bool) Impl { return lockImpl(kv, ContendedTwoMeasure) }

// ReportPercentiles reports the median and 99th percentile of sorted
// latencies as benchmark metrics (p50-µs, p99-µs).
func ReportPercentiles(b interface{ ReportMetric(float64, string) }, lat []time.Duration) {
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// HandoffMeasure measures release by holder → waiter (another process's
// instance) acquires: the median in Value, the 99th percentile in
// Extra["p99"], in µs.
func HandoffMeasure(ctx context.Context, env *Env, holder, waiter Locker) (Measure, error) {
	lat, err := Handoffs(ctx, holder, waiter, env.sizes().handoffs)
	if err != nil {
		return Measure{}, err
	}
	return percentiles(lat), nil
}

// HandoffPause is how long Handoffs lets the waiter settle into its wait
// before each release (the PING limit pauses as long).
const HandoffPause = 3 * time.Millisecond

// Handoffs takes the lock with holder, starts a goroutine waiting for it
// with waiter, releases it and times until the waiter holds it; n times.
// The latencies come sorted.
func Handoffs(ctx context.Context, holder, waiter Locker, n int) ([]time.Duration, error) {
	var lat []time.Duration
	for range n {
		unlock, err := holder.Lock(ctx)
		if err != nil {
			return nil, err
		}
		got := make(chan error, 1)
		var at time.Time
		go func() {
			u, err := waiter.Lock(ctx)
			at = time.Now()
			if err == nil {
				err = u()
			}
			got <- err
		}()
		time.Sleep(HandoffPause) // the waiter waits now
		released := time.Now()
		if err := unlock(); err != nil {
			return nil, err
		}
		if err := <-got; err != nil {
			return nil, err
		}
		lat = append(lat, at.Sub(released))
	}
	slices.Sort(lat)
	return lat, nil
}

// ContendedMeasure is lock+unlock throughput with 8 contenders of one
// process (first), in ops/s, with the 99th percentile of the time a Lock
// waited in Extra["p99ms"].
func ContendedMeasure(ctx context.Context, env *Env, l, _ Locker) (Measure, error) {
	return contendedMeasure(ctx, env, []Locker{l}, 8)
}

// ContendedTwoMeasure is ContendedMeasure with 4 contenders in each of two
// processes (first and second).
func ContendedTwoMeasure(ctx context.Context, env *Env, first, second Locker) (Measure, error) {
	return contendedMeasure(ctx, env, []Locker{first, second}, 4)
}

func contendedMeasure(ctx context.Context, env *Env, lockers []Locker, each int) (Measure, error) {
	n := env.sizes().lockOps
	took, waits, err := Contend(ctx, lockers, each, n)
	if err != nil {
		return Measure{}, err
	}
	slices.Sort(waits)
	p99 := waits[len(waits)*99/100]
	return Measure{Value: float64(n) / took.Seconds(), Extra: map[string]float64{"p99ms": float64(p99) / float64(time.Millisecond)}}, nil
}

// Contend runs n lock+unlock cycles over each workers goroutines per
// locker and returns the elapsed time and how long each Lock waited.
func Contend(ctx context.Context, lockers []Locker, each, n int) (time.Duration, []time.Duration, error) {
	var mu sync.Mutex
	waits := make([]time.Duration, 0, n)
	var next atomic.Int64
	took, err := Parallel(len(lockers)*each, n, func() error {
		l := lockers[int(next.Add(1))%len(lockers)]
		start := time.Now()
		unlock, err := l.Lock(ctx)
		if err != nil {
			return err
		}
		w := time.Since(start)
		mu.Lock()
		waits = append(waits, w)
		mu.Unlock()
		return unlock()
	})
	return took, waits, err
}
