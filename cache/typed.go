package cache

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sync/singleflight"
)

// Typed stores values of type T in a Backend through a Codec. Reads decode
// with the codec named in each payload's header, so entries written with
// another codec (after a configuration change) are still read.
type Typed[T any] struct {
	b     *Backend
	codec Codec
	group singleflight.Group
}

// NewTyped returns a typed view of b that writes with codec (JSON, Msgpack,
// Gob or a registered one; Raw only for T = []byte or string).
func NewTyped[T any](b *Backend, codec Codec) *Typed[T] {
	return &Typed[T]{b: b, codec: codec}
}

// Backend returns the underlying backend (for tags, flushes and GC).
func (t *Typed[T]) Backend() *Backend { return t.b }

// Set encodes v and stores it like Backend.Set.
func (t *Typed[T]) Set(ctx context.Context, id string, v T, tags []string, lifetime time.Duration) error {
	body, err := t.codec.Marshal(v)
	if err != nil {
		return fmt.Errorf("cache %s: encode %q with %s: %w", t.b.name, id, t.codec.Name(), err)
	}
	return t.b.setPayload(ctx, id, t.codec.ID(), body, tags, lifetime)
}

// Get returns the value under id. Misses match ErrNotFound; payloads that
// cannot be decoded into T match ErrCorrupt.
func (t *Typed[T]) Get(ctx context.Context, id string) (T, error) {
	var v T
	codec, body, err := t.b.getPayload(ctx, id)
	if err != nil {
		return v, err
	}
	if err := codec.Unmarshal(body, &v); err != nil {
		var zero T
		return zero, fmt.Errorf("cache %s: %w", t.b.name, &CorruptError{ID: id, Reason: fmt.Sprintf("%s payload does not decode into %T", codec.Name(), v), Err: err})
	}
	return v, nil
}

// Loader computes a value on a miss, with the tags and lifetime to store
// it under.
type Loader[T any] func(ctx context.Context) (value T, tags []string, lifetime time.Duration, err error)

// GetOrSet returns the cached value, or calls load, stores its result and
// returns it. Concurrent misses for the same id in this process share one
// load call. An entry that cannot be decoded counts as a miss and is
// overwritten. If storing fails the loaded value is still returned, with
// the error.
func (t *Typed[T]) GetOrSet(ctx context.Context, id string, load Loader[T]) (T, error) {
	v, err := t.Get(ctx, id)
	if err == nil || !(errors.Is(err, ErrNotFound) || errors.Is(err, ErrCorrupt)) {
		return v, err
	}
	if errors.Is(err, ErrCorrupt) {
		t.b.log.Warn("cache entry cannot be decoded; reloading it", "cache", t.b.name, "id", id, "error", err)
	}
	type result struct {
		v   T
		err error
	}
	ch := t.group.DoChan(id, func() (any, error) {
		// Detach from the first caller's cancellation: other callers wait on this load too.
		lctx := context.WithoutCancel(ctx)
		v, tags, lifetime, err := load(lctx)
		if err != nil {
			return result{v, fmt.Errorf("cache %s: load %q: %w", t.b.name, id, err)}, nil
		}
		return result{v, t.Set(lctx, id, v, tags, lifetime)}, nil
	})
	select {
	case r := <-ch:
		res := r.Val.(result)
		return res.v, res.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}
