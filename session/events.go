package session

import (
	"context"
	"time"

	"github.com/valkey-io/valkey-go"
)

// EventKind names what happened to sessions, for Options.OnEvent.
type EventKind string

// The event kinds.
const (
	// EventCreated: Create stored a new session.
	EventCreated EventKind = "created"
	// EventRenewed: Renew moved a session to a new id.
	EventRenewed EventKind = "renewed"
	// EventRemoved: Remove ended one session.
	EventRemoved EventKind = "removed"
	// EventRevoked: RemoveByUser or RemoveOthers ended a user's sessions
	// (Count of them).
	EventRevoked EventKind = "revoked"
	// EventEvicted: a write beyond Options.MaxSessionsPerUser ended the
	// user's sessions that expire soonest (Count of them).
	EventEvicted EventKind = "evicted"
	// EventExpired: sessions that expired: found by a read of an expired
	// session (Count 1), or by CollectGarbage dropping their index entries
	// (Count of them, UserID empty). Expiry is not observed otherwise:
	// keyspace notifications are not used (many managed servers disable
	// them). The expiry index itself expires with its last session, so
	// when every session of a store expired, their expiry is not reported.
	EventExpired EventKind = "expired"
)

// Event describes something that happened to sessions, for an audit log.
// It never carries a session id.
type Event struct {
	Kind   EventKind
	UserID string // the sessions' user, when known
	Count  int    // how many sessions (1 for single-session events)
	Time   time.Time
}

// event counts e in the telemetry and passes it to Options.OnEvent.
func (s *Store) event(ctx context.Context, e Event) {
	if e.Count == 0 {
		e.Count = 1
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	s.tel.Add(ctx, string(e.Kind), int64(e.Count))
	if s.o.OnEvent != nil {
		s.o.OnEvent(e)
	}
}

// reportExpired reports an expired session after a read found none under
// id: its hash is still in the expiry index with a past score until
// garbage collection drops it (one more read, only on a miss and only
// with Options.OnEvent).
func (s *Store) reportExpired(ctx context.Context, id string) {
	hashes := s.hashes(id)
	cmds := make(valkey.Commands, len(hashes))
	for i, h := range hashes {
		cmds[i] = s.c.B().Zscore().Key(s.idx).Member(h).Build()
	}
	now := float64(time.Now().UnixMilli())
	for _, r := range s.c.DoMulti(ctx, cmds...) { // one round trip for every key's hash
		if score, err := r.AsFloat64(); err == nil && score < now {
			s.event(ctx, Event{Kind: EventExpired})
			return
		}
	}
}
