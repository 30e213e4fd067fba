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
	opts  LoadOptions
	group singleflight.Group
}

// NewTyped returns a typed view of b that writes with codec (JSON, Msgpack,
// Gob or a registered one; Raw only for T = []byte or string), with the
// default LoadOptions.
func NewTyped[T any](b *Backend, codec Codec) *Typed[T] {
	return NewTypedWith[T](b, codec, LoadOptions{})
}

// NewTypedWith is NewTyped with LoadOptions for GetOrSet: the computing
// lease, stale-while-revalidate and early refresh.
func NewTypedWith[T any](b *Backend, codec Codec, opts LoadOptions) *Typed[T] {
	return &Typed[T]{b: b, codec: codec, opts: opts}
}

// Backend returns the underlying backend (for tags, flushes and GC).
func (t *Typed[T]) Backend() *Backend { return t.b }

// Set encodes v and stores it like Backend.Set.
func (t *Typed[T]) Set(ctx context.Context, id string, v T, tags []string, lifetime time.Duration) (err error) {
	ctx, sp := t.b.tel.Start(ctx, "set")
	defer func() { sp.End(ctx, err) }()
	return t.setOp(ctx, id, v, tags, lifetime)
}

// setOp is Set without telemetry.
func (t *Typed[T]) setOp(ctx context.Context, id string, v T, tags []string, lifetime time.Duration) error {
	body, err := t.encode(id, v)
	if err != nil {
		return err
	}
	return t.b.setPayload(ctx, id, t.codec.ID(), body, tags, lifetime)
}

func (t *Typed[T]) encode(id string, v T) ([]byte, error) {
	body, err := t.codec.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("cache %s: encode %q with %s: %w", t.b.name, id, t.codec.Name(), err)
	}
	return body, nil
}

// Get returns the value under id. Misses match ErrNotFound; payloads that
// cannot be decoded into T match ErrCorrupt.
func (t *Typed[T]) Get(ctx context.Context, id string) (T, error) {
	ctx, sp := t.b.tel.StartOp(ctx, t.b.opGet)
	v, err := t.getOp(ctx, id) // no deferred closure on the hot path
	sp.End(ctx, notMiss(err))
	return v, err
}

// getOp is Get without telemetry.
func (t *Typed[T]) getOp(ctx context.Context, id string) (T, error) {
	e, err := t.b.readEntry(ctx, id)
	if err != nil {
		var zero T
		return zero, err
	}
	return t.decode(id, e)
}

func (t *Typed[T]) decode(id string, e entry) (T, error) {
	var v T
	if err := e.codec.Unmarshal(e.body, &v); err != nil {
		var zero T
		return zero, fmt.Errorf("cache %s: %w", t.b.name, &CorruptError{ID: id, Reason: fmt.Sprintf("%s payload does not decode into %T", e.codec.Name(), v), Err: err})
	}
	return v, nil
}

// Loader computes a value on a miss, with the tags and lifetime to store
// it under.
type Loader[T any] func(ctx context.Context) (value T, tags []string, lifetime time.Duration, err error)

// GetOrSet returns the cached value, or computes it with load, stores it
// and returns it.
//
// A missing entry is computed once across every process sharing the
// cache: concurrent misses in this process share one call, and one caller
// in the fleet holds a short lease on the server (LoadOptions.Lease) while
// the others wait for its value without polling; if it dies, another
// caller takes over when the lease expires. Waiting callers return when
// their ctx ends; the computation itself runs on without ctx's
// cancellation (others wait for it too).
//
// A value computed from data read before a FlushByTags of one of its tags
// (or a Flush) is not stored after that flush: it is returned to the
// callers of this computation, and the next read computes it again (see
// "Computing missing entries" in the package doc). With LoadOptions.Grace
// a stale entry is returned at once and recomputed in the background;
// with LoadOptions.Beta a fresh one may be recomputed early. With
// LoadOptions.NotFoundLifetime, a loader's "not found" is remembered like
// a value (negative caching): the first caller gets the loader's error,
// later ones an error matching LoadOptions.NotFound and ErrNotFound,
// without a load, until it expires or a flush of its tags.
//
// An entry that cannot be decoded counts as a miss and is overwritten. If
// storing fails the loaded value is still returned, with the error.
func (t *Typed[T]) GetOrSet(ctx context.Context, id string, load Loader[T]) (v T, err error) {
	ctx, sp := t.b.tel.Start(ctx, "get_or_set")
	defer func() { sp.End(ctx, err) }()
	return t.getOrSetOp(ctx, id, load)
}

// getOrSetOp is GetOrSet without telemetry.
func (t *Typed[T]) getOrSetOp(ctx context.Context, id string, load Loader[T]) (T, error) {
	var zero T
	e, err := t.b.readEntry(ctx, id)
	if e.absent {
		return zero, t.absentError(id)
	}
	if err == nil {
		v, derr := t.decode(id, e)
		if derr == nil {
			stale, due := e.refreshDue(time.Now(), t.opts.Beta)
			if stale {
				t.b.tel.Add(ctx, "stale_served", 1)
			}
			if due {
				t.b.refreshInBackground(ctx, id, t.opts, t.loadFunc(id, load, nil))
			}
			return v, nil
		}
		err = derr
	}
	if !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrCorrupt) {
		return zero, err
	}
	unusable := errors.Is(err, ErrCorrupt)
	if unusable {
		t.b.log.Warn("cache entry cannot be decoded; reloading it", "cache", t.b.name, "id", id, "error", err)
	}
	type result struct {
		v   T
		err error
	}
	ch := t.group.DoChan(id, func() (any, error) {
		// Detach from the first caller's cancellation: other callers wait on this load too.
		lctx := context.WithoutCancel(ctx)
		var computed *T
		e, err := t.b.loadShared(lctx, id, t.opts, unusable, t.loadFunc(id, load, &computed))
		if computed != nil {
			return result{*computed, err}, nil
		}
		if err != nil {
			return result{zero, err}, nil
		}
		if e.absent {
			return result{zero, t.absentError(id)}, nil
		}
		v, err := t.decode(id, e)
		return result{v, err}, nil
	})
	select {
	case r := <-ch:
		res := r.Val.(result)
		return res.v, res.err
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// absentError is the error of a read that found a remembered absence: it
// matches ErrNotFound and LoadOptions.NotFound.
func (t *Typed[T]) absentError(id string) error {
	err := t.b.absentError(id)
	if nf := t.opts.notFound(); nf != ErrNotFound {
		err = fmt.Errorf("%w: %w", err, nf)
	}
	return err
}

// loadFunc adapts load to the backend: it encodes the value, and keeps it
// in *computed (when computed is not nil) so the caller need not decode it.
// A loader's "not found" becomes a remembered absence when LoadOptions
// say so.
func (t *Typed[T]) loadFunc(id string, load Loader[T], computed **T) loadFunc {
	return func(ctx context.Context) (loadResult, error) {
		v, tags, lifetime, err := load(ctx)
		if t.opts.remembers(err) {
			return loadResult{tags: tags, lifetime: t.opts.NotFoundLifetime, absent: err}, nil
		}
		if err != nil {
			return loadResult{}, err
		}
		if computed != nil {
			*computed = &v
		}
		body, err := t.encode(id, v)
		if err != nil {
			return loadResult{}, err
		}
		return loadResult{codecID: t.codec.ID(), body: body, tags: tags, lifetime: lifetime}, nil
	}
}
