package session

import "sync"

// maxGuesses bounds the sessions userGuesses remembers; past it, it
// starts over.
const maxGuesses = 10000

// userGuesses remembers the user of sessions this process read or wrote
// lately. Renew must declare the user index it updates before the script
// reads the record; with the right guess (the common case: a Get before
// the Renew of a login) it costs one round trip instead of two. A wrong or
// missing guess costs a second call, never a wrong write.
type userGuesses struct {
	mu sync.Mutex
	m  map[string]string // record hash -> user id
}

// remember records a session's user ("" for none: the default guess, so
// it is not stored and anonymous sessions do not fill the map).
func (g *userGuesses) remember(hash, user string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if user == "" {
		delete(g.m, hash)
		return
	}
	if len(g.m) >= maxGuesses {
		clear(g.m)
	}
	g.m[hash] = user
}

func (g *userGuesses) guess(hash string) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.m[hash]
}
