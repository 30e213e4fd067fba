package keyvalue

import (
	"context"
	"log/slog"
	"time"

	"github.com/valkey-io/valkey-go"
)

// Client is a lazily connected valkey-go client. It implements
// valkey.Client, so anything that takes a valkey.Client (the cache, session
// and lock packages, or your own code) accepts it.
//
// Open does no network I/O. The first command dials; concurrent first
// commands share that one dial. A failed dial is retried with the configured
// backoff, bounded by the command's context and Retry.MaxAttempts; the next
// command after a failure dials again.
//
// A Client is one connection pool. To share it, pass it: a cache, a session
// store and a locker built on the same Client use the same connections.
// Every Open returns a new, independent Client, and Close closes exactly
// that one.
//
// Commands that cannot be sent because the connection cannot be established
// fail with a *ConnectError (as the result's error); after Close they fail
// with ErrClosed.
type Client struct {
	s *lazy
}

var _ valkey.Client = (*Client)(nil)

// Open returns a client for cfg without connecting. It validates cfg and
// loads its TLS files, so configuration mistakes surface here, each naming
// the key at fault.
func Open(cfg Config) (*Client, error) {
	n, err := cfg.Normalize()
	if err != nil {
		return nil, err
	}
	log := n.Logger
	if log == nil {
		log = slog.Default()
	}
	opt, err := clientOption(n, log)
	if err != nil {
		return nil, err
	}
	b, err := builderFor(n.Mode)
	if err != nil {
		return nil, err
	}
	closing, closingDone := context.WithCancel(context.Background())
	return &Client{s: &lazy{cfg: n, opt: opt, log: log, builder: b, min: supported, closing: closing, closingDone: closingDone}}, nil
}

// OpenURL opens a client for a connection URL (see LoadURL).
func OpenURL(url string) (*Client, error) {
	var cfg Config
	if err := LoadURL(url, &cfg); err != nil {
		return nil, err
	}
	return Open(cfg)
}

// Connect dials now instead of on the first command, e.g. to fail fast at
// start-up. It returns nil if the client is already connected.
func (c *Client) Connect(ctx context.Context) error {
	_, err := c.conn(ctx)
	return err
}

// Config returns the normalized configuration the client was opened with.
func (c *Client) Config() Config { return c.s.cfg }

// Connected reports whether the client has been dialled (and not closed).
func (c *Client) Connected() bool { return c.s.closing.Err() == nil && c.s.client.Load() != nil }

// ClientSideCaching reports whether server-assisted client-side caching is
// in use: it is true unless client_cache.disable is set or the server
// refused CLIENT TRACKING when the client connected. Before the first
// connection it reports what was configured.
func (c *Client) ClientSideCaching() bool {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return !c.s.opt.DisableCache
}

func (c *Client) conn(ctx context.Context) (valkey.Client, error) {
	if c.s.closing.Err() != nil {
		return nil, ErrClosed
	}
	return c.s.get(ctx)
}

// B returns the command builder. It works before the first dial.
func (c *Client) B() valkey.Builder { return c.s.builder }

// Do sends one command, dialling first if needed. A command that gets no
// reply, or whose connection is lost, fails with a *ConnectError matching
// ErrUnreachable (see "Bounds" in the package doc). A blocking command
// (BLPOP and the like) ends with ErrClosed as soon as the client is
// closed.
func (c *Client) Do(ctx context.Context, cmd valkey.Completed) valkey.ValkeyResult {
	vc, err := c.conn(ctx)
	if err != nil {
		return valkey.NewErrorResult(err)
	}
	if cmd.IsBlock() {
		return c.s.doBlocking(ctx, vc, cmd)
	}
	head := sentOf(cmd.Commands())
	return c.s.result(ctx, head, vc.Do(ctx, cmd))
}

// DoMulti pipelines commands in one round trip, dialling first if needed.
func (c *Client) DoMulti(ctx context.Context, cmds ...valkey.Completed) []valkey.ValkeyResult {
	vc, err := c.conn(ctx)
	if err != nil {
		return fillErr(len(cmds), err)
	}
	heads := make([]sent, len(cmds))
	for i, cmd := range cmds {
		heads[i] = sentOf(cmd.Commands())
	}
	return c.s.results(ctx, heads, vc.DoMulti(ctx, cmds...))
}

// DoCache sends a cacheable command through client-side caching (a plain
// command when caching is off).
func (c *Client) DoCache(ctx context.Context, cmd valkey.Cacheable, ttl time.Duration) valkey.ValkeyResult {
	vc, err := c.conn(ctx)
	if err != nil {
		return valkey.NewErrorResult(err)
	}
	head := sentOf(cmd.Commands())
	return c.s.result(ctx, head, vc.DoCache(ctx, cmd, ttl))
}

// DoMultiCache is DoCache for several commands.
func (c *Client) DoMultiCache(ctx context.Context, multi ...valkey.CacheableTTL) []valkey.ValkeyResult {
	vc, err := c.conn(ctx)
	if err != nil {
		return fillErr(len(multi), err)
	}
	heads := make([]sent, len(multi))
	for i, m := range multi {
		heads[i] = sentOf(m.Cmd.Commands())
	}
	return c.s.results(ctx, heads, vc.DoMultiCache(ctx, multi...))
}

// DoStream sends a command whose reply is streamed to an io.Writer.
func (c *Client) DoStream(ctx context.Context, cmd valkey.Completed) valkey.ValkeyResultStream {
	vc, err := c.conn(ctx)
	if err != nil {
		return valkey.NewErrorResultStream(err)
	}
	return vc.DoStream(ctx, cmd)
}

// DoMultiStream is DoStream for several commands.
func (c *Client) DoMultiStream(ctx context.Context, multi ...valkey.Completed) valkey.MultiValkeyResultStream {
	vc, err := c.conn(ctx)
	if err != nil {
		return valkey.NewErrorResultStream(err)
	}
	return vc.DoMultiStream(ctx, multi...)
}

// Receive subscribes and calls fn for each message until ctx is done or
// the subscription ends.
func (c *Client) Receive(ctx context.Context, subscribe valkey.Completed, fn func(msg valkey.PubSubMessage)) error {
	vc, err := c.conn(ctx)
	if err != nil {
		return err
	}
	return vc.Receive(ctx, subscribe, fn)
}

// Dedicated runs fn on a connection reserved for it (for WATCH/MULTI).
func (c *Client) Dedicated(fn func(valkey.DedicatedClient) error) error {
	vc, err := c.conn(context.Background())
	if err != nil {
		return err
	}
	return vc.Dedicated(fn)
}

// Dedicate reserves a connection until cancel is called. valkey.Client's
// signature has no error: if the connection cannot be established, the
// returned DedicatedClient fails every command with that error.
func (c *Client) Dedicate() (valkey.DedicatedClient, func()) {
	vc, err := c.conn(context.Background())
	if err != nil {
		return failedDedicated{b: c.s.builder, err: err}, func() {}
	}
	return vc.Dedicate()
}

// Nodes returns a client per node. Before the first dial it dials, bounded
// by the dial timeout and retries; it returns an empty map if that fails.
func (c *Client) Nodes() map[string]valkey.Client {
	vc, err := c.conn(context.Background())
	if err != nil {
		return map[string]valkey.Client{}
	}
	return vc.Nodes()
}

// Mode reports the configured topology without dialling.
func (c *Client) Mode() valkey.ClientMode {
	switch c.s.cfg.Mode {
	case ModeSentinel:
		return valkey.ClientModeSentinel
	case ModeCluster:
		return valkey.ClientModeCluster
	default:
		return valkey.ClientModeStandalone
	}
}

// Close closes the client's connections; commands sent afterwards fail
// with ErrClosed. Close is idempotent.
func (c *Client) Close() {
	c.s.close()
}

func fillErr(n int, err error) []valkey.ValkeyResult {
	rs := make([]valkey.ValkeyResult, n)
	for i := range rs {
		rs[i] = valkey.NewErrorResult(err)
	}
	return rs
}

// failedDedicated is the DedicatedClient returned when no connection could
// be established.
type failedDedicated struct {
	b   valkey.Builder
	err error
}

func (f failedDedicated) B() valkey.Builder { return f.b }
func (f failedDedicated) Do(context.Context, valkey.Completed) valkey.ValkeyResult {
	return valkey.NewErrorResult(f.err)
}
func (f failedDedicated) DoMulti(_ context.Context, cmds ...valkey.Completed) []valkey.ValkeyResult {
	return fillErr(len(cmds), f.err)
}
func (f failedDedicated) Receive(context.Context, valkey.Completed, func(valkey.PubSubMessage)) error {
	return f.err
}
func (f failedDedicated) SetPubSubHooks(valkey.PubSubHooks) <-chan error { return closedErr(f.err) }
func (f failedDedicated) SetOnInvalidations(func([]valkey.ValkeyMessage)) <-chan error {
	return closedErr(f.err)
}
func (f failedDedicated) Close() {}

func closedErr(err error) <-chan error {
	ch := make(chan error, 1)
	ch <- err
	close(ch)
	return ch
}
