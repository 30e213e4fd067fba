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
// (one round trip) with scs's deadline.
//
//	sm := scs.New()
//	sm.Store = store.SCS()
type SCS struct{ s *Store }

// SCS returns the scs adapter of the store.
func (s *Store) SCS() *SCS { return &SCS{s} }

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
	if !validID(token) {
		return fmt.Errorf("%w (got %d characters)", ErrInvalidID, len(token))
	}
	now := time.Now()
	rec := Record{Created: now, Updated: now, Touched: now, Expires: expiry, Bytes: data}
	hashes := a.s.hashes(token)
	return a.s.write(ctx, token, hashes[0], "*", rec, "", origin{stale: hashes[1:]})
}

// Delete removes token's session.
func (a *SCS) Delete(token string) error { return a.DeleteCtx(context.Background(), token) }

// DeleteCtx is Delete with a context.
func (a *SCS) DeleteCtx(ctx context.Context, token string) error {
	if !validID(token) {
		return nil
	}
	_, err := a.s.removeHashes(ctx, a.s.hashes(token), "", false)
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
