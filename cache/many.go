package cache

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/keyvalue-go/keyvalue/internal/wake"
)

// Batch reads and writes: GetMany and SetMany on a Backend, and GetMany,
// SetMany and GetOrSetMany on a Typed view. A batch costs what one entry
// costs (round trips), not one per entry.

// GetMany returns the data of every one of ids that has an entry, by id;
// an id without one (never set, expired, removed, a remembered absence)
// is not in the map. It costs one round trip for any number of ids: one
// MGET per Options.BatchSize ids in the standalone layout, one GET per id
// in sharded mode (pipelined to each node, the nodes in parallel); with
// the local read cache, ids read lately are served from it. An entry that
// cannot be decoded is left out and named in the error, which matches
// ErrCorrupt; the map holds the others. An invalid id is an *InputError
// and nothing is read. In degraded mode, a server that cannot be reached
// makes every id a miss.
func (b *Backend) GetMany(ctx context.Context, ids []string) (data map[string][]byte, err error) {
	ctx, sp := b.tel.Start(ctx, "get_many")
	defer func() { sp.End(ctx, err) }()
	found, _, corrupt, err := b.readEntries(ctx, ids)
	if err != nil {
		return nil, err
	}
	data = make(map[string][]byte, len(found))
	for id, e := range found {
		if !e.absent {
			data[id] = e.body
		}
	}
	return data, corrupt
}

// readEntries reads and decodes the entries under ids (each checked, and
// read once) in one round trip. It returns the entries found, remembered
// absences included (entry.absent), the ids whose value cannot be decoded
// and their errors (joined, matching ErrCorrupt).
func (b *Backend) readEntries(ctx context.Context, ids []string) (found map[string]entry, unusable []string, corrupt, err error) {
	ids, err = b.uniqueIDs(ids)
	if err != nil {
		return nil, nil, nil, err
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = b.layout.valueKey(id)
	}
	vals, err := b.modes.readMany(ctx, keys, b.layout.oneSlot())
	if b.modes.miss(err) {
		b.misses.Add(ctx, int64(len(ids)))
		return map[string]entry{}, nil, nil, nil
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("cache %s: get many: %w", b.name, err)
	}
	found = make(map[string]entry, len(ids))
	var errs []error
	for i, raw := range vals {
		if raw == nil {
			continue
		}
		e, err := b.payloads.decode(ids[i], raw)
		if err != nil {
			unusable = append(unusable, ids[i])
			errs = append(errs, err)
			continue
		}
		found[ids[i]] = e
	}
	hits := len(found) + len(unusable)
	b.hits.Add(ctx, int64(hits))
	b.misses.Add(ctx, int64(len(ids)-hits))
	if len(errs) > 0 {
		corrupt = fmt.Errorf("cache %s: %w", b.name, joinErrors(errs...))
	}
	return found, unusable, corrupt, nil
}

// uniqueIDs checks ids and returns them without repeats, in order.
func (b *Backend) uniqueIDs(ids []string) ([]string, error) {
	seen := make(map[string]struct{}, len(ids))
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if err := b.checkID(id); err != nil {
			return nil, err
		}
		if _, dup := seen[id]; !dup {
			seen[id] = struct{}{}
			out = append(out, id)
		}
	}
	return out, nil
}

// prepareAll prepares n entries for writing, each with prep: the first
// invalid one is the error (nothing is written); of entries with the same
// id, the last one stays.
func prepareAll(n int, prep func(i int) (write, error)) ([]write, error) {
	ws := make([]write, 0, n)
	at := make(map[string]int, n)
	for i := range n {
		w, err := prep(i)
		if err != nil {
			return nil, err
		}
		if j, dup := at[w.id]; dup {
			ws[j] = w
			continue
		}
		at[w.id] = len(ws)
		ws = append(ws, w)
	}
	return ws, nil
}

// Item is one value of a Typed cache with where to store it: what SetMany
// stores and what a ManyLoader returns.
type Item[T any] struct {
	ID       string
	Value    T
	Tags     []string
	Lifetime time.Duration // a duration, DefaultLifetime or Unlimited
	// NotFound says the id has no value: GetOrSetMany remembers it for
	// LoadOptions.NotFoundLifetime (SetMany: for Lifetime) under Tags, as
	// GetOrSet does with a loader's "not found"; Value is ignored.
	NotFound bool
}

// ManyLoader computes the values of ids missing from the cache, in one
// call (see GetOrSetMany). It returns an Item for each id it found; an
// Item with NotFound, or no Item at all, for an id that has no value.
// Items for ids it was not asked for are ignored.
type ManyLoader[T any] func(ctx context.Context, missing []string) ([]Item[T], error)

// GetMany returns the values of every one of ids that has an entry, as
// Backend.GetMany (one round trip). An entry that cannot be decoded into T
// is left out and named in the error, which matches ErrCorrupt.
func (t *Typed[T]) GetMany(ctx context.Context, ids []string) (values map[string]T, err error) {
	ctx, sp := t.b.tel.Start(ctx, "get_many")
	defer func() { sp.End(ctx, err) }()
	found, _, corrupt, err := t.b.readEntries(ctx, ids)
	if err != nil {
		return nil, err
	}
	values = make(map[string]T, len(found))
	errs := []error{corrupt}
	for id, e := range found {
		if e.absent {
			continue
		}
		v, err := t.decode(id, e)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		values[id] = v
	}
	return values, errors.Join(errs...)
}

// SetMany encodes items and stores them as Backend.SetMany does: together,
// every one checked (and encoded) before anything is written.
func (t *Typed[T]) SetMany(ctx context.Context, items []Item[T]) (err error) {
	ctx, sp := t.b.tel.Start(ctx, "set_many")
	defer func() { sp.End(ctx, err) }()
	ws, err := prepareAll(len(items), func(i int) (write, error) {
		it := items[i]
		if it.NotFound {
			return t.b.prepare(it.ID, absentID, nil, it.Tags, it.Lifetime, guard{})
		}
		body, err := t.encode(it.ID, it.Value)
		if err != nil {
			return write{}, err
		}
		return t.b.prepare(it.ID, t.codec.ID(), body, it.Tags, it.Lifetime, guard{})
	})
	if err != nil {
		return err
	}
	return t.b.writeMany(ctx, ws)
}

// GetOrSetMany returns the values of ids, computing the missing ones with
// one call of load and storing them: GetOrSet for many ids at once, with
// the same promises. The hits are read in one round trip (as GetMany).
// The missing ids are claimed in one pipeline of the leases GetOrSet
// takes; load runs once with the ids this caller claimed, its leases
// renewed while it runs, and the results are stored together (as
// SetMany), each refused if a flush of one of its tags (or of the cache)
// came after its lease was granted — such a value is returned but not
// stored. Ids that another caller in the fleet is computing are waited
// for on the server (no polling) and read in one round trip after each
// wake-up; when that caller fails or dies, this one takes them over with
// another call of load. With LoadOptions.NotFoundLifetime, ids the loader
// did not find are remembered as absent (see Item.NotFound). Grace and
// Beta apply to every entry, refreshed one by one in the background.
//
// The map has every id that has a value; an id without one is absent
// from it. load gets ctx: if it fails (also because ctx ended), its
// leases are released and callers waiting elsewhere compute. On an
// error, the map holds what was read or computed before it.
func (t *Typed[T]) GetOrSetMany(ctx context.Context, ids []string, load ManyLoader[T]) (values map[string]T, err error) {
	ctx, sp := t.b.tel.Start(ctx, "get_or_set_many")
	defer func() { sp.End(ctx, err) }()
	b := t.b
	found, unusable, _, err := b.readEntries(ctx, ids)
	if err != nil {
		return nil, err
	}
	ids, _ = b.uniqueIDs(ids) // checked by readEntries
	values = make(map[string]T, len(ids))
	bad := make(map[string]bool, len(unusable)) // stored, but unusable: take the lease over it
	for _, id := range unusable {
		bad[id] = true
	}
	var missing []string
	for _, id := range ids {
		e, ok := found[id]
		if !ok {
			missing = append(missing, id)
			continue
		}
		if e.absent {
			continue
		}
		v, err := t.decode(id, e)
		if err != nil {
			b.log.Warn("cache entry cannot be decoded; reloading it", "cache", b.name, "id", id, "error", err)
			bad[id] = true
			missing = append(missing, id)
			continue
		}
		values[id] = v
		stale, due := e.refreshDue(time.Now(), t.opts.Beta)
		if stale {
			b.tel.Add(ctx, "stale_served", 1)
		}
		if due {
			b.refreshInBackground(ctx, id, t.opts, t.loadFunc(id, t.oneOf(load, id), nil))
		}
	}
	if len(missing) == 0 {
		return values, nil
	}
	return values, t.computeMany(ctx, missing, bad, load, values)
}

// computeMany gets the values of missing into out: it claims their leases
// in one pipeline, computes the ids it was granted with one call of load,
// and waits for the others' computations, rounds after rounds, until
// every id is settled or Options.MaxLoadTime and a lease have passed
// (then it computes the rest without storing).
func (t *Typed[T]) computeMany(ctx context.Context, missing []string, bad map[string]bool, load ManyLoader[T], out map[string]T) error {
	b := t.b
	ttl := t.opts.lease()
	giveUp := time.Now().Add(b.opts.MaxLoadTime + ttl)
	var errs []error
	var backoff time.Duration
	for len(missing) > 0 {
		if !time.Now().Before(giveUp) {
			b.log.Warn("cache: gave up waiting for another process's computation; computing without storing", "cache", b.name, "ids", len(missing), "waited", b.opts.MaxLoadTime+ttl)
			return errors.Join(append(errs, t.loadUnstored(ctx, missing, load, out))...)
		}
		reqs := make([]leaseRequest, len(missing))
		for i, id := range missing {
			mode := "wait"
			if bad[id] {
				mode = "miss"
			}
			reqs[i] = leaseRequest{id: id, token: newLeaseToken(), mode: mode}
		}
		var granted []leaseRef
		since := map[string]string{}
		var unstored, waits, retry []string
		var waitFor time.Duration // the first waited id's lease
		var fatal, pause error
		for i, o := range b.leases(ctx, reqs, ttl) {
			id := missing[i]
			switch {
			case b.modes.dropped(ctx, "computed entry", id, o.err):
				unstored = append(unstored, id)
			case o.err != nil && wake.Retryable(ctx, o.err):
				retry, pause = append(retry, id), o.err
			case o.err != nil:
				fatal = fmt.Errorf("cache %s: load %q: %w", b.name, id, o.err)
			case o.kind == leaseValue:
				raw, _ := o.msg.AsBytes()
				e, err := b.decode(id, raw)
				var v T
				if err == nil && !e.absent {
					v, err = t.decode(id, e)
				}
				switch {
				case err != nil: // written by another process, but unusable here
					bad[id] = true
					retry = append(retry, id)
				case !e.absent:
					out[id] = v
				}
			case o.kind == leaseGranted:
				stamp, err := o.msg.AsInt64()
				if err != nil {
					fatal = fmt.Errorf("cache %s: load %q: lease stamp: %w", b.name, id, err)
					b.releaseLease(context.WithoutCancel(ctx), id, reqs[i].token)
					continue
				}
				granted = append(granted, leaseRef{id, reqs[i].token})
				since[id] = strconv.FormatInt(stamp, 10)
			case o.kind == leaseWait:
				if len(waits) == 0 {
					ms, _ := o.msg.AsInt64()
					waitFor = time.Duration(ms) * time.Millisecond
				}
				waits = append(waits, id)
			}
		}
		if len(granted) > 0 {
			if err := b.step("get-or-set", "leased"); err != nil {
				return err // as if the process died holding the leases
			}
			errs = append(errs, t.computeGranted(ctx, granted, since, load, out))
		}
		if len(unstored) > 0 {
			errs = append(errs, t.loadUnstored(ctx, unstored, load, out))
		}
		if fatal != nil {
			return errors.Join(append(errs, fatal)...)
		}
		switch {
		case len(waits) > 0:
			// Woken when the value is written or the computation fails, or
			// when the lease runs out: every waited id is read again then.
			if _, _, err := wake.Pop(ctx, b.direct, b.layout.wakeKey(waits[0]), waitFor+2*time.Millisecond); err != nil {
				if !wake.Retryable(ctx, err) {
					return errors.Join(append(errs, fmt.Errorf("cache %s: load %q: waiting for another caller's computation: %w", b.name, waits[0], err))...)
				}
				wake.Pause(ctx, &backoff)
			}
		case pause != nil:
			wake.Pause(ctx, &backoff)
		}
		missing = append(waits, retry...)
	}
	return errors.Join(errs...)
}

// computeGranted runs load for the ids whose leases this caller holds
// (renewing them while it runs), puts what it found into out, and stores
// it under the leases' guards (remembering absences when LoadOptions say
// so); leases with nothing to store are released.
func (t *Typed[T]) computeGranted(ctx context.Context, granted []leaseRef, since map[string]string, load ManyLoader[T], out map[string]T) error {
	b := t.b
	ids := make([]string, len(granted))
	token := make(map[string]string, len(granted))
	for i, l := range granted {
		ids[i] = l.id
		token[l.id] = l.token
	}
	stop := b.keepLeases(granted, t.opts.lease())
	start := time.Now()
	b.tel.Add(ctx, "recomputes", int64(len(ids)))
	items, err := load(ctx, ids)
	took := time.Since(start)
	stop()
	wctx := context.WithoutCancel(ctx) // the leases are settled whatever ctx does
	if err != nil {
		b.releaseLeases(wctx, granted)
		return fmt.Errorf("cache %s: load %d entries: %w", b.name, len(ids), err)
	}
	var ws []write
	var release []leaseRef
	var errs []error
	settled := make(map[string]bool, len(items))
	add := func(id string, r loadResult) {
		g := guard{since: since[id], token: token[id]}
		w, err := b.prepareLoaded(id, r, t.opts, g, start, took)
		if err != nil {
			errs = append(errs, err)
			release = append(release, leaseRef{id, token[id]})
			return
		}
		ws = append(ws, w)
	}
	notFound := t.opts.notFound()
	for _, it := range items {
		if _, asked := token[it.ID]; !asked || settled[it.ID] {
			continue
		}
		settled[it.ID] = true
		switch {
		case it.NotFound && t.opts.NotFoundLifetime > 0:
			add(it.ID, loadResult{tags: it.Tags, lifetime: t.opts.NotFoundLifetime, absent: notFound})
		case it.NotFound:
			release = append(release, leaseRef{it.ID, token[it.ID]})
		default:
			body, err := t.encode(it.ID, it.Value)
			if err != nil {
				errs = append(errs, err)
				release = append(release, leaseRef{it.ID, token[it.ID]})
				continue
			}
			out[it.ID] = it.Value
			add(it.ID, loadResult{codecID: t.codec.ID(), body: body, tags: it.Tags, lifetime: it.Lifetime})
		}
	}
	for _, l := range granted {
		switch {
		case settled[l.id]:
		case t.opts.NotFoundLifetime > 0:
			add(l.id, loadResult{lifetime: t.opts.NotFoundLifetime, absent: notFound})
		default:
			release = append(release, l)
		}
	}
	b.releaseLeases(wctx, release)
	for i, err := range b.writeAll(wctx, ws) {
		switch {
		case err == nil:
		case errors.Is(err, ErrFlushedWhileComputing):
			b.tel.Add(ctx, "refused_writes", 1)
		default:
			// Not stored: waiters must not wait for the lease to run out.
			b.releaseLease(wctx, ws[i].id, ws[i].g.token)
			errs = append(errs, &keyError{key: strconv.Quote(ws[i].id), err: err})
		}
	}
	if err := joinErrors(errs...); err != nil {
		return fmt.Errorf("cache %s: store computed entries: %w", b.name, err)
	}
	return nil
}

// loadUnstored runs load for ids and puts what it found into out, storing
// nothing (the server is unavailable in degraded mode, or waiting gave
// up).
func (t *Typed[T]) loadUnstored(ctx context.Context, ids []string, load ManyLoader[T], out map[string]T) error {
	items, err := load(ctx, ids)
	if err != nil {
		return fmt.Errorf("cache %s: load %d entries: %w", t.b.name, len(ids), err)
	}
	asked := make(map[string]bool, len(ids))
	for _, id := range ids {
		asked[id] = true
	}
	for _, it := range items {
		if asked[it.ID] && !it.NotFound {
			out[it.ID] = it.Value
		}
	}
	return nil
}

// oneOf adapts load to GetOrSet's Loader for the single id (a background
// refresh of one entry).
func (t *Typed[T]) oneOf(load ManyLoader[T], id string) Loader[T] {
	return func(ctx context.Context) (T, []string, time.Duration, error) {
		var zero T
		items, err := load(ctx, []string{id})
		if err != nil {
			return zero, nil, 0, err
		}
		for _, it := range items {
			if it.ID != id {
				continue
			}
			if it.NotFound {
				return zero, it.Tags, 0, t.opts.notFound()
			}
			return it.Value, it.Tags, it.Lifetime, nil
		}
		return zero, nil, 0, fmt.Errorf("%w (the loader returned nothing for it)", t.opts.notFound())
	}
}
