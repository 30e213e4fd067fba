package benchrun

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/cache"
)

// StampedeClients and StampedeCallers shape cache/stampede-64: callers
// spread over clients (as over processes) miss one key at once.
const (
	StampedeClients = 4
	StampedeCallers = 64
	stampedeCompute = 50 * time.Millisecond
)

// Stampede runs callers over clients; call(i) is caller i's read through
// client i%clients and reports whether it computed. It returns the number
// of computations and the callers' p99 in ms.
func Stampede(clients int, call func(client int) (computed bool, err error)) (Measure, error) {
	var wg sync.WaitGroup
	var computed atomic.Int64
	lat := make([]time.Duration, StampedeCallers)
	errs := make([]error, StampedeCallers)
	start := make(chan struct{})
	for i := range StampedeCallers {
		wg.Go(func() {
			<-start
			t := time.Now()
			did, err := call(i % clients)
			lat[i], errs[i] = time.Since(t), err
			if did {
				computed.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return Measure{}, err
		}
	}
	slices.Sort(lat)
	return Measure{Value: float64(computed.Load()), Extra: map[string]float64{"p99ms": per(lat[len(lat)*99/100], 1, "ms")}}, nil
}

// stampede: keyvalue's GetOrSet (one Typed per client, as per process)
// against the naive read-compute-write.
func stampede(kv bool) Impl {
	return func(ctx context.Context, env *Env) (Measure, error) {
		if !kv && !env.Plain {
			return Measure{}, ErrSkip
		}
		var clients []*keyvalue.Client
		defer func() {
			for _, c := range clients {
				c.Close()
			}
		}()
		for range StampedeClients {
			c, err := env.client("")
			if err != nil {
				return Measure{}, err
			}
			clients = append(clients, c)
		}
		name := env.name("stampede", strconv.FormatInt(time.Now().UnixNano(), 36))
		if !kv {
			key := name + ":hot"
			defer clients[0].Do(context.Background(), clients[0].B().Del().Key(key).Build())
			return Stampede(StampedeClients, func(i int) (bool, error) {
				c := clients[i]
				err := c.Do(ctx, c.B().Get().Key(key).Build()).Error()
				if err == nil {
					return false, nil
				}
				time.Sleep(stampedeCompute)
				return true, c.Do(ctx, c.B().Set().Key(key).Value("page").Px(time.Minute).Build()).Error()
			})
		}
		views := make([]*cache.Typed[string], len(clients))
		for i, c := range clients {
			b, err := cache.New(c, name, cache.Options{Logger: quiet})
			if err != nil {
				return Measure{}, err
			}
			views[i] = cache.NewTyped[string](b, cache.Raw)
		}
		defer func() { _, _ = views[0].Backend().Flush(context.Background(), nil) }()
		return Stampede(StampedeClients, func(i int) (bool, error) {
			computed := false
			_, err := views[i].GetOrSet(ctx, "hot", func(context.Context) (string, []string, time.Duration, error) {
				computed = true
				time.Sleep(stampedeCompute)
				return "page", []string{"t"}, time.Minute, nil
			})
			return computed, err
		})
	}
}

// swrHit: reads of an entry that turned stale while one background
// refresh (kept running on purpose) recomputes it, against fresh hits
// through the same API with the same refresh running for another entry:
// both clients carry the same background work, so the ratio isolates the
// stale-read path (valkey-go pipelines differently once a connection
// has had concurrent commands, which a plain-GET baseline would not show).
func swrHit(stale bool) Impl {
	return func(ctx context.Context, env *Env) (Measure, error) {
		c, err := env.client("")
		if err != nil {
			return Measure{}, err
		}
		defer c.Close()
		b, err := cache.New(c, env.name("swr", strconv.FormatInt(time.Now().UnixNano(), 36)), cache.Options{Logger: quiet})
		if err != nil {
			return Measure{}, err
		}
		defer func() { _, _ = b.Flush(context.Background(), nil) }()
		view := cache.NewTypedWith[[]byte](b, cache.Raw, cache.LoadOptions{Grace: time.Hour, Lease: time.Minute})
		stop := make(chan struct{})
		defer close(stop)
		refreshes := func(lifetime time.Duration) cache.Loader[[]byte] {
			var calls atomic.Int32
			return func(ctx context.Context) ([]byte, []string, time.Duration, error) {
				if calls.Add(1) > 1 {
					// The revalidation lasts as long as the run.
					select {
					case <-stop:
					case <-ctx.Done():
					}
					return nil, nil, 0, context.Canceled
				}
				return make([]byte, 512), []string{"t"}, lifetime, nil
			}
		}
		staleLoad, freshLoad := refreshes(10*time.Millisecond), refreshes(time.Hour)
		for _, id := range []string{"stale", "fresh"} {
			load := map[string]cache.Loader[[]byte]{"stale": staleLoad, "fresh": freshLoad}[id]
			if _, err := view.GetOrSet(ctx, id, load); err != nil {
				return Measure{}, err
			}
		}
		time.Sleep(20 * time.Millisecond)
		// One read of the stale entry starts its background refresh; the
		// reads are timed once it runs (its start, a lease script, is not a
		// read's cost).
		if _, err := view.GetOrSet(ctx, "stale", staleLoad); err != nil {
			return Measure{}, err
		}
		time.Sleep(20 * time.Millisecond)
		id, load := "fresh", freshLoad
		if stale {
			id, load = "stale", staleLoad
		}
		return timeReads(env, func() error {
			v, err := view.GetOrSet(ctx, id, load)
			if err == nil && len(v) != 512 {
				err = fmt.Errorf("read returned %d bytes", len(v))
			}
			return err
		})
	}
}

// timeReads times the scenario's number of reads.
func timeReads(env *Env, read func() error) (Measure, error) {
	n := env.sizes().getOps / 20
	start := time.Now()
	for range n {
		if err := read(); err != nil {
			return Measure{}, err
		}
	}
	return Measure{Value: per(time.Since(start), n, "µs")}, nil
}
