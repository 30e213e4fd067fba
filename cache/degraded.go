package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
	"github.com/valkey-io/valkey-go"
)

// ErrUnavailable matches the errors of calls refused without reaching the
// server because the circuit breaker of a cache in degraded mode is open
// (the server failed Options.BreakerThreshold times in a row). Calls are
// tried again after Options.BreakerCooldown.
var ErrUnavailable = errors.New("server unavailable: it failed repeatedly, so calls fail fast until the breaker's cooldown ends")

// Defaults of the degraded mode's circuit breaker.
const (
	DefaultBreakerThreshold = 5
	DefaultBreakerCooldown  = 5 * time.Second
)

// unavailable tells whether err means the server could not be reached or
// cannot serve (a lost or refused connection, a timeout, an open breaker;
// or a reply saying it is loading, busy with a script, without a
// primary, a cluster that is down, a read-only replica or out of memory)
// rather than an answer: another reply error, a miss, or the caller's own
// cancellation.
func unavailable(err error) bool {
	if err == nil || valkey.IsValkeyNil(err) || errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrCorrupt) {
		return false
	}
	var input *InputError
	if errors.As(err, &input) {
		return false
	}
	var ve *valkey.ValkeyError
	if !errors.As(err, &ve) || valkey.IsValkeyNil(ve) {
		return true // not a reply: the connection failed, timed out or was refused
	}
	if ve.IsLoading() || ve.IsClusterDown() {
		return true
	}
	for _, prefix := range []string{"BUSY ", "MASTERDOWN", "READONLY", "OOM ", "NOREPLICAS"} {
		if strings.HasPrefix(ve.Error(), prefix) {
			return true
		}
	}
	return false
}

// breakerClient is a valkey.Client whose commands pass a circuit breaker:
// after threshold consecutive failures to reach the server, commands fail
// at once with ErrUnavailable for the cooldown, then one is let through
// to probe the server.
type breakerClient struct {
	valkey.Client
	cb *gobreaker.CircuitBreaker[struct{}]
}

func newBreakerClient(c valkey.Client, name string, threshold int, cooldown time.Duration, log *slog.Logger) *breakerClient {
	return &breakerClient{Client: c, cb: gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:    "cache " + name,
		Timeout: cooldown,
		ReadyToTrip: func(n gobreaker.Counts) bool {
			return n.ConsecutiveFailures >= uint32(threshold)
		},
		IsSuccessful: func(err error) bool { return !unavailable(err) },
		IsExcluded:   func(err error) bool { return errors.Is(err, context.Canceled) },
		OnStateChange: func(name string, from, to gobreaker.State) {
			log.Warn("cache: circuit breaker "+to.String(), "cache", name, "from", from.String())
		},
	})}
}

// refused turns the breaker's refusal into an error matching ErrUnavailable.
func refused(err error) error {
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return fmt.Errorf("%w (%v)", ErrUnavailable, err)
	}
	return nil
}

// firstError returns the first error among results.
func firstError(rs []valkey.ValkeyResult) error {
	for _, r := range rs {
		if err := r.Error(); unavailable(err) {
			return err
		}
	}
	return nil
}

// one passes a single command's call through the breaker.
func (b *breakerClient) one(call func() valkey.ValkeyResult) valkey.ValkeyResult {
	var resp valkey.ValkeyResult
	_, err := b.cb.Execute(func() (struct{}, error) {
		resp = call()
		return struct{}{}, resp.Error()
	})
	if r := refused(err); r != nil {
		return valkey.NewErrorResult(r)
	}
	return resp
}

// many passes a pipeline of n commands through the breaker.
func (b *breakerClient) many(n int, call func() []valkey.ValkeyResult) []valkey.ValkeyResult {
	var resp []valkey.ValkeyResult
	_, err := b.cb.Execute(func() (struct{}, error) {
		resp = call()
		return struct{}{}, firstError(resp)
	})
	if r := refused(err); r != nil {
		return errorResults(n, r)
	}
	return resp
}

func (b *breakerClient) Do(ctx context.Context, cmd valkey.Completed) valkey.ValkeyResult {
	return b.one(func() valkey.ValkeyResult { return b.Client.Do(ctx, cmd) })
}

func (b *breakerClient) DoCache(ctx context.Context, cmd valkey.Cacheable, ttl time.Duration) valkey.ValkeyResult {
	return b.one(func() valkey.ValkeyResult { return b.Client.DoCache(ctx, cmd, ttl) })
}

func (b *breakerClient) DoMulti(ctx context.Context, cmds ...valkey.Completed) []valkey.ValkeyResult {
	return b.many(len(cmds), func() []valkey.ValkeyResult { return b.Client.DoMulti(ctx, cmds...) })
}

func (b *breakerClient) DoMultiCache(ctx context.Context, multi ...valkey.CacheableTTL) []valkey.ValkeyResult {
	return b.many(len(multi), func() []valkey.ValkeyResult { return b.Client.DoMultiCache(ctx, multi...) })
}

func errorResults(n int, err error) []valkey.ValkeyResult {
	out := make([]valkey.ValkeyResult, n)
	for i := range out {
		out[i] = valkey.NewErrorResult(err)
	}
	return out
}

// dropLog reports dropped writes of a degraded cache at most every ten
// seconds, with how many were dropped since the last report.
type dropLog struct {
	last    atomic.Int64 // Unix ns of the last report
	dropped atomic.Int64 // since the last report
}

func (d *dropLog) drop(log *slog.Logger, cache, what, id string, err error) {
	n := d.dropped.Add(1)
	now := time.Now().UnixNano()
	last := d.last.Load()
	if now-last < int64(10*time.Second) || !d.last.CompareAndSwap(last, now) {
		return
	}
	d.dropped.Add(-n)
	log.Warn("cache: server unavailable; writes dropped (degraded mode)", "cache", cache, "dropped", n, "last", what, "id", id, "error", err)
}
