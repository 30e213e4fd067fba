package session

import (
	"sync"
	"time"
)

// maxGuesses bounds the sessions knownSessions remembers; past it, it
// starts over.
const maxGuesses = 10000

// knownSessions remembers the user (and, when Options.MaxLifetime needs
// it, the creation time) of sessions this process read or wrote lately.
// Renew and a blind write (Put, the scs and gorilla adapters) must declare
// the user index they update before the script reads the record; with the
// right guess (the common case: a Get before the Renew of a login, the
// adapter's load before its save) each costs one round trip instead of
// two. A wrong or missing guess costs a second call, never a wrong write.
type knownSessions struct {
	mu sync.Mutex
	m  map[string]known // record hash -> what it had
	// created: remember creation times too (Options.MaxLifetime > 0: a
	// blind write computes the expiry from it), and so anonymous sessions.
	created bool
}

type known struct {
	user    string
	created time.Time
}

// remember records a session's user ("" for none) and creation time. A
// session without a user is the default guess: it is only stored when the
// creation time matters.
func (g *knownSessions) remember(hash, user string, created time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if user == "" && !g.created {
		delete(g.m, hash)
		return
	}
	if len(g.m) >= maxGuesses {
		clear(g.m)
	}
	k := known{user: user}
	if g.created {
		k.created = created
	}
	g.m[hash] = k
}

// forget drops what is known of a session that ended.
func (g *knownSessions) forget(hash string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.m, hash)
}

// guess returns what this process last knew of a session: its user, and
// its creation time (zero when unknown or not kept).
func (g *knownSessions) guess(hash string) known {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.m[hash]
}
