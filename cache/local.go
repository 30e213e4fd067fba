package cache

import (
	"sync"
	"time"
)

// recentWrites makes a process read its own writes through the local read
// cache. valkey-go's client-side cache drops a copy when the server's
// invalidation message arrives, which is asynchronous: right after this
// process changed or removed an entry, its local copy may still be the
// old one. So keys this Backend wrote in the last LocalCacheTTL (the
// longest a local copy lives) are read from the server instead.
type recentWrites struct {
	window time.Duration

	mu   sync.Mutex
	keys map[string]time.Time // key -> until when to bypass the local cache
	all  time.Time            // bypass for every key until then (after Flush)
}

// maxRecent bounds the keys remembered one by one; beyond it, every key
// bypasses the local cache for the window.
const maxRecent = 10000

func newRecentWrites(window time.Duration) *recentWrites {
	return &recentWrites{window: window, keys: map[string]time.Time{}}
}

// mark records writes to keys.
func (r *recentWrites) mark(keys ...string) {
	until := time.Now().Add(r.window)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.keys)+len(keys) > maxRecent {
		now := time.Now()
		for k, t := range r.keys {
			if t.Before(now) {
				delete(r.keys, k)
			}
		}
	}
	if len(r.keys)+len(keys) > maxRecent {
		r.all = until
		clear(r.keys)
		return
	}
	for _, k := range keys {
		r.keys[k] = until
	}
}

// markIDs records writes to the values of ids.
func (r *recentWrites) markIDs(b *Backend, ids []string) {
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = b.valueKey(id)
	}
	r.mark(keys...)
}

// markAll records a write to every key (Flush).
func (r *recentWrites) markAll() {
	r.mu.Lock()
	r.all = time.Now().Add(r.window)
	clear(r.keys)
	r.mu.Unlock()
}

// dirty reports whether key was written within the window.
func (r *recentWrites) dirty(key string) bool {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.Before(r.all) {
		return true
	}
	until, ok := r.keys[key]
	if ok && !now.Before(until) {
		delete(r.keys, key)
		return false
	}
	return ok
}
