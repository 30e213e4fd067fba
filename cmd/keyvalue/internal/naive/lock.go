package naive

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"time"

	"github.com/valkey-io/valkey-go"
)

// Lock is the usual polling lock (bsm/redislock, redsync style): SET NX PX
// to take it, a compare-and-delete script to release it, and a sleep/retry
// loop to wait for it.
type Lock struct {
	c     valkey.Client
	key   string
	ttl   time.Duration
	Retry time.Duration // poll interval while waiting
}

// NewLock returns a polling lock on key.
func NewLock(c valkey.Client, key string, ttl, retry time.Duration) *Lock {
	return &Lock{c: c, key: key, ttl: ttl, Retry: retry}
}

var release = valkey.NewLuaScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`)

// Lock polls until it holds the lock; it returns the token for Unlock.
func (l *Lock) Lock(ctx context.Context) (string, error) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	for {
		err := l.c.Do(ctx, l.c.B().Set().Key(l.key).Value(token).Nx().Px(l.ttl).Build()).Error()
		if err == nil {
			return token, nil
		}
		if !valkey.IsValkeyNil(err) {
			return "", err
		}
		t := time.NewTimer(l.Retry)
		select {
		case <-ctx.Done():
			t.Stop()
			return "", ctx.Err()
		case <-t.C:
		}
	}
}

// Unlock releases the lock if token still holds it.
func (l *Lock) Unlock(ctx context.Context, token string) error {
	n, err := release.Exec(ctx, l.c, []string{l.key}, []string{token}).AsInt64()
	if err == nil && n != 1 {
		err = errors.New("naive lock: not held")
	}
	return err
}
