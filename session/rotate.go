package session

import (
	"context"
	"crypto/sha1" //nolint:gosec // the write script compares SHA1s of the value it replaces
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// RemoveOthers ends every session of the user of session currentID but
// that one ("log out my other devices") and returns how many it ended.
// It costs three round trips: the current session (for its user), the
// user's index, then one removal script (the removed sessions' keys must
// be declared to it, so they are read first). A session the user creates
// concurrently is not ended.
func (s *Store) RemoveOthers(ctx context.Context, currentID string) (n int, err error) {
	ctx, sp := s.tel.Start(ctx, "remove_others")
	defer func() { sp.End(ctx, err) }()
	if !validID(currentID) {
		return 0, ErrNotFound
	}
	cur, err := s.find(ctx, currentID, s.hash(currentID))
	if err != nil {
		return 0, err
	}
	user := cur.st.UserID
	if user == "" {
		return 0, fmt.Errorf("session: RemoveOthers: the session has no user id: there are no other sessions of its user to end")
	}
	hashes, err := s.members(ctx, s.userKey(user))
	if err != nil {
		return 0, err
	}
	others := hashes[:0]
	for _, h := range hashes {
		if h != cur.hash {
			others = append(others, h)
		}
	}
	if len(others) == 0 {
		return 0, nil
	}
	n, err = s.removeHashes(ctx, others, user, false)
	if n > 0 {
		s.event(ctx, Event{Kind: EventRevoked, UserID: user, Count: n})
	}
	return n, err
}

// RekeyStats reports a Rekey.
type RekeyStats struct {
	Scanned int // index entries looked at
	Moved   int // sessions moved to the current key
	Skipped int // stubs of renewed sessions (they expire within Options.RenewGrace), records that vanished or do not parse, ids no key unseals
}

// Rekey moves every session stored under a previous key (Options.
// PreviousKeys) to the current one, so that the previous keys can be
// dropped. It walks the expiry index with ZSCAN in pages of batch entries
// (the server keeps serving between pages) and moves each session with
// the same atomic script a write uses: a session written concurrently is
// moved by that write instead and nothing is lost. progress, if not nil,
// is called after each page. Run it again until Moved is 0 to be sure
// that nothing written under a previous key by an older process remains.
func (s *Store) Rekey(ctx context.Context, batch int, progress func(RekeyStats)) (st RekeyStats, err error) {
	ctx, sp := s.tel.Start(ctx, "rekey")
	defer func() { sp.End(ctx, err) }()
	if len(s.keys) == 1 {
		return st, nil // no previous key: nothing can be under one
	}
	batch = max(batch, 1)
	var cursor uint64
	for range 100_000_000 / batch {
		e, err := s.c.Do(ctx, s.c.B().Zscan().Key(s.idx).Cursor(cursor).Count(int64(batch)).Build()).AsScanEntry()
		if err != nil {
			return st, fmt.Errorf("session: rekey: %w", err)
		}
		var members []string
		for i := 0; i < len(e.Elements); i += 2 { // member, score
			members = append(members, e.Elements[i])
		}
		if err := s.rekeyPage(ctx, members, &st); err != nil {
			return st, err
		}
		if progress != nil {
			progress(st)
		}
		cursor = e.Cursor
		if cursor == 0 {
			return st, nil
		}
	}
	return st, fmt.Errorf("session: rekey: the index did not end")
}

// rekeyPage moves the sessions of one page of index members that are not
// under the current key, a few at a time.
func (s *Store) rekeyPage(ctx context.Context, members []string, st *RekeyStats) error {
	st.Scanned += len(members)
	if len(members) == 0 {
		return nil
	}
	keys := make([]string, len(members))
	for i, m := range members {
		keys[i] = s.key(m)
	}
	vals, err := s.c.Do(ctx, s.c.B().Mget().Key(keys...).Build()).ToArray()
	if err != nil {
		return fmt.Errorf("session: rekey: %w", err)
	}
	var (
		mu   sync.Mutex // guards st and errs
		errs []error
		g    errgroup.Group // errors are collected, not returned: every move is tried
	)
	g.SetLimit(8)
	count := func(moved bool) {
		mu.Lock()
		defer mu.Unlock()
		if moved {
			st.Moved++
		} else {
			st.Skipped++
		}
	}
	for i, v := range vals {
		b, err := v.AsBytes()
		if err != nil { // gone meanwhile (nil), or not a string
			count(false)
			continue
		}
		rec, err := s.parse(b)
		id, ok := s.unseal(rec.Sealed)
		if err != nil || rec.Renewed || !ok {
			count(false)
			continue
		}
		current := s.hash(id)
		if current == members[i] {
			continue // already under the current key
		}
		g.Go(func() error {
			sum := sha1.Sum(b) //nolint:gosec // see import
			rec.Sealed = s.seal(id)
			_, err := s.writeStored(ctx, current, prior{sha1: hex.EncodeToString(sum[:]), user: rec.UserID}, rec, time.Until(rec.Expires), origin{from: members[i]})
			switch {
			case err == nil || errors.Is(err, ErrNotReplicated):
				count(true)
			case errors.Is(err, ErrConflict):
				count(false) // written meanwhile: that write moved it
			default:
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
			return nil
		})
	}
	_ = g.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("session: rekey: %w", err)
	}
	return nil
}
