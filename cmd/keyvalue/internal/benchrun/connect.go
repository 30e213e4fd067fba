package benchrun

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/cache"
	"github.com/valkey-io/valkey-go"
)

// ---- bootstrap

func kvBootstrap(ctx context.Context, env *Env) (Measure, error) {
	cfg := cache.Config{Config: env.Cfg, Caches: map[string]cache.Spec{}}
	cfg.Logger = quiet
	for i := range 11 {
		cfg.Caches[env.name("boot", strconv.Itoa(i))] = cache.Spec{DefaultLifetime: "720h"}
	}
	start := time.Now()
	group, err := cache.Open(cfg)
	took := time.Since(start)
	if err != nil {
		return Measure{}, err
	}
	group.Close()
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
	return valkey.ClientOption{InitAddress: env.Cfg.Addrs[:1], ForceSingleClient: true, Username: env.Cfg.Username, Password: env.Cfg.Password, DisableCache: true, TLSConfig: env.TLS}, nil
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
