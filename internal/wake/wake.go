// Package wake blocks until another client hands this one something, on
// the server and without polling: BLPOP on a list the other side pushes
// to. The lock package waits for grants this way, the cache for a value
// another process is computing.
//
// The wait runs on a connection of valkey-go's blocking pool, never the
// shared pipeline, so other commands of the same client are not held up.
// Its end is timed by the client (a context deadline, within about a
// millisecond), not by the server's timeout sweep, which runs only every
// 1/hz seconds (100ms by default). When the wait ends early, valkey-go
// sends CLIENT UNBLOCK (UnblockOnCancel) and keeps the connection.
package wake

import (
	"context"
	"errors"
	"time"

	"github.com/keyvalue-go/keyvalue"
	"github.com/valkey-io/valkey-go"
)

// Pop waits up to d for an element on the list key and returns it. It
// returns ok false when d passed with nothing pushed, and an error when
// ctx ended or the wait failed (see Retryable).
func Pop(ctx context.Context, c valkey.Client, key string, d time.Duration) (value string, ok bool, err error) {
	_, value, ok, err = PopAny(ctx, c, []string{key}, d)
	return value, ok, err
}

// PopAny is Pop on several lists (in one Cluster slot): the first element
// pushed onto any of them, and the list it came from. Give it only lists
// no other client pops: an element popped just as the wait is cancelled is
// lost with the reply.
func PopAny(ctx context.Context, c valkey.Client, keys []string, d time.Duration) (key, value string, ok bool, err error) {
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	// The server's own timeout is a backstop a second later: the client's
	// deadline ends the wait first.
	cmd := c.B().Blpop().Key(keys...).Timeout((d + time.Second).Seconds()).Build().UnblockOnCancel()
	got, err := c.Do(wctx, cmd).AsStrSlice()
	switch {
	case err == nil && len(got) == 2:
		return got[0], got[1], true, nil
	case ctx.Err() != nil:
		return "", "", false, ctx.Err()
	case err == nil || valkey.IsValkeyNil(err) || wctx.Err() != nil:
		return "", "", false, nil
	}
	return "", "", false, err
}

func Retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil || errors.Is(err, keyvalue.ErrClosed) || errors.Is(err, valkey.ErrClosing) {
		return false
	}
	// A server's reply (wrapped too: a *keyvalue.PermissionError) is an
	// answer, never retried.
	var reply *valkey.ValkeyError
	return !errors.As(err, &reply) || valkey.IsValkeyNil(reply)
}

// Pause sleeps a growing backoff (10ms doubling to 200ms), or until ctx
// ends.
func Pause(ctx context.Context, backoff *time.Duration) {
	*backoff = min(max(*backoff*2, 10*time.Millisecond), 200*time.Millisecond)
	t := time.NewTimer(*backoff)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
