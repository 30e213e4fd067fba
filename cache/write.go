package cache

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Set stores data under id with tags, replacing any previous entry and its
// tags. lifetime is a duration, DefaultLifetime or Unlimited. It costs one
// round trip, plus one more when the entry had tags it no longer has (see
// the package doc).
func (b *Backend) Set(ctx context.Context, id string, data []byte, tags []string, lifetime time.Duration) (err error) {
	ctx, sp := b.tel.Start(ctx, "set")
	defer func() { sp.End(ctx, err) }()
	return b.setOp(ctx, id, data, tags, lifetime)
}

// setOp is Set without telemetry.
func (b *Backend) setOp(ctx context.Context, id string, data []byte, tags []string, lifetime time.Duration) error {
	return b.setPayload(ctx, id, Raw.ID(), data, tags, lifetime)
}

func (b *Backend) setPayload(ctx context.Context, id string, codecID byte, body []byte, tags []string, lifetime time.Duration) error {
	return b.store(ctx, id, codecID, body, tags, lifetime, guard{})
}

// guard makes a write conditional: a value computed by Typed.GetOrSet is
// refused when a flush of the cache or of one of its tags was stamped
// after its computation began (since, from the lease script), and its
// computing lease (token) is released with the write.
type guard struct {
	since string // server µs when the computation began; "" for a plain Set
	token string // the computing lease's token; "" for none
	fresh *freshness
}

// ErrFlushedWhileComputing is Fill.Store's error when the computed value
// was not stored because the whole cache or one of its tags was flushed
// after its computation began: it may have been computed from data the
// flush was meant to purge. The value may still be served to the
// requests that were waiting for it; the next read computes it again.
var ErrFlushedWhileComputing = errors.New("cache: computed value not stored: the cache or one of its tags was flushed after its computation began")

// store validates an entry, encodes it and has the layout write it,
// unless the guard refuses it (ErrFlushedWhileComputing) or degraded mode
// drops it (no error).
func (b *Backend) store(ctx context.Context, id string, codecID byte, body []byte, tags []string, lifetime time.Duration, g guard) error {
	w, err := b.prepare(id, codecID, body, tags, lifetime, g)
	if err != nil {
		return err
	}
	err = b.writeAll(ctx, []write{w})[0]
	if err != nil && err != ErrFlushedWhileComputing {
		return fmt.Errorf("cache %s: set %q: %w", b.name, id, err)
	}
	return err
}

// prepare validates an entry and encodes it for a layout to write.
func (b *Backend) prepare(id string, codecID byte, body []byte, tags []string, lifetime time.Duration, g guard) (write, error) {
	if err := b.checkID(id); err != nil {
		return write{}, err
	}
	tags, err := b.checkTags(tags)
	if err != nil {
		return write{}, err
	}
	ms, err := b.lifetimeMS(lifetime)
	if err != nil {
		return write{}, err
	}
	value, err := b.payloads.encode(codecID, tags, g.fresh, body)
	if err != nil {
		return write{}, fmt.Errorf("cache %s: set %q: %w", b.name, id, err)
	}
	if len(value) > b.opts.MaxValueBytes {
		return write{}, &InputError{Cache: b.name, Kind: ErrTooLarge, Value: id,
			Reason: fmt.Sprintf("the stored value would be %d bytes (from %d bytes of data), over MaxValueBytes %d", len(value), len(body), b.opts.MaxValueBytes)}
	}
	return write{id: id, value: value, tags: tags, ms: ms, g: g}, nil
}

// writeAll has the layout write prepared entries together and returns
// each one's error, unwrapped: nil when written or dropped by degraded
// mode, ErrFlushedWhileComputing when its guard refused it.
func (b *Backend) writeAll(ctx context.Context, ws []write) []error {
	for _, w := range ws {
		if len(w.tags) > 0 {
			if err := b.checkPolicy(ctx); err != nil {
				return failRest(make([]error, len(ws)), err)
			}
			break
		}
	}
	errs := b.layout.set(ctx, ws)
	for i, w := range ws {
		errs[i] = b.modes.written(ctx, w.id, w.value, errs[i])
	}
	return errs
}

// Entry is one entry for SetMany.
type Entry struct {
	ID       string
	Data     []byte
	Tags     []string
	Lifetime time.Duration // a duration, DefaultLifetime or Unlimited
}

// SetMany stores entries as Set would, together: one round trip for
// any number of entries in the standalone layout (plus one when some
// leave tags they had); in sharded mode each step of the write protocol is
// one pipeline for all of them, sent to every node in parallel. Every
// entry is checked before anything is written: an invalid one returns its
// error (an *InputError naming it) and nothing is written. The entries
// are written independently, not as one transaction: an error names the
// entries it concerns, and the others are stored. Of entries with the
// same id, the last one is stored.
func (b *Backend) SetMany(ctx context.Context, entries []Entry) (err error) {
	ctx, sp := b.tel.Start(ctx, "set_many")
	defer func() { sp.End(ctx, err) }()
	return b.setManyOp(ctx, entries)
}

// setManyOp is SetMany without telemetry.
func (b *Backend) setManyOp(ctx context.Context, entries []Entry) error {
	ws, err := prepareAll(len(entries), func(i int) (write, error) {
		e := entries[i]
		return b.prepare(e.ID, Raw.ID(), e.Data, e.Tags, e.Lifetime, guard{})
	})
	if err != nil {
		return err
	}
	return b.writeMany(ctx, ws)
}

// writeMany writes prepared entries and joins their errors, each naming
// its entry.
func (b *Backend) writeMany(ctx context.Context, ws []write) error {
	if len(ws) == 0 {
		return nil
	}
	errs := b.writeAll(ctx, ws)
	for i, err := range errs {
		if err != nil {
			errs[i] = &keyError{key: strconv.Quote(ws[i].id), err: err}
		}
	}
	if err := joinErrors(errs...); err != nil {
		return fmt.Errorf("cache %s: set many: %w", b.name, err)
	}
	return nil
}

// Remove deletes the entry under id; it reports whether an entry existed.
// It costs two round trips: the value goes first, then the entry's
// memberships in its tags' indexes.
func (b *Backend) Remove(ctx context.Context, id string) (ok bool, err error) {
	ctx, sp := b.tel.Start(ctx, "remove")
	defer func() { sp.End(ctx, err) }()
	return b.removeOp(ctx, id)
}

// removeOp is Remove without telemetry.
func (b *Backend) removeOp(ctx context.Context, id string) (bool, error) {
	if err := b.checkID(id); err != nil {
		return false, err
	}
	ids := []string{id}
	n, err := b.layout.remove(ctx, ids)
	b.modes.removed(ids)
	if err != nil {
		return n == 1, fmt.Errorf("cache %s: remove %q: %w", b.name, id, err)
	}
	return n == 1, nil
}

// FlushByTags removes every entry carrying any of tags and returns how
// many it removed. When it returns without error, no entry that had one
// of the tags when it started is live; an entry written while it runs may
// survive it or not (it is newer than the flush), and is found by a later
// flush of its tags either way. With an error, the
// returned count is what was removed so far, and the cache's invariant
// holds all the same (see the package doc): calling it again finishes the
// job.
//
// It costs three round trips whatever the number of tags and entries:
// the tags' indexes, one pipeline of removal scripts in batches of
// Options.BatchSize (values first, then their memberships in the flushed
// tags), and one pipeline cleaning the entries' other tags' indexes.
func (b *Backend) FlushByTags(ctx context.Context, tags ...string) (n int, err error) {
	ctx, sp := b.tel.Start(ctx, "flush_by_tags")
	defer func() { sp.End(ctx, err) }()
	return b.flushByTagsOp(ctx, tags...)
}

// flushByTagsOp is FlushByTags without telemetry.
func (b *Backend) flushByTagsOp(ctx context.Context, tags ...string) (int, error) {
	tags, err := b.checkTags(tags)
	if err != nil || len(tags) == 0 {
		return 0, err
	}
	n, ids, err := b.layout.flushByTags(ctx, tags)
	b.modes.removed(ids)
	if err != nil {
		return n, fmt.Errorf("cache %s: flush by tags: %w", b.name, err)
	}
	return n, nil
}
