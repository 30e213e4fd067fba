package benchrun

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/cache"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/naive"
	"github.com/keyvalue-go/keyvalue/lock"
	"github.com/keyvalue-go/keyvalue/session"
	"github.com/valkey-io/valkey-go"
)

var quiet = slog.New(slog.DiscardHandler)

// Sizes are the scenario sizes; Quick ones keep a run under a minute on
// two cores.
type sizes struct {
	setOps, getOps, renewOps, handoffs, lockOps, localHits int
}

func (e *Env) sizes() sizes {
	if e.Tiny {
		return sizes{setOps: 20, getOps: 200, renewOps: 10, handoffs: 3, lockOps: 20, localHits: 100}
	}
	if e.Quick {
		return sizes{setOps: 300, getOps: 20000, renewOps: 200, handoffs: 30, lockOps: 400, localHits: 20000}
	}
	return sizes{setOps: 2000, getOps: 100000, renewOps: 1000, handoffs: 200, lockOps: 2000, localHits: 200000}
}

// n scales a scenario's fixed size down in Tiny mode (tests).
func (e *Env) n(size int) int {
	if e.Tiny {
		return max(size/100, 10)
	}
	return size
}

// client opens a keyvalue handle on the environment's server.
func (e *Env) client(name string) (*keyvalue.Client, error) {
	cfg := e.Cfg
	cfg.Logger = quiet
	cfg.Caches = nil
	if name != "" {
		cfg.ClientName = name
	}
	return keyvalue.Open(cfg)
}

// name builds a cache/session/lock name inside the namespace.
func (e *Env) name(parts ...string) string {
	return e.NS + "-" + strings.Join(parts, "-")
}

// Scenarios returns every scenario, in report order.
func Scenarios() []Scenario {
	s := []Scenario{
		{Name: "bootstrap/11-caches", Unit: "µs", What: "open 11 named caches until ready for the first command",
			Baseline: naiveBootstrap, Keyvalue: kvBootstrap},
		{Name: "connect/backoff-2-failures", Unit: "ms", What: "reach a server that refuses the first two dials",
			Baseline: naiveBackoff, Keyvalue: kvBackoff},
	}
	for _, n := range []int{1, 5, 10, 20} {
		s = append(s, Scenario{Name: fmt.Sprintf("cache/set-%d-tag%s", n, plural(n)), Unit: "µs", What: fmt.Sprintf("one set with %d tag%s", n, plural(n)),
			Baseline: cacheSet(n, false), Keyvalue: cacheSet(n, true)})
	}
	s = append(s,
		Scenario{Name: "cache/flush-by-tags-10", Unit: "ms", What: "flush 10 tags covering 1,000 entries", Baseline: flushByTags(false), Keyvalue: flushByTags(true)},
		Scenario{Name: "cache/flush-10k", Unit: "ms", What: "flush a cache of 10,000 entries", Baseline: flushAll(10000, false), Keyvalue: flushAll(10000, true)},
		Scenario{Name: "cache/flush-stall-100k", Unit: "ms", What: "longest PING a second client sees while a 100,000-entry cache is flushed",
			Baseline: flushStall(false), Keyvalue: flushStall(true)},
		Scenario{Name: "cache/gc-5k", Unit: "ms", What: "garbage-collect 5,000 expired entries", Baseline: gc(false), Keyvalue: gc(true)},
		Scenario{Name: "cache/get-parallel-64", Unit: "ops/s", Higher: true, What: "GET throughput with 64 goroutines", Baseline: getParallel(false), Keyvalue: getParallel(true)},
		Scenario{Name: "cache/get-local-hit", Unit: "ns", What: "GET served by the local read cache (baseline: a server GET)", Baseline: getLocal(false), Keyvalue: getLocal(true)},
		Scenario{Name: "session/getall-500", Unit: "ms", What: "list 500 sessions", Baseline: getAll500(false), Keyvalue: getAll500(true)},
		Scenario{Name: "session/renew", Unit: "µs", What: "renew one session id", Baseline: renew(false), Keyvalue: renew(true)},
		Scenario{Name: "lock/handoff", Unit: "µs", What: "release → waiting process acquires, p50 (p99)", Baseline: handoff(false), Keyvalue: handoff(true)},
		Scenario{Name: "lock/contended-8", Unit: "ops/s", Higher: true, What: "lock+unlock throughput, 8 contenders", Baseline: contended(false), Keyvalue: contended(true)},
	)
	return s
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// ---- bootstrap

func kvBootstrap(ctx context.Context, env *Env) (Measure, error) {
	cfg := env.Cfg
	cfg.Logger = quiet
	cfg.Caches = map[string]keyvalue.CacheSpec{}
	for i := range 11 {
		cfg.Caches[env.name("boot", strconv.Itoa(i))] = keyvalue.CacheSpec{DefaultLifetime: "720h"}
	}
	start := time.Now()
	set, err := cache.Open(cfg)
	took := time.Since(start)
	if err != nil {
		return Measure{}, err
	}
	set.Close()
	return Measure{Value: per(took, 1, "µs")}, nil
}

// naiveBootstrap dials one client per cache, eagerly, as components that
// each construct their own client do.
func naiveBootstrap(ctx context.Context, env *Env) (Measure, error) {
	opt, err := plainOption(env)
	if err != nil {
		return Measure{}, err
	}
	start := time.Now()
	var cs []valkey.Client
	for range 11 {
		c, err := valkey.NewClient(opt)
		if err != nil {
			return Measure{}, err
		}
		cs = append(cs, c)
	}
	took := time.Since(start)
	for _, c := range cs {
		c.Close()
	}
	return Measure{Value: per(took, 1, "µs")}, nil
}

// plainOption is a valkey-go option for simple (baseline) clients.
func plainOption(env *Env) (valkey.ClientOption, error) {
	if !env.Plain {
		return valkey.ClientOption{}, ErrSkip
	}
	return valkey.ClientOption{InitAddress: env.Cfg.Addrs[:1], ForceSingleClient: true, Username: env.Cfg.Username, Password: env.Cfg.Password, DisableCache: true}, nil
}

// ---- connect with backoff

// gate listens on a free port only after two failed dials, then proxies to target.
type gate struct {
	addr, target string
	fails        atomic.Int32
	mu           sync.Mutex
	ln           net.Listener
}

func newGate(target string) (*gate, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close() // refused until two failures were seen
	return &gate{addr: addr, target: target}, nil
}

// failed records a failed dial; after the second it opens the gate.
func (g *gate) failed() {
	if g.fails.Add(1) != 2 {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	ln, err := net.Listen("tcp", g.addr)
	if err != nil {
		return
	}
	g.ln = ln
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go proxy(c, g.target)
		}
	}()
}

func proxy(c net.Conn, target string) {
	defer c.Close()
	s, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	defer s.Close()
	go func() { _, _ = io.Copy(s, c); s.Close() }()
	_, _ = io.Copy(c, s)
}

func (g *gate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ln != nil {
		g.ln.Close()
	}
}

// failHandler calls fn for every "connect failed" log record.
type failHandler struct{ fn func() }

func (h failHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h failHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "connect failed") {
		h.fn()
	}
	return nil
}
func (h failHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h failHandler) WithGroup(string) slog.Handler      { return h }

func kvBackoff(ctx context.Context, env *Env) (Measure, error) {
	if !env.Plain {
		return Measure{}, ErrSkip
	}
	g, err := newGate(env.Cfg.Addrs[0])
	if err != nil {
		return Measure{}, err
	}
	defer g.close()
	cfg := env.Cfg
	cfg.Addrs = []string{g.addr}
	cfg.ClientName = env.name("backoff", strconv.FormatInt(time.Now().UnixNano(), 36))
	cfg.Logger = slog.New(failHandler{g.failed})
	c, err := keyvalue.Open(cfg)
	if err != nil {
		return Measure{}, err
	}
	defer c.Close()
	start := time.Now()
	if err := c.Do(ctx, c.B().Ping().Build()).Error(); err != nil {
		return Measure{}, err
	}
	return Measure{Value: per(time.Since(start), 1, "ms")}, nil
}

// naiveBackoff retries a failed dial after a fixed 100ms, as hand-rolled
// reconnect loops (and phpredis' default retry interval) do.
func naiveBackoff(ctx context.Context, env *Env) (Measure, error) {
	opt, err := plainOption(env)
	if err != nil {
		return Measure{}, err
	}
	g, err := newGate(env.Cfg.Addrs[0])
	if err != nil {
		return Measure{}, err
	}
	defer g.close()
	opt.InitAddress = []string{g.addr}
	start := time.Now()
	for attempt := 0; attempt < 50; attempt++ {
		c, err := valkey.NewClient(opt)
		if err == nil {
			err = c.Do(ctx, c.B().Ping().Build()).Error()
			c.Close()
			if err == nil {
				return Measure{Value: per(time.Since(start), 1, "ms")}, nil
			}
		}
		g.failed()
		time.Sleep(100 * time.Millisecond)
	}
	return Measure{}, fmt.Errorf("naive backoff: no connection after 50 attempts")
}

// ---- cache

// tagged is what both cache implementations offer.
type tagged interface {
	Set(ctx context.Context, id string, data []byte, tags []string, lifetime time.Duration) error
	Get(ctx context.Context, id string) ([]byte, error)
	FlushByTags(ctx context.Context, tags ...string) error
	Flush(ctx context.Context) error
	CollectGarbage(ctx context.Context) error
}

type kvCache struct{ *cache.Backend }

func (k kvCache) FlushByTags(ctx context.Context, tags ...string) error {
	_, err := k.Backend.FlushByTags(ctx, tags...)
	return err
}
func (k kvCache) Flush(ctx context.Context) error { _, err := k.Backend.Flush(ctx, nil); return err }
func (k kvCache) CollectGarbage(ctx context.Context) error {
	_, err := k.Backend.CollectGarbage(ctx, nil)
	return err
}

// openCache returns a fresh cache of either kind and a cleanup function.
func openCache(env *Env, kv bool, scenario string, opts cache.Options) (tagged, *keyvalue.Client, func(), error) {
	c, err := env.client("")
	if err != nil {
		return nil, nil, nil, err
	}
	name := env.name(strings.ReplaceAll(scenario, "/", "-"), strconv.FormatInt(time.Now().UnixNano(), 36))
	if !kv {
		if !env.Plain {
			c.Close()
			return nil, nil, nil, ErrSkip
		}
		n := naive.New(c, name+":")
		return n, c, func() { _ = n.Flush(context.Background()); c.Close() }, nil
	}
	opts.Logger = quiet
	b, err := cache.New(c, name, opts)
	if err != nil {
		c.Close()
		return nil, nil, nil, err
	}
	return kvCache{b}, c, func() { _, _ = b.Flush(context.Background(), nil); c.Close() }, nil
}

// fill writes n entries with 32 goroutines; entry i gets tag i%tags.
func fill(ctx context.Context, t tagged, n, tags int, lifetime time.Duration) error {
	var wg sync.WaitGroup
	var firstErr atomic.Value
	data := []byte(`{"html":"<p>cached</p>"}`)
	for w := range 32 {
		wg.Go(func() {
			for i := w; i < n; i += 32 {
				if err := t.Set(ctx, "e"+strconv.Itoa(i), data, []string{"t" + strconv.Itoa(i%tags)}, lifetime); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		return err
	}
	return nil
}

func tagNames(n int) []string {
	t := make([]string, n)
	for i := range t {
		t[i] = "t" + strconv.Itoa(i)
	}
	return t
}

func cacheSet(tags int, kv bool) Impl {
	return func(ctx context.Context, env *Env) (Measure, error) {
		t, _, done, err := openCache(env, kv, fmt.Sprintf("set%d", tags), cache.Options{})
		if err != nil {
			return Measure{}, err
		}
		defer done()
		all := tagNames(tags)
		data := make([]byte, 512)
		n := env.sizes().setOps
		start := time.Now()
		for i := range n {
			ts := all
			if i%2 == 1 {
				ts = all[:max(1, tags-1)] // every set also computes a tag diff
			}
			if err := t.Set(ctx, "id"+strconv.Itoa(i%100), data, ts, time.Hour); err != nil {
				return Measure{}, err
			}
		}
		return Measure{Value: per(time.Since(start), n, "µs")}, nil
	}
}

// fillThenTime fills a fresh cache with n entries over tags tags, waits
// settle (to let short lifetimes run out), and times op, in ms.
func fillThenTime(kv bool, scenario string, n, tags int, lifetime, settle time.Duration, op func(tagged, context.Context) error) Impl {
	return func(ctx context.Context, env *Env) (Measure, error) {
		t, _, done, err := openCache(env, kv, scenario, cache.Options{})
		if err != nil {
			return Measure{}, err
		}
		defer done()
		if err := fill(ctx, t, env.n(n), tags, lifetime); err != nil {
			return Measure{}, err
		}
		time.Sleep(settle)
		start := time.Now()
		if err := op(t, ctx); err != nil {
			return Measure{}, err
		}
		return Measure{Value: per(time.Since(start), 1, "ms")}, nil
	}
}

func flushByTags(kv bool) Impl {
	return fillThenTime(kv, "fbt", 1000, 10, time.Hour, 0, func(t tagged, ctx context.Context) error { //nolint:revive // method-expression shape
		return t.FlushByTags(ctx, tagNames(10)...)
	})
}

func flushAll(n int, kv bool) Impl {
	return fillThenTime(kv, "flush", n, 50, time.Hour, 0, tagged.Flush)
}

// flushStall flushes a 100,000-entry cache while a second client sends
// PINGs back to back; the result is the slowest PING.
func flushStall(kv bool) Impl {
	return func(ctx context.Context, env *Env) (Measure, error) {
		t, _, done, err := openCache(env, kv, "stall", cache.Options{})
		if err != nil {
			return Measure{}, err
		}
		defer done()
		if err := fill(ctx, t, env.n(100000), 100, time.Hour); err != nil {
			return Measure{}, err
		}
		probe, err := env.client(env.name("probe", strconv.FormatInt(time.Now().UnixNano(), 36)))
		if err != nil {
			return Measure{}, err
		}
		defer probe.Close()
		if err := probe.Do(ctx, probe.B().Ping().Build()).Error(); err != nil {
			return Measure{}, err
		}
		stop := make(chan struct{})
		var worst atomic.Int64
		var wg sync.WaitGroup
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				t0 := time.Now()
				_ = probe.Do(ctx, probe.B().Ping().Build()).Error()
				d := int64(time.Since(t0))
				for {
					w := worst.Load()
					if d <= w || worst.CompareAndSwap(w, d) {
						break
					}
				}
			}
		})
		time.Sleep(20 * time.Millisecond)
		err = t.Flush(ctx)
		close(stop)
		wg.Wait()
		if err != nil {
			return Measure{}, err
		}
		return Measure{Value: per(time.Duration(worst.Load()), 1, "ms")}, nil
	}
}

func gc(kv bool) Impl {
	return fillThenTime(kv, "gc", 5000, 20, 50*time.Millisecond, 150*time.Millisecond, tagged.CollectGarbage)
}

// parallel runs total calls of fn over workers goroutines and returns the
// elapsed time.
func parallel(workers, total int, fn func() error) (time.Duration, error) {
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

func getParallel(kv bool) Impl {
	return func(ctx context.Context, env *Env) (Measure, error) {
		t, _, done, err := openCache(env, kv, "get", cache.Options{})
		if err != nil {
			return Measure{}, err
		}
		defer done()
		if err := t.Set(ctx, "hot", make([]byte, 512), []string{"t"}, time.Hour); err != nil {
			return Measure{}, err
		}
		n := env.sizes().getOps
		took, err := parallel(64, n, func() error { _, err := t.Get(ctx, "hot"); return err })
		if err != nil {
			return Measure{}, err
		}
		return Measure{Value: float64(n) / took.Seconds()}, nil
	}
}

func getLocal(kv bool) Impl {
	return func(ctx context.Context, env *Env) (Measure, error) {
		opts := cache.Options{}
		if kv {
			opts.LocalCacheTTL = time.Minute
		}
		t, _, done, err := openCache(env, kv, "local", opts)
		if err != nil {
			return Measure{}, err
		}
		defer done()
		if err := t.Set(ctx, "hot", make([]byte, 512), []string{"t"}, time.Hour); err != nil {
			return Measure{}, err
		}
		if _, err := t.Get(ctx, "hot"); err != nil { // warm the local copy
			return Measure{}, err
		}
		n := env.sizes().localHits
		if !kv {
			n /= 20 // server round trips: fewer suffice
		}
		start := time.Now()
		for range n {
			if _, err := t.Get(ctx, "hot"); err != nil {
				return Measure{}, err
			}
		}
		return Measure{Value: per(time.Since(start), n, "ns")}, nil
	}
}

// ---- sessions

var sessionKey = []byte("keyvalue-bench-session-key-32-bytes!")

func openSessions(env *Env, scenario string) (*session.Store, *keyvalue.Client, error) {
	c, err := env.client("")
	if err != nil {
		return nil, nil, err
	}
	st, err := session.New(c, session.Options{Prefix: env.name(scenario, strconv.FormatInt(time.Now().UnixNano(), 36)), Key: sessionKey, Logger: quiet})
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return st, c, nil
}

func getAll500(kv bool) Impl {
	return func(ctx context.Context, env *Env) (Measure, error) {
		data := json.RawMessage(`{"user":"42","cart":[1,2,3]}`)
		if kv {
			st, c, err := openSessions(env, "getall")
			if err != nil {
				return Measure{}, err
			}
			defer c.Close()
			for range env.n(500) {
				if _, err := st.Create(ctx, session.Record{Data: data}); err != nil {
					return Measure{}, err
				}
			}
			start := time.Now()
			recs, err := st.GetAll(ctx)
			took := time.Since(start)
			if want := env.n(500); err == nil && len(recs) != want {
				err = fmt.Errorf("listed %d sessions, want %d", len(recs), want)
			}
			if _, rerr := st.CollectGarbage(ctx); rerr != nil && err == nil {
				err = rerr
			}
			removeAll(ctx, st, recs)
			return Measure{Value: per(took, 1, "ms")}, err
		}
		ns, done, err := naiveSessions(env, "naive-sess")
		if err != nil {
			return Measure{}, err
		}
		defer done()
		for range env.n(500) {
			if err := ns.Set(ctx, session.NewID(), data, time.Hour); err != nil {
				return Measure{}, err
			}
		}
		start := time.Now()
		all, err := ns.GetAll(ctx)
		took := time.Since(start)
		if want := env.n(500); err == nil && len(all) != want {
			err = fmt.Errorf("listed %d sessions, want %d", len(all), want)
		}
		return Measure{Value: per(took, 1, "ms")}, err
	}
}

// naiveSessions opens the baseline session store in a fresh sub-namespace.
func naiveSessions(env *Env, scenario string) (*naive.Sessions, func(), error) {
	if !env.Plain {
		return nil, nil, ErrSkip
	}
	c, err := env.client("")
	if err != nil {
		return nil, nil, err
	}
	return naive.NewSessions(c, env.name(scenario, strconv.FormatInt(time.Now().UnixNano(), 36))+":"), c.Close, nil
}

func removeAll(ctx context.Context, st *session.Store, recs []session.Record) {
	for _, r := range recs {
		_, _ = st.Remove(ctx, r.ID)
	}
}

func renew(kv bool) Impl {
	return func(ctx context.Context, env *Env) (Measure, error) {
		n := env.sizes().renewOps
		if kv {
			st, c, err := openSessions(env, "renew")
			if err != nil {
				return Measure{}, err
			}
			defer c.Close()
			rec, err := st.Create(ctx, session.Record{UserID: "42"})
			if err != nil {
				return Measure{}, err
			}
			id := rec.ID
			start := time.Now()
			for range n {
				if id, err = st.Renew(ctx, id); err != nil {
					return Measure{}, err
				}
			}
			took := time.Since(start)
			_, _ = st.RemoveByUser(ctx, "42")
			return Measure{Value: per(took, n, "µs")}, nil
		}
		ns, done, err := naiveSessions(env, "naive-renew")
		if err != nil {
			return Measure{}, err
		}
		defer done()
		id := session.NewID()
		if err := ns.Set(ctx, id, []byte(`{"user":"42"}`), time.Hour); err != nil {
			return Measure{}, err
		}
		start := time.Now()
		for range n {
			next := session.NewID()
			if err := ns.Renew(ctx, id, next, time.Hour); err != nil {
				return Measure{}, err
			}
			id = next
		}
		return Measure{Value: per(time.Since(start), n, "µs")}, nil
	}
}

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

// LockImpl turns a locker factory into the two lock scenarios' Impls.
func lockImpl(kv bool, measure func(ctx context.Context, env *Env, l Locker) (Measure, error)) Impl {
	return func(ctx context.Context, env *Env) (Measure, error) {
		c, err := env.client("")
		if err != nil {
			return Measure{}, err
		}
		defer c.Close()
		name := "lock-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		var l Locker
		if kv {
			if l, err = KeyvalueLocker(env, c, name); err != nil {
				return Measure{}, err
			}
		} else {
			l = NaiveLocker(env, c, name)
		}
		return measure(ctx, env, l)
	}
}

func handoff(kv bool) Impl { return lockImpl(kv, HandoffMeasure) }

func contended(kv bool) Impl { return lockImpl(kv, ContendedMeasure) }

// ReportPercentiles reports the median and 99th percentile of sorted
// latencies as benchmark metrics (p50-µs, p99-µs).
func ReportPercentiles(b interface{ ReportMetric(float64, string) }, lat []time.Duration) {
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// HandoffMeasure measures release → a waiting goroutine acquires: the
// median in Value, the 99th percentile in Extra["p99"], in µs.
func HandoffMeasure(ctx context.Context, env *Env, l Locker) (Measure, error) {
	lat, err := Handoffs(ctx, l, env.sizes().handoffs)
	if err != nil {
		return Measure{}, err
	}
	p := func(q float64) float64 { return per(lat[min(len(lat)-1, int(q*float64(len(lat))))], 1, "µs") }
	return Measure{Value: p(0.5), Extra: map[string]float64{"p99": p(0.99)}}, nil
}

// Handoffs takes l, starts a goroutine waiting for it, releases it and
// times until the waiter holds it; n times. The latencies come sorted.
func Handoffs(ctx context.Context, l Locker, n int) ([]time.Duration, error) {
	var lat []time.Duration
	for range n {
		unlock, err := l.Lock(ctx)
		if err != nil {
			return nil, err
		}
		got := make(chan error, 1)
		var at time.Time
		go func() {
			u, err := l.Lock(ctx)
			at = time.Now()
			if err == nil {
				err = u()
			}
			got <- err
		}()
		time.Sleep(3 * time.Millisecond) // the waiter waits now
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

// ContendedMeasure is lock+unlock throughput with 8 contenders, in ops/s.
func ContendedMeasure(ctx context.Context, env *Env, l Locker) (Measure, error) {
	n := env.sizes().lockOps
	took, err := Contend(ctx, l, 8, n)
	if err != nil {
		return Measure{}, err
	}
	return Measure{Value: float64(n) / took.Seconds()}, nil
}

// Contend runs n lock+unlock cycles over workers goroutines and returns
// the elapsed time.
func Contend(ctx context.Context, l Locker, workers, n int) (time.Duration, error) {
	return parallel(workers, n, func() error {
		unlock, err := l.Lock(ctx)
		if err != nil {
			return err
		}
		return unlock()
	})
}
