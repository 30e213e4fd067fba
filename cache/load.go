package cache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/keyvalue-go/keyvalue/internal/scripts"
	"github.com/keyvalue-go/keyvalue/internal/wake"
	"github.com/valkey-io/valkey-go"
)

// LoadOptions tune how Typed.GetOrSet computes missing and stale entries.
// The zero value is the default: one computation per missing entry across
// every process, 10-second leases, no stale reads, no early refresh.
type LoadOptions struct {
	// Lease is how long a computing caller's claim lasts without being
	// renewed: the caller renews it every third of Lease while its
	// computation runs, so a process that dies mid-computation is taken
	// over within Lease, and a computation of any length (up to
	// Options.MaxLoadTime) is done once. Default 2s.
	Lease time.Duration
	// Grace (stale-while-revalidate) keeps an entry for Grace after its
	// lifetime ends: during that time GetOrSet returns the stale value at
	// once and one caller across the fleet recomputes it in the
	// background. 0 turns it off. Entries without a lifetime never turn
	// stale.
	Grace time.Duration
	// Beta turns on early refresh (probabilistic early expiration,
	// "XFetch"): a read recomputes an entry in the background before it
	// turns stale, with a probability that rises as the end of its
	// lifetime nears and with the time its computation took. 1 is the
	// usual value; larger refreshes earlier; 0 turns it off.
	Beta float64
	// NotFoundLifetime, when positive, remembers that an entry does not
	// exist (negative caching): when the loader returns an error matching
	// NotFound, that answer is stored for NotFoundLifetime under the tags
	// the loader returned with the error, and until it expires, or a flush
	// of one of those tags (or Remove, Set, Flush) forgets it, GetOrSet
	// returns an error matching NotFound (and ErrNotFound) without
	// loading. A flood of requests for a missing id then costs one load
	// across the fleet. 0 (or negative): not remembered.
	NotFoundLifetime time.Duration
	// NotFound is the error a loader returns for an id that has no value
	// (matched with errors.Is); nil means ErrNotFound.
	NotFound error
}

// notFound is the error a loader returns for a missing value.
func (o LoadOptions) notFound() error {
	if o.NotFound == nil {
		return ErrNotFound
	}
	return o.NotFound
}

// remembers reports whether a load that failed with err is stored as a
// remembered absence.
func (o LoadOptions) remembers(err error) bool {
	return o.NotFoundLifetime > 0 && errors.Is(err, o.notFound())
}

// DefaultLease is LoadOptions.Lease when it is zero.
const DefaultLease = 2 * time.Second

// loadResult is what a computation returns: the encoded body and where
// to store it, or (absent) the loader's answer that there is no value,
// to be remembered (LoadOptions.NotFoundLifetime) under tags for lifetime.
type loadResult struct {
	codecID  byte
	body     []byte
	tags     []string
	lifetime time.Duration
	absent   error // the loader's error saying there is no value
}

// loadFunc computes an entry.
type loadFunc func(ctx context.Context) (loadResult, error)

// Outcomes of a lease request (cache_lease.lua).
const (
	leaseValue   = 1 // the value exists
	leaseGranted = 2 // the caller computes
	leaseWait    = 3 // another caller computes
	leaseBusy    = 4 // another caller refreshes
)

func newLeaseToken() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// lease runs cache_lease.lua in mode "wait", "miss" or "refresh" and
// returns the outcome with its value (the entry's raw value, the server's
// µs stamp, or the wait in ms).
func (b *Backend) lease(ctx context.Context, id, token string, ttl time.Duration, mode string) (int64, valkey.ValkeyMessage, error) {
	o := b.leases(ctx, []leaseRequest{{id: id, token: token, mode: mode}}, ttl)[0]
	return o.kind, o.msg, o.err
}

// leaseRequest asks for the lease of id with a new token, in a mode of
// cache_lease.lua.
type leaseRequest struct{ id, token, mode string }

// leaseOutcome is cache_lease.lua's answer to one leaseRequest.
type leaseOutcome struct {
	kind int64
	msg  valkey.ValkeyMessage
	err  error
}

// leases runs cache_lease.lua for each request, in one pipeline.
func (b *Backend) leases(ctx context.Context, reqs []leaseRequest, ttl time.Duration) []leaseOutcome {
	ms := strconv.FormatInt(max(ttl.Milliseconds(), 1), 10)
	execs := make([]valkey.LuaExec, len(reqs))
	for i, r := range reqs {
		execs[i] = valkey.LuaExec{Keys: []string{b.layout.valueKey(r.id), b.layout.leaseKey(r.id)}, Args: []string{r.token, ms, r.mode}}
	}
	out := make([]leaseOutcome, len(reqs))
	for i, r := range scripts.CacheLease.ExecMulti(ctx, b.c, execs...) {
		res, err := r.ToArray()
		if err != nil {
			out[i].err = err
			continue
		}
		kind, err := res[0].AsInt64()
		if err != nil || (kind != leaseBusy && len(res) != 2) {
			out[i].err = fmt.Errorf("unexpected lease reply of %d elements", len(res))
			continue
		}
		out[i].kind = kind
		if kind != leaseBusy {
			out[i].msg = res[1]
		}
	}
	return out
}

// keepLease renews the lease (id, token) every third of ttl until stop is
// called, the lease is found lost, or Options.MaxLoadTime has passed (a
// longer computation is not stored anyway). A renewal that fails to reach
// the server is tried again at the next period: the lease lasts a full ttl
// after the last renewal that reached it.
func (b *Backend) keepLease(id, token string, ttl time.Duration) (stop func()) {
	return b.keepLeases([]leaseRef{{id, token}}, ttl)
}

// keepLeases is keepLease for several leases, renewed together (one
// pipeline per period); each stops being renewed once found lost.
func (b *Backend) keepLeases(leases []leaseRef, ttl time.Duration) (stop func()) {
	ctx, cancel := context.WithTimeout(context.Background(), b.opts.MaxLoadTime)
	done := make(chan struct{})
	ms := strconv.FormatInt(max(ttl.Milliseconds(), 1), 10)
	go func() {
		defer close(done)
		t := time.NewTicker(max(ttl/3, time.Millisecond))
		defer t.Stop()
		live := slices.Clone(leases)
		for len(live) > 0 {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			execs := make([]valkey.LuaExec, len(live))
			for i, l := range live {
				execs[i] = valkey.LuaExec{Keys: []string{b.layout.leaseKey(l.id)}, Args: []string{l.token, ms}}
			}
			rctx, rcancel := context.WithTimeout(ctx, ttl/3)
			still := live[:0]
			for i, r := range scripts.CacheLeaseExtend.ExecMulti(rctx, b.c, execs...) {
				// Released, or lost (it expired while this process could
				// not reach the server): no more renewals.
				if n, err := r.AsInt64(); err != nil || n != 0 {
					still = append(still, live[i])
				}
			}
			rcancel()
			live = still
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// leaseRef names a computing lease: the entry and the holder's token.
type leaseRef struct{ id, token string }

// releaseLease ends a computing lease without a value (best effort: an
// unreleased lease expires on its own).
func (b *Backend) releaseLease(ctx context.Context, id, token string) {
	b.releaseLeases(ctx, []leaseRef{{id, token}})
}

// releaseLeases ends computing leases without a value, in one pipeline.
func (b *Backend) releaseLeases(ctx context.Context, leases []leaseRef) {
	if len(leases) == 0 {
		return
	}
	execs := make([]valkey.LuaExec, len(leases))
	for i, l := range leases {
		execs[i] = valkey.LuaExec{Keys: []string{b.layout.leaseKey(l.id), b.layout.wakeKey(l.id)}, Args: []string{l.token}}
	}
	for i, r := range scripts.CacheLeaseRelease.ExecMulti(ctx, b.c, execs...) {
		if err := r.Error(); err != nil {
			b.log.Warn("cache: cannot release a computing lease; waiters take over when it expires", "cache", b.name, "id", leases[i].id, "error", err)
		}
	}
}

// loadShared returns the entry under id, computing it once for the whole
// fleet when it is missing (unusable: the value exists but cannot be
// decoded). It holds the lease while load runs (renewing it), or waits
// (on the server) for the caller that holds it, and takes over when that
// lease expires. It gives up waiting after Options.MaxLoadTime and a
// lease, and then computes without storing.
func (b *Backend) loadShared(ctx context.Context, id string, o LoadOptions, unusable bool, load loadFunc) (entry, error) {
	e, l, err := b.acquire(ctx, id, o.lease(), unusable)
	switch {
	case err != nil:
		return entry{}, err
	case l.id == "":
		return e, nil
	case l.token != "":
		defer l.end()
		return b.compute(ctx, id, o, l.since, l.token, load)
	default:
		return b.computeUnstored(ctx, id, load)
	}
}

// computeLease is the outcome of acquire when the caller must compute:
// with a token, it holds the fleet's lease (since: the server's µs clock
// when it was granted), renewed until stop is called; without one, it
// computes without storing (the server is unavailable in degraded mode,
// or waiting gave up).
type computeLease struct {
	id, token, since string
	stop             func() // ends the renewals (keepLease); nil without a token
}

// end stops renewing the lease, if it is held.
func (l computeLease) end() {
	if l.stop != nil {
		l.stop()
	}
}

// acquire returns the entry under id when it exists or appears while
// waiting for another caller's computation; otherwise the lease (or the
// order to compute unstored, see computeLease) with a non-empty id.
func (b *Backend) acquire(ctx context.Context, id string, ttl time.Duration, unusable bool) (entry, computeLease, error) {
	mode := "wait"
	if unusable {
		mode = "miss"
	}
	// A live holder renews its lease for as long as it computes, up to
	// MaxLoadTime: wait that long (and one lease for its last renewal).
	wait := b.opts.MaxLoadTime + ttl
	giveUp := time.Now().Add(wait)
	var backoff time.Duration
	for time.Now().Before(giveUp) {
		token := newLeaseToken()
		kind, msg, err := b.lease(ctx, id, token, ttl, mode)
		if b.modes.dropped(ctx, "computed entry", id, err) {
			return entry{}, computeLease{id: id}, nil
		}
		if err != nil {
			if wake.Retryable(ctx, err) {
				wake.Pause(ctx, &backoff)
				continue
			}
			return entry{}, computeLease{}, fmt.Errorf("cache %s: load %q: %w", b.name, id, err)
		}
		switch kind {
		case leaseValue:
			raw, _ := msg.AsBytes()
			e, err := b.decode(id, raw)
			if err == nil {
				return e, computeLease{}, nil
			}
			mode = "miss" // written by another process, but unusable here
		case leaseGranted:
			since, err := msg.AsInt64()
			if err != nil {
				return entry{}, computeLease{}, fmt.Errorf("cache %s: load %q: lease stamp: %w", b.name, id, err)
			}
			if err := b.step("get-or-set", "leased"); err != nil {
				return entry{}, computeLease{}, err // as if the process died holding the lease
			}
			return entry{}, computeLease{id: id, token: token, since: strconv.FormatInt(since, 10), stop: b.keepLease(id, token, ttl)}, nil
		case leaseWait:
			ms, _ := msg.AsInt64()
			if _, _, err := wake.Pop(ctx, b.direct, b.layout.wakeKey(id), time.Duration(ms)*time.Millisecond+2*time.Millisecond); err != nil {
				if !wake.Retryable(ctx, err) {
					return entry{}, computeLease{}, fmt.Errorf("cache %s: load %q: waiting for another caller's computation: %w", b.name, id, err)
				}
				wake.Pause(ctx, &backoff)
			}
			// Woken (the value was written or the computation failed) or
			// the lease ran out: look again, at the value first (it may
			// have been written by the caller waited for).
			mode = "wait"
		}
	}
	b.log.Warn("cache: gave up waiting for another process's computation; computing without storing", "cache", b.name, "id", id, "waited", wait)
	return entry{}, computeLease{id: id}, nil
}

// computeUnstored computes an entry and returns it without storing it.
func (b *Backend) computeUnstored(ctx context.Context, id string, load loadFunc) (entry, error) {
	r, err := load(ctx)
	if err != nil {
		return entry{}, fmt.Errorf("cache %s: load %q: %w", b.name, id, err)
	}
	return b.loaded(r), b.loadedError(id, r)
}

// loaded turns a computation's result into the entry it returns.
func (b *Backend) loaded(r loadResult) entry {
	if r.absent != nil {
		return entry{absent: true}
	}
	return entry{codec: codecByID(r.codecID), body: r.body}
}

// loadedError is the error a computation that found no value returns:
// the loader's own.
func (b *Backend) loadedError(id string, r loadResult) error {
	if r.absent == nil {
		return nil
	}
	return fmt.Errorf("cache %s: load %q: %w", b.name, id, r.absent)
}

// compute runs load under the lease token and stores its result unless a
// flush since the lease was granted refuses it. The result is returned
// either way; a failed load releases the lease so that a waiter computes.
func (b *Backend) compute(ctx context.Context, id string, o LoadOptions, since, token string, load loadFunc) (entry, error) {
	start := time.Now()
	b.tel.Add(ctx, "recomputes", 1)
	r, err := load(ctx)
	if err != nil {
		b.releaseLease(context.WithoutCancel(ctx), id, token)
		return entry{}, fmt.Errorf("cache %s: load %q: %w", b.name, id, err)
	}
	w, err := b.prepareLoaded(id, r, o, guard{since: since, token: token}, start, time.Since(start))
	if err != nil {
		b.releaseLease(context.WithoutCancel(ctx), id, token)
		return b.loaded(r), errors.Join(b.loadedError(id, r), err)
	}
	err = b.writeAll(ctx, []write{w})[0]
	if errors.Is(err, ErrFlushedWhileComputing) {
		b.tel.Add(ctx, "refused_writes", 1)
		b.log.Debug("cache: a computed value was not stored: its tags were flushed while it was computed", "cache", b.name, "id", id)
	} else if err != nil {
		// Not stored (the server failed): waiters must not wait for the
		// lease to run out.
		b.releaseLease(context.WithoutCancel(ctx), id, token)
		return b.loaded(r), errors.Join(b.loadedError(id, r), fmt.Errorf("cache %s: set %q: %w", b.name, id, err))
	}
	e := b.loaded(r)
	if w.g.fresh != nil {
		e.fresh, e.hasFresh = *w.g.fresh, true
	}
	return e, b.loadedError(id, r)
}

// prepareLoaded prepares a computation's result for writing under the
// guard g: the value with its freshness (stale-while-revalidate, early
// refresh), or a remembered absence.
func (b *Backend) prepareLoaded(id string, r loadResult, o LoadOptions, g guard, start time.Time, took time.Duration) (write, error) {
	if r.absent != nil {
		return b.prepare(id, absentID, nil, r.tags, r.lifetime, g)
	}
	lifetime, fresh, err := b.freshLifetime(r.lifetime, o, start, took)
	if err != nil {
		return write{}, err
	}
	g.fresh = fresh
	return b.prepare(id, r.codecID, r.body, r.tags, lifetime, g)
}

// freshLifetime returns the lifetime to store a computed entry with, and
// its freshness when stale reads or early refresh need it: with Grace,
// the entry is kept Grace longer and turns stale when its lifetime ends.
func (b *Backend) freshLifetime(lifetime time.Duration, o LoadOptions, start time.Time, took time.Duration) (time.Duration, *freshness, error) {
	if o.Grace <= 0 && o.Beta <= 0 {
		return lifetime, nil, nil
	}
	ms, err := b.lifetimeMS(lifetime)
	if err != nil || ms == 0 {
		return lifetime, nil, err // invalid, or unlimited: never stale
	}
	life := time.Duration(ms) * time.Millisecond
	fresh := &freshness{staleAt: start.Add(took + life).UnixMilli(), tookMS: uint32(min(took.Milliseconds(), math.MaxUint32))}
	return life + max(o.Grace, 0), fresh, nil
}

// refreshDue tells whether a read entry should be recomputed in the
// background: it is stale (within its grace), or early refresh picks it.
func (e entry) refreshDue(now time.Time, beta float64) (stale, due bool) {
	if !e.hasFresh || e.fresh.staleAt == 0 {
		return false, false
	}
	left := time.UnixMilli(e.fresh.staleAt).Sub(now)
	if left <= 0 {
		return true, true
	}
	if beta <= 0 {
		return false, false
	}
	// XFetch: refresh when took·beta·(−ln u) reaches the time left.
	took := time.Duration(max(e.fresh.tookMS, 1)) * time.Millisecond
	early := time.Duration(float64(took) * beta * -math.Log(1-mrand.Float64()))
	return false, early >= left
}

func (o LoadOptions) lease() time.Duration {
	if o.Lease <= 0 {
		return DefaultLease
	}
	return o.Lease
}

// refreshInBackground recomputes id once across the fleet (if no other
// caller is on it), bounded by Options.MaxLoadTime, without holding up
// the reader.
func (b *Backend) refreshInBackground(ctx context.Context, id string, o LoadOptions, load loadFunc) {
	if _, busy := b.refreshing.LoadOrStore(id, struct{}{}); busy {
		return
	}
	go func() {
		defer b.refreshing.Delete(id)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.opts.MaxLoadTime)
		defer cancel()
		l, ok, err := b.refreshLease(rctx, id, o.lease())
		if err != nil {
			b.log.Warn("cache: background refresh could not start", "cache", b.name, "id", id, "error", err)
			return
		}
		if !ok {
			return // another caller is computing it
		}
		defer l.end()
		if _, err := b.compute(rctx, id, o, l.since, l.token, load); err != nil && !errors.Is(err, context.Canceled) {
			b.log.Warn("cache: background refresh failed; the stale value stays until its grace ends", "cache", b.name, "id", id, "error", err)
		}
	}()
}
