package cache

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// recentWrites makes a process read its own writes through the local read
// cache. valkey-go's client-side cache drops a copy when the server's
// invalidation message arrives, which is asynchronous: right after this
// process changed or removed an entry, its local copy may still be the old
// one. So for a key this Backend wrote, Get compares the local copy with
// what it wrote (a hash of the value, or "no value"): a match is served
// and ends the check for that key; anything else is read from the server,
// until LocalCacheTTL (the longest a local copy lives) has passed.
type recentWrites struct {
	window time.Duration
	seed   maphash.Seed

	mu   sync.Mutex
	keys map[string]expectation
	all  time.Time // until then, every key expects no value (after Flush)
	// last is when the last remembered expectation ends: after it, and
	// after all, nothing is left to check.
	last time.Time
	// watching is false when there is nothing to check (no key remembered,
	// no Flush within the window): a read then takes neither the lock nor
	// the clock, the common case.
	watching atomic.Bool
}

// expectation is what this process last wrote to a key.
type expectation struct {
	until  time.Time
	absent bool   // removed
	sum    uint64 // the value's hash, when not absent
}

// maxRecent bounds the keys remembered one by one; beyond it, the oldest
// expectations are dropped and every key is checked for the window.
const maxRecent = 10000

func newRecentWrites(window time.Duration) *recentWrites {
	return &recentWrites{window: window, seed: maphash.MakeSeed(), keys: map[string]expectation{}}
}

func (r *recentWrites) hash(value []byte) uint64 { return maphash.Bytes(r.seed, value) }

// wrote records that key now holds value.
func (r *recentWrites) wrote(key string, value []byte) {
	r.set(map[string]expectation{key: {until: time.Now().Add(r.window), sum: r.hash(value)}})
}

// removed records that keys hold no value now.
func (r *recentWrites) removed(keys ...string) {
	until := time.Now().Add(r.window)
	m := make(map[string]expectation, len(keys))
	for _, k := range keys {
		m[k] = expectation{until: until, absent: true}
	}
	r.set(m)
}

// removedAll records that every value is gone (Flush).
func (r *recentWrites) removedAll() {
	r.mu.Lock()
	r.all = time.Now().Add(r.window)
	clear(r.keys)
	r.watching.Store(true)
	r.mu.Unlock()
}

func (r *recentWrites) set(m map[string]expectation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.keys)+len(m) > maxRecent {
		now := time.Now()
		for k, e := range r.keys {
			if e.until.Before(now) {
				delete(r.keys, k)
			}
		}
	}
	r.watching.Store(true)
	if len(r.keys)+len(m) > maxRecent {
		// Too many to follow one by one: check every key for the window.
		r.all = time.Now().Add(r.window)
		clear(r.keys)
		return
	}
	for k, e := range m {
		r.keys[k] = e
		if e.until.After(r.last) {
			r.last = e.until
		}
	}
}

// check reports whether a local read of key may be served: found and
// value are what the local cache returned. A copy that matches this
// process's last write ends the check for the key.
func (r *recentWrites) check(key string, found bool, value []byte) bool {
	if !r.watching.Load() {
		return true
	}
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if (len(r.keys) == 0 || !now.Before(r.last)) && !now.Before(r.all) {
		clear(r.keys)
		r.watching.Store(false) // nothing left to check until the next write
		return true
	}
	e, ok := r.keys[key]
	if ok && !now.Before(e.until) {
		delete(r.keys, key)
		ok = false
	}
	if !ok {
		if now.Before(r.all) {
			return !found // after a flush: a local miss is right, a local value may be stale
		}
		return true
	}
	if e.absent && !found || !e.absent && found && r.hash(value) == e.sum {
		delete(r.keys, key)
		return true
	}
	return false
}
