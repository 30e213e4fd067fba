package keyvalue

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/valkey-io/valkey-go"
)

// Client is a lazy handle on a shared valkey-go client. It implements
// valkey.Client, so anything that takes a valkey.Client (the cache, session
// and lock packages, or your own code) accepts it.
//
// Open does no network I/O. The first command dials; concurrent first
// commands share that one dial. A failed dial is retried with the configured
// backoff, bounded by the command's context and Retry.MaxAttempts; the next
// command after a failure dials again. Handles opened with equal
// configurations share one underlying client, which is closed when the last
// handle is closed.
//
// Commands that cannot be sent because the connection cannot be established
// fail with a *ConnectError (as the result's error); after Close they fail
// with ErrClosed.
type Client struct {
	s      *shared
	closed atomic.Bool
}

var _ valkey.Client = (*Client)(nil)

// Open returns a handle for cfg without connecting. It validates cfg and
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
	key, err := endpointKey(n)
	if err != nil {
		return nil, err
	}
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if s, ok := registry.m[key]; ok {
		s.refs++
		return &Client{s: s}, nil
	}
	opt, err := clientOption(n, log)
	if err != nil {
		return nil, err
	}
	s := &shared{key: key, cfg: n, opt: opt, log: log, refs: 1, builder: builderFor(n.Mode)}
	registry.m[key] = s
	return &Client{s: s}, nil
}

// OpenURL is Open(ParseURL(url)).
func OpenURL(url string) (*Client, error) {
	cfg, err := ParseURL(url)
	if err != nil {
		return nil, err
	}
	return Open(cfg)
}

// registry holds one shared client per endpoint configuration.
var registry = struct {
	mu sync.Mutex
	m  map[string]*shared
}{m: map[string]*shared{}}

// endpointKey identifies a normalized configuration: handles with equal
// keys share a client. Secrets only enter it through a hash.
func endpointKey(n Config) (string, error) {
	n.Caches = nil // cache declarations do not change the connection
	b, err := json.Marshal(n)
	if err != nil {
		return "", fmt.Errorf("keyvalue: encode config: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// shared is the state behind every handle on one endpoint.
type shared struct {
	key     string
	cfg     Config
	log     *slog.Logger
	builder valkey.Builder
	refs    int // guarded by registry.mu

	client atomic.Pointer[valkey.Client]

	mu      sync.Mutex // guards the fields below and opt
	opt     valkey.ClientOption
	dialing chan struct{} // closed when the dial in flight ends
	lastErr error         // the result of the last dial
	// leaderGaveUp is true when the last dial ended only because the
	// context of the caller that ran it was done; waiters then dial again.
	leaderGaveUp bool
	closed       bool
}

// get returns the connected client, dialling if needed.
func (s *shared) get(ctx context.Context) (valkey.Client, error) {
	if c := s.client.Load(); c != nil {
		return *c, nil
	}
	return s.dial(ctx)
}

func (s *shared) dial(ctx context.Context) (valkey.Client, error) {
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, ErrClosed
		}
		if c := s.client.Load(); c != nil {
			s.mu.Unlock()
			return *c, nil
		}
		if ch := s.dialing; ch != nil {
			// Another caller is dialling: wait for its result.
			s.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				return nil, fmt.Errorf("keyvalue: waiting for the connection to %s: %w", s.cfg, ctx.Err())
			}
			s.mu.Lock()
			err, again := s.lastErr, s.leaderGaveUp
			s.mu.Unlock()
			if c := s.client.Load(); c != nil {
				return *c, nil
			}
			if again {
				continue
			}
			return nil, err
		}
		ch := make(chan struct{})
		s.dialing = ch
		s.mu.Unlock()

		c, err := s.connect(ctx)

		s.mu.Lock()
		if err == nil && s.closed {
			c.Close()
			c, err = nil, ErrClosed
		}
		if err == nil {
			s.client.Store(&c)
		}
		s.lastErr = err
		s.leaderGaveUp = err != nil && ctx.Err() != nil
		s.dialing = nil
		close(ch)
		s.mu.Unlock()
		return c, err
	}
}

// connect dials with retries and backoff until it succeeds, the error is
// permanent, attempts run out or ctx is done.
func (s *shared) connect(ctx context.Context) (valkey.Client, error) {
	var prev time.Duration
	var last *ConnectError
	for attempt := 1; ; attempt++ {
		s.mu.Lock()
		opt := s.opt
		s.mu.Unlock()
		c, err := newClientCtx(ctx, opt)
		if err == nil {
			return c, nil
		}
		if ctx.Err() != nil {
			return nil, &gaveUpError{cfg: s.cfg.String(), ctxErr: ctx.Err(), last: last}
		}
		if errors.Is(err, valkey.ErrNoCache) && !opt.DisableCache {
			s.log.Warn("keyvalue: server refuses client-side caching (CLIENT TRACKING / RESP3); continuing without it",
				"endpoint", s.cfg.String(), "error", err)
			s.mu.Lock()
			s.opt.DisableCache = true
			s.mu.Unlock()
			attempt-- // not a failed attempt
			continue
		}
		if s.cfg.Mode != ModeSentinel {
			err = diagnose(ctx, s.cfg.Addrs[0], s.cfg.DialTimeout, opt.TLSConfig, err)
		}
		last = classify(&s.cfg, err)
		last.Attempts = attempt
		if last.Permanent() || attempt >= s.cfg.Retry.MaxAttempts {
			return nil, last
		}
		prev = s.cfg.Retry.Delay(attempt, prev, nil)
		s.log.Warn("keyvalue: connect failed, retrying", "endpoint", s.cfg.String(),
			"attempt", attempt, "max_attempts", s.cfg.Retry.MaxAttempts, "retry_in", prev, "error", err)
		t := time.NewTimer(prev)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, &gaveUpError{cfg: s.cfg.String(), ctxErr: ctx.Err(), last: last}
		}
	}
}

// gaveUpError reports a dial abandoned because the caller's context ended.
// It matches the context's error and, if a dial had failed before, that
// ConnectError.
type gaveUpError struct {
	cfg    string
	ctxErr error
	last   *ConnectError
}

func (e *gaveUpError) Error() string {
	s := fmt.Sprintf("keyvalue: connect to %s: gave up: %v", e.cfg, e.ctxErr)
	if e.last != nil {
		s += fmt.Sprintf("; last error after %d attempts: %v: %v", e.last.Attempts, e.last.Kind, e.last.Err)
		if e.last.Hint != "" {
			s += " — " + e.last.Hint
		}
	}
	return s
}

func (e *gaveUpError) Unwrap() []error {
	if e.last == nil {
		return []error{e.ctxErr}
	}
	return []error{e.ctxErr, e.last}
}

// newClientCtx runs valkey.NewClient (which has no context) so that the
// caller can give up when ctx is done; a client that arrives late is closed.
func newClientCtx(ctx context.Context, opt valkey.ClientOption) (valkey.Client, error) {
	type result struct {
		c   valkey.Client
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := valkey.NewClient(opt)
		done <- result{c, err}
	}()
	select {
	case r := <-done:
		return r.c, r.err
	case <-ctx.Done():
		go func() {
			if r := <-done; r.c != nil {
				r.c.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// release drops one handle; the last one closes the client.
func (s *shared) release() {
	registry.mu.Lock()
	s.refs--
	last := s.refs == 0
	if last && registry.m[s.key] == s {
		delete(registry.m, s.key)
	}
	registry.mu.Unlock()
	if !last {
		return
	}
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	if c := s.client.Swap(nil); c != nil {
		(*c).Close()
	}
}

// clientOption translates a normalized Config into valkey-go options.
func clientOption(n Config, log *slog.Logger) (valkey.ClientOption, error) {
	tlsData, err := n.TLS.build("tls", log)
	if err != nil {
		return valkey.ClientOption{}, err
	}
	opt := valkey.ClientOption{
		InitAddress:       n.Addrs,
		Username:          n.Username,
		Password:          n.Password,
		ClientName:        n.ClientName,
		SelectDB:          n.DB,
		TLSConfig:         tlsData,
		Dialer:            net.Dialer{Timeout: n.DialTimeout, KeepAlive: 30 * time.Second},
		ConnWriteTimeout:  n.IOTimeout,
		ConnLifetime:      n.ConnLifetime,
		PipelineMultiplex: n.PipelineMultiplex,
		BlockingPoolSize:  n.BlockingPoolSize,
		MaxFlushDelay:     n.MaxFlushDelay,
		DisableCache:      n.ClientCache.Disable,
		CacheSizeEachConn: n.ClientCache.SizePerConn,
		DisableRetry:      n.Retry.DisableCommandRetry,
	}
	if n.ReadFromReplicas {
		opt.SendToReplicas = func(cmd valkey.Completed) bool { return cmd.IsReadOnly() }
	}
	retry := n.Retry
	opt.RetryDelay = func(attempts int, _ valkey.Completed, _ error) time.Duration {
		// attempts counts the tries made so far, starting at 1.
		if attempts >= retry.MaxAttempts {
			return -1 // give up: the error reaches the caller
		}
		return retry.Delay(attempts, 0, nil)
	}
	switch n.Mode {
	case ModeStandalone:
		opt.ForceSingleClient = true
	case ModeSentinel:
		sentTLS, err := n.Sentinel.TLS.build("sentinel.tls", log)
		if err != nil {
			return valkey.ClientOption{}, err
		}
		opt.Sentinel = valkey.SentinelOption{
			MasterSet:               n.Sentinel.Master,
			Username:                n.Sentinel.Username,
			Password:                n.Sentinel.Password,
			ClientName:              n.ClientName,
			TLSConfig:               sentTLS,
			Dialer:                  net.Dialer{Timeout: n.DialTimeout, KeepAlive: 30 * time.Second},
			TopologyRefreshInterval: n.Sentinel.RefreshInterval,
		}
	case ModeCluster:
		opt.ClusterOption.ShardsRefreshInterval = 0 // refreshed on MOVED/ASK and node loss
	}
	return opt, nil
}

// builderFor returns the command builder valkey-go uses for the mode, so
// that B() works before the first dial. valkey.Builder has no public
// constructor: its only field is the slot mode, the same internal constants
// valkey-go's own clients use (TestBuilderMatchesValkeyGo keeps this honest).
func builderFor(m Mode) valkey.Builder {
	const (
		initSlot = uint16(1 << 14) // cluster: compute slots, reject cross-slot commands
		noSlot   = uint16(1 << 15) // standalone and sentinel: no slot checks
	)
	var b valkey.Builder
	if unsafe.Sizeof(b) != unsafe.Sizeof(uint16(0)) {
		panic("keyvalue: valkey.Builder layout changed; update builderFor")
	}
	ks := noSlot
	if m == ModeCluster {
		ks = initSlot
	}
	*(*uint16)(unsafe.Pointer(&b)) = ks
	return b
}

// Connect dials now instead of on the first command, e.g. to fail fast at
// start-up. It returns nil if the client is already connected.
func (c *Client) Connect(ctx context.Context) error {
	_, err := c.conn(ctx)
	return err
}

// Config returns the normalized configuration the handle was opened with.
func (c *Client) Config() Config { return c.s.cfg }

// Connected reports whether the shared client has been dialled.
func (c *Client) Connected() bool { return !c.closed.Load() && c.s.client.Load() != nil }

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
	if c.closed.Load() {
		return nil, ErrClosed
	}
	return c.s.get(ctx)
}

// B returns the command builder. It works before the first dial.
func (c *Client) B() valkey.Builder { return c.s.builder }

// Do sends one command, dialling first if needed.
func (c *Client) Do(ctx context.Context, cmd valkey.Completed) valkey.ValkeyResult {
	vc, err := c.conn(ctx)
	if err != nil {
		return valkey.NewErrorResult(err)
	}
	return vc.Do(ctx, cmd)
}

// DoMulti pipelines commands in one round trip, dialling first if needed.
func (c *Client) DoMulti(ctx context.Context, cmds ...valkey.Completed) []valkey.ValkeyResult {
	vc, err := c.conn(ctx)
	if err != nil {
		return fillErr(len(cmds), err)
	}
	return vc.DoMulti(ctx, cmds...)
}

// DoCache sends a cacheable command through client-side caching (a plain
// command when caching is off).
func (c *Client) DoCache(ctx context.Context, cmd valkey.Cacheable, ttl time.Duration) valkey.ValkeyResult {
	vc, err := c.conn(ctx)
	if err != nil {
		return valkey.NewErrorResult(err)
	}
	return vc.DoCache(ctx, cmd, ttl)
}

// DoMultiCache is DoCache for several commands.
func (c *Client) DoMultiCache(ctx context.Context, multi ...valkey.CacheableTTL) []valkey.ValkeyResult {
	vc, err := c.conn(ctx)
	if err != nil {
		return fillErr(len(multi), err)
	}
	return vc.DoMultiCache(ctx, multi...)
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

// Close releases this handle. The shared client closes with the last
// handle on the endpoint. Close is idempotent.
func (c *Client) Close() {
	if c.closed.CompareAndSwap(false, true) {
		c.s.release()
	}
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
