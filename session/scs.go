package session

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// SCS adapts a Store to github.com/alexedwards/scs/v2: it implements
// scs.Store, scs.CtxStore and scs.IterableStore (checked at compile time in
// the tests). scs keeps its session data as opaque bytes (the record's
// "bytes" field) and decides expiry itself, so Commit is one blind write
// (Store.Put: one round trip) with scs's deadline.
//
//	sm := scs.New()
//	sm.Store = store.SCS()
//
// With SCSUser the adapter also tells the store whose session it is, so
// RemoveByUser, Options.MaxSessionsPerUser, GetAllByUser (a device list)
// and RemoveOthers work for scs sessions:
//
//	sm.Store = store.SCS(session.SCSUser(sm.Codec, func(values map[string]any) (string, string) {
//		user, _ := values["userID"].(string)
//		device, _ := values["device"].(string)
//		return user, device
//	}))
type SCS struct {
	s        *Store
	codec    SCSCodec
	identify func(values map[string]any) (userID, device string)
}

// SCSCodec decodes scs's session data. scs.Codec satisfies it: pass the
// SessionManager's Codec (scs.GobCodec unless the application set another).
type SCSCodec interface {
	Decode(data []byte) (deadline time.Time, values map[string]any, err error)
}

// SCSOption configures the scs adapter.
type SCSOption func(*SCS)

// SCSUser makes the adapter index every session it commits under the user
// that identify reads from the session's values (decoded with codec, on
// every commit), and store the device it returns (Record.Device, for a
// device list; "" for none). identify returns "" as the user for an
// anonymous session; a session whose user changes (a login, a logout)
// moves between the indexes in the same write. Sessions committed before
// the option was set are indexed on their next commit. It costs one
// decode of the values per commit (scs's gob codec: about 15 µs for 1 KB
// of values, see BENCHMARKS.md).
func SCSUser(codec SCSCodec, identify func(values map[string]any) (userID, device string)) SCSOption {
	return func(a *SCS) { a.codec, a.identify = codec, identify }
}

// SCS returns the scs adapter of the store.
func (s *Store) SCS(opts ...SCSOption) *SCS {
	a := &SCS{s: s}
	for _, o := range opts {
		o(a)
	}
	return a
}

// Find returns the data of token; found is false for unknown tokens.
func (a *SCS) Find(token string) ([]byte, bool, error) {
	return a.FindCtx(context.Background(), token)
}

// FindCtx is Find with a context.
func (a *SCS) FindCtx(ctx context.Context, token string) ([]byte, bool, error) {
	rec, err := a.s.GetWith(ctx, token, GetOptions{NoTouch: true})
	if errors.Is(err, ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return rec.Bytes, true, nil
}

// Commit stores data under token until expiry.
func (a *SCS) Commit(token string, data []byte, expiry time.Time) error {
	return a.CommitCtx(context.Background(), token, data, expiry)
}

// CommitCtx is Commit with a context.
func (a *SCS) CommitCtx(ctx context.Context, token string, data []byte, expiry time.Time) error {
	rec := Record{Expires: expiry, Bytes: data}
	if a.identify != nil {
		if a.codec == nil {
			return errors.New("session: scs: SCSUser needs the SessionManager's Codec to read the user")
		}
		_, values, err := a.codec.Decode(data)
		if err != nil {
			return fmt.Errorf("session: scs: decode the session's values to read its user: %w", err)
		}
		rec.UserID, rec.Device = a.identify(values)
	}
	_, err := a.s.Put(ctx, token, rec)
	return err
}

// Delete removes token's session.
func (a *SCS) Delete(token string) error { return a.DeleteCtx(context.Background(), token) }

// DeleteCtx is Delete with a context (two round trips: the session's user
// index is read from the record).
func (a *SCS) DeleteCtx(ctx context.Context, token string) error {
	_, err := a.s.Remove(ctx, token)
	return err
}

// All returns every live session's data by token (two round trips).
func (a *SCS) All() (map[string][]byte, error) { return a.AllCtx(context.Background()) }

// AllCtx is All with a context.
func (a *SCS) AllCtx(ctx context.Context) (map[string][]byte, error) {
	recs, err := a.s.GetAll(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(recs))
	for _, r := range recs {
		if r.ID != "" {
			out[r.ID] = r.Bytes
		}
	}
	return out, nil
}
