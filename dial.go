package keyvalue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valkey-io/valkey-go"
)

// lazy is a Client's connection state: the valkey-go client once dialled,
// and the dial in flight before that.
type lazy struct {
	cfg     Config
	log     *slog.Logger
	builder valkey.Builder
	// min are the oldest servers the client accepts (supported).
	min minimums

	client atomic.Pointer[valkey.Client]

	mu      sync.Mutex // guards the fields below and opt
	opt     valkey.ClientOption
	dialing chan struct{} // closed when the dial in flight ends
	lastErr error         // the result of the last dial
	// leaderGaveUp is true when the last dial ended only because the
	// context of the caller that ran it was done; waiters then dial again.
	leaderGaveUp bool
	stopWatch    chan struct{} // closed by close: ends the sentinel watcher

	// closing is done once close starts: the client is closed, blocking
	// commands end, dials fail with ErrClosed.
	closing     context.Context
	closingDone context.CancelFunc
}

// get returns the connected client, dialling if needed.
func (s *lazy) get(ctx context.Context) (valkey.Client, error) {
	if c := s.client.Load(); c != nil {
		return *c, nil
	}
	return s.dial(ctx)
}

func (s *lazy) dial(ctx context.Context) (valkey.Client, error) {
	for {
		s.mu.Lock()
		if s.closing.Err() != nil {
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
		if err == nil && s.closing.Err() != nil {
			c.Close()
			c, err = nil, ErrClosed
		}
		if err == nil {
			s.client.Store(&c)
			if s.cfg.Mode == ModeSentinel && s.cfg.Sentinel.RefreshInterval > 0 && s.stopWatch == nil {
				s.stopWatch = make(chan struct{})
				go s.watchSentinels(s.stopWatch)
			}
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
func (s *lazy) connect(ctx context.Context) (valkey.Client, error) {
	var prev time.Duration
	var last *ConnectError
	for attempt := 1; ; attempt++ {
		s.mu.Lock()
		opt := s.opt
		s.mu.Unlock()
		c, err := newClientCtx(ctx, opt)
		if err == nil && s.cfg.Mode == ModeCluster && c.Mode() != valkey.ClientModeCluster {
			// valkey-go quietly falls back to a single-node client when its
			// one seed is not a cluster node: a redis+cluster:// URL must not
			// work against a standalone server by accident.
			go c.Close()
			c, err = nil, errNotCluster
		}
		if err == nil {
			if err = checkServer(ctx, c, s.min); err != nil {
				go c.Close()
				c = nil
			}
		}
		if err == nil {
			return c, nil
		}
		if ctx.Err() != nil {
			return nil, &gaveUpError{cfg: s.cfg.String(), ctxErr: ctx.Err(), last: last}
		}
		if opt.Standalone.EnableRedirect && strings.Contains(strings.ToUpper(err.Error()), "CAPA") {
			s.log.Warn("keyvalue: server has no CLIENT CAPA redirect (Valkey 8+); continuing without following redirects",
				"endpoint", s.cfg.String(), "error", err)
			s.mu.Lock()
			s.opt.Standalone.EnableRedirect = false
			s.mu.Unlock()
			attempt-- // not a failed attempt
			continue
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
		if s.cfg.Mode != ModeSentinel && !isSocketPath(s.cfg.Addrs[0]) {
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

// errNotCluster: mode cluster, but the server is not a cluster node.
var errNotCluster = errors.New("the server is not in cluster mode (CLUSTER SLOTS refused)")

// closeWait bounds how long Close waits for valkey-go to close its
// connections; a server that hangs would otherwise hold Close (valkey-go's
// Close can wait on a command sent to it).
const closeWait = time.Second

// close closes the valkey-go client, if one was dialled, and makes every
// later dial fail with ErrClosed. It returns within closeWait; the rest of
// the closing goes on in the background.
func (s *lazy) close() {
	s.mu.Lock()
	if s.closing.Err() != nil {
		s.mu.Unlock()
		return // closed before
	}
	s.closingDone()
	if s.stopWatch != nil {
		close(s.stopWatch)
	}
	s.mu.Unlock()
	c := s.client.Swap(nil)
	if c == nil {
		return
	}
	done := make(chan struct{})
	go func() {
		(*c).Close()
		close(done)
	}()
	t := time.NewTimer(closeWait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		s.log.Warn("keyvalue: a server did not let its connections close within a second; they close in the background", "endpoint", s.cfg.String())
	}
}

// doBlocking sends a blocking command (BLPOP of a lock waiter) that also
// ends when the client closes: at once, with ErrClosed, whatever the
// connection does (a cut network can hold the command's own end a while;
// it finishes in the background).
func (s *lazy) doBlocking(ctx context.Context, vc valkey.Client, cmd valkey.Completed) valkey.ValkeyResult {
	bctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.closing, cancel)
	defer stop()
	done := make(chan valkey.ValkeyResult, 1)
	head := sentOf(cmd.Commands())
	go func() { done <- vc.Do(bctx, cmd) }()
	select {
	case r := <-done:
		if ctx.Err() == nil && s.closing.Err() != nil && r.Error() != nil {
			return valkey.NewErrorResult(ErrClosed)
		}
		return s.result(ctx, head, r)
	case <-s.closing.Done():
		return valkey.NewErrorResult(ErrClosed)
	}
}

// result turns a command's failure to reach the server into a
// *ConnectError (see unreachable).
func (s *lazy) result(ctx context.Context, cmd sent, r valkey.ValkeyResult) valkey.ValkeyResult {
	if err := r.Error(); err != nil {
		if pe := s.permissionError(cmd, err); pe != nil {
			return valkey.NewErrorResult(pe)
		}
		if u := s.unreachable(ctx, err); u != err {
			return valkey.NewErrorResult(u)
		}
	}
	return r
}

// results is result for each of a pipeline's results; cmds are the
// commands as sent.
func (s *lazy) results(ctx context.Context, cmds []sent, rs []valkey.ValkeyResult) []valkey.ValkeyResult {
	for i, r := range rs {
		if r.Error() != nil {
			rs[i] = s.result(ctx, cmds[i], r)
		}
	}
	return rs
}

// unreachable returns err as a *ConnectError matching ErrUnreachable when
// it says that the command got no reply (within io_timeout) or lost its
// connection, and err itself otherwise: a reply of the server (errors
// included), the caller's own cancellation or deadline, ErrClosed.
func (s *lazy) unreachable(ctx context.Context, err error) error {
	if _, isReply := valkey.IsValkeyErr(err); isReply || valkey.IsValkeyNil(err) || ctx.Err() != nil {
		return err
	}
	var ce *ConnectError
	if errors.As(err, &ce) || errors.Is(err, ErrClosed) || errors.Is(err, valkey.ErrClosing) {
		return err
	}
	var hint string
	switch {
	case isTimeout(err):
		hint = fmt.Sprintf("no reply within io_timeout (%s): the network to the server may be cut, or the server frozen or overloaded", s.cfg.IOTimeout)
	case isConnectionLoss(err):
		hint = "the connection was lost; the next command dials again"
	default:
		return err // a client-side refusal (a command valkey-go does not send), not the network
	}
	return &ConnectError{Mode: s.cfg.Mode, Addrs: s.cfg.Addrs, Attempts: 1, Kind: ErrUnreachable, Err: err, Hint: hint, lost: true}
}

// isConnectionLoss reports errors of a connection that broke.
func isConnectionLoss(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, valkey.ErrDoCacheAborted)
}
