package naive

import (
	"context"
	"time"

	"github.com/valkey-io/valkey-go"
)

// Sessions is the usual session store: one key per session id (in clear),
// SCAN + GET per key to list, and GET + SET + DEL to renew.
type Sessions struct {
	c      valkey.Client
	prefix string
}

// NewSessions returns a naive session store under prefix.
func NewSessions(c valkey.Client, prefix string) *Sessions { return &Sessions{c: c, prefix: prefix} }

// Set stores data for id.
func (s *Sessions) Set(ctx context.Context, id string, data []byte, ttl time.Duration) error {
	return s.c.Do(ctx, s.c.B().Set().Key(s.prefix+id).Value(valkey.BinaryString(data)).Px(ttl).Build()).Error()
}

// Get returns id's data (nil if none).
func (s *Sessions) Get(ctx context.Context, id string) ([]byte, error) {
	b, err := s.c.Do(ctx, s.c.B().Get().Key(s.prefix+id).Build()).AsBytes()
	if valkey.IsValkeyNil(err) {
		return nil, nil
	}
	return b, err
}

// GetAll lists sessions with SCAN and one GET per key.
func (s *Sessions) GetAll(ctx context.Context) (map[string][]byte, error) {
	out := map[string][]byte{}
	var cursor uint64
	for {
		e, err := s.c.Do(ctx, s.c.B().Scan().Cursor(cursor).Match(s.prefix+"*").Count(100).Build()).AsScanEntry()
		if err != nil {
			return nil, err
		}
		for _, k := range e.Elements {
			b, err := s.c.Do(ctx, s.c.B().Get().Key(k).Build()).AsBytes()
			if err == nil {
				out[k[len(s.prefix):]] = b
			}
		}
		if cursor = e.Cursor; cursor == 0 {
			return out, nil
		}
	}
}

// Renew moves a session: GET, SET under the new id, DEL the old.
func (s *Sessions) Renew(ctx context.Context, oldID, newID string, ttl time.Duration) error {
	b, err := s.Get(ctx, oldID)
	if err != nil || b == nil {
		return err
	}
	if err := s.Set(ctx, newID, b, ttl); err != nil {
		return err
	}
	return s.c.Do(ctx, s.c.B().Del().Key(s.prefix+oldID).Build()).Error()
}
