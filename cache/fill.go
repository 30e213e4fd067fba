package cache

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// A Fill is the right, and the duty, to compute one entry for every
// process sharing the cache: GetOrFill and TryFill hand it out to one
// caller at a time (a lease on the server), the others wait for its
// value. The holder computes the value, then calls Store, or Abandon when
// it has nothing to store; either ends the lease and wakes the waiters.
// Until then the lease is renewed every third of its length (up to the
// cache's Options.MaxLoadTime): a holder whose process dies holds the
// others up for at most one lease; one that is alive but never calls
// Store or Abandon holds them up until MaxLoadTime.
//
// It is the bytes-level form of Typed.GetOrSet for callers that must run
// the computation themselves, e.g. an HTTP middleware that streams the
// response it is capturing.
type Fill struct {
	b    *Backend
	l    computeLease
	done bool
}

// GetOrFill returns the data stored under id, or a Fill when the caller
// is the one to compute it. If another caller in any process is already
// computing it, GetOrFill waits for that value on the server (no polling;
// until ctx ends) and returns it; if that caller fails or dies (its lease,
// renewed every third of lease while it computes, ends), one of the
// waiters gets the Fill. lease 0 means DefaultLease.
//
// Exactly one of data and fill is set when err is nil. The returned Fill
// may be unleased (Fill.Leased false): the server is unavailable in
// degraded mode, or waiting gave up after the cache's MaxLoadTime; the
// caller then computes and Store does not store. An entry that cannot be decoded
// counts as missing. Cost: one round trip (the lease script) when the
// entry exists or the caller gets the lease; waiting adds a BLPOP and one
// more round trip.
func (b *Backend) GetOrFill(ctx context.Context, id string, lease time.Duration) (data []byte, fill *Fill, err error) {
	return b.getOrFill(ctx, id, lease, false)
}

// Refill is GetOrFill for an entry whose current value the caller will
// not use (it is stale, or was written in a format it cannot read): the
// caller gets the Fill, or waits for the caller that has it and then gets
// the value stored under id — normally the new one, but the old one if
// that caller stored nothing, so the caller checks the value it gets and
// may call again. Costs as GetOrFill.
func (b *Backend) Refill(ctx context.Context, id string, lease time.Duration) (data []byte, fill *Fill, err error) {
	return b.getOrFill(ctx, id, lease, true)
}

// getOrFill is GetOrFill (replace false) and Refill (true).
func (b *Backend) getOrFill(ctx context.Context, id string, lease time.Duration, replace bool) (data []byte, fill *Fill, err error) {
	ctx, sp := b.tel.Start(ctx, "get_or_fill")
	defer func() { sp.End(ctx, err) }()
	if err := b.checkID(id); err != nil {
		return nil, nil, err
	}
	e, l, err := b.acquire(ctx, id, leaseOrDefault(lease), replace)
	if err != nil {
		return nil, nil, err
	}
	if l.id == "" {
		if e.absent {
			return nil, nil, b.absentError(id)
		}
		return e.body, nil, nil
	}
	b.tel.Add(ctx, "recomputes", 1)
	return nil, &Fill{b: b, l: l}, nil
}

// TryFill takes the Fill of an entry that exists but should be computed
// again (it is stale), unless another caller in any process is computing
// it already: then it returns nil and no error. It never waits. Cost: one
// round trip.
func (b *Backend) TryFill(ctx context.Context, id string, lease time.Duration) (*Fill, error) {
	if err := b.checkID(id); err != nil {
		return nil, err
	}
	l, ok, err := b.refreshLease(ctx, id, leaseOrDefault(lease))
	if err != nil || !ok {
		return nil, err
	}
	b.tel.Add(ctx, "recomputes", 1)
	return &Fill{b: b, l: l}, nil
}

// refreshLease takes the computing lease of id in the mode that never
// waits (cache_lease.lua "refresh"): ok false when another caller holds it.
func (b *Backend) refreshLease(ctx context.Context, id string, ttl time.Duration) (l computeLease, ok bool, err error) {
	token := newLeaseToken()
	kind, msg, err := b.lease(ctx, id, token, ttl, "refresh")
	if err != nil {
		return computeLease{}, false, fmt.Errorf("cache %s: refresh %q: %w", b.name, id, err)
	}
	if kind != leaseGranted {
		return computeLease{}, false, nil
	}
	since, err := msg.AsInt64()
	if err != nil {
		return computeLease{}, false, fmt.Errorf("cache %s: refresh %q: lease stamp: %w", b.name, id, err)
	}
	return computeLease{id: id, token: token, since: strconv.FormatInt(since, 10), stop: b.keepLease(id, token, ttl)}, true, nil
}

// ID returns the id of the entry being computed.
func (f *Fill) ID() string { return f.l.id }

// Leased reports whether the Fill holds the fleet's lease, i.e. whether
// Store stores. See GetOrFill for when it does not.
func (f *Fill) Leased() bool { return f.l.token != "" }

// Store stores data under the Fill's id with tags and lifetime (as Set),
// ends the lease and wakes the callers waiting for it. It returns
// ErrFlushedWhileComputing, and stores nothing, when the whole cache or
// one of tags was flushed after the Fill was handed out (in sharded mode
// flushes are not checked; see the package doc). A Fill stores at most
// once; after the first Store or Abandon, Store does nothing. An unleased
// Fill stores nothing and returns nil.
func (f *Fill) Store(ctx context.Context, data []byte, tags []string, lifetime time.Duration) error {
	if f.done || !f.Leased() {
		f.done = true
		return nil
	}
	f.done = true
	defer f.l.end()
	err := f.b.store(ctx, f.l.id, Raw.ID(), data, tags, lifetime, guard{since: f.l.since, token: f.l.token})
	if errors.Is(err, ErrFlushedWhileComputing) {
		f.b.tel.Add(ctx, "refused_writes", 1)
	} else if err != nil {
		f.b.releaseLease(context.WithoutCancel(ctx), f.l.id, f.l.token)
	}
	return err
}

// StoreOther stores data under another id, computed from the same reads
// as this Fill's value (e.g. one variant of a response), with the same
// check: it returns ErrFlushedWhileComputing, and stores nothing, when
// the whole cache or one of tags was flushed after the Fill was handed
// out. It does not end the lease; call Store or Abandon after it. An
// unleased Fill stores nothing.
func (f *Fill) StoreOther(ctx context.Context, id string, data []byte, tags []string, lifetime time.Duration) error {
	if !f.Leased() {
		return nil
	}
	err := f.b.store(ctx, id, Raw.ID(), data, tags, lifetime, guard{since: f.l.since})
	if errors.Is(err, ErrFlushedWhileComputing) {
		f.b.tel.Add(ctx, "refused_writes", 1)
	}
	return err
}

// Abandon ends the lease without storing anything: one waiting caller
// gets the Fill next. It is best effort (an unreleased lease ends on its
// own) and does nothing after Store or a first Abandon.
func (f *Fill) Abandon(ctx context.Context) {
	if f.done || !f.Leased() {
		f.done = true
		return
	}
	f.done = true
	f.l.end()
	f.b.releaseLease(context.WithoutCancel(ctx), f.l.id, f.l.token)
}

func leaseOrDefault(d time.Duration) time.Duration {
	return LoadOptions{Lease: d}.lease()
}
