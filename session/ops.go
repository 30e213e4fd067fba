package session

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"

	"github.com/keyvalue-go/keyvalue/internal/scan"
	"github.com/keyvalue-go/keyvalue/internal/scripts"
	"github.com/valkey-io/valkey-go"
)

// Remove deletes the session with id; it reports whether one existed.
func (s *Store) Remove(ctx context.Context, id string) (ok bool, err error) {
	ctx, sp := s.tel.Start(ctx, "remove")
	defer func() {
		sp.End(ctx, err)
		if ok {
			s.event(ctx, Event{Kind: EventRemoved})
		}
	}()
	return s.removeOp(ctx, id)
}

// removeOp is Remove without telemetry.
func (s *Store) removeOp(ctx context.Context, id string) (bool, error) {
	if !validID(id) {
		return false, nil
	}
	user, found, err := storedUser(s.find(ctx, id, s.hash(id)))
	if !found {
		return false, err
	}
	n, err := s.removeHashes(ctx, s.hashes(id), user, false)
	return n > 0, err
}

// storedUser reads the result of reading a record about to be removed:
// its user (whose index the removal must declare), and whether there is
// anything to remove (a corrupt record is removed too, with no user).
func storedUser(r raw, err error) (user string, found bool, _ error) {
	switch {
	case err == nil:
		return r.st.UserID, true, nil
	case errors.Is(err, ErrNotFound):
		return "", false, nil
	case errors.Is(err, ErrCorrupt):
		return "", true, nil
	}
	return "", false, err
}

// RemoveRef deletes the session whose Record.Ref is ref (an operator
// revoking a session listed by Page or GetAllByUser, who must not handle
// its id); it reports whether one existed. Two round trips: the record,
// for its user, then the removal.
func (s *Store) RemoveRef(ctx context.Context, ref string) (ok bool, err error) {
	ctx, sp := s.tel.Start(ctx, "remove")
	defer func() {
		sp.End(ctx, err)
		if ok {
			s.event(ctx, Event{Kind: EventRemoved})
		}
	}()
	if !validRef(ref) {
		return false, fmt.Errorf("%w %.80q: use a Record.Ref (64 lower-case hex digits) from a listing", ErrInvalidRef, ref)
	}
	user, found, err := storedUser(s.read(ctx, "", ref))
	if !found {
		return false, err
	}
	n, err := s.removeHashes(ctx, []string{ref}, user, false)
	return n > 0, err
}

// validRef reports whether ref has the form of a Record.Ref.
func validRef(ref string) bool {
	if len(ref) != 2*sha256.Size {
		return false
	}
	for _, c := range []byte(ref) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// RemoveByUser deletes every session of user ("log out everywhere") in one
// atomic script; a session renewed concurrently cannot escape it. It
// returns how many sessions were removed.
func (s *Store) RemoveByUser(ctx context.Context, user string) (n int, err error) {
	ctx, sp := s.tel.Start(ctx, "remove_by_user")
	defer func() {
		sp.End(ctx, err)
		if n > 0 {
			s.event(ctx, Event{Kind: EventRevoked, UserID: user, Count: n})
		}
	}()
	return s.removeByUserOp(ctx, user)
}

// removeByUserOp is RemoveByUser without telemetry.
func (s *Store) removeByUserOp(ctx context.Context, user string) (int, error) {
	if user == "" {
		return 0, errors.New("session: RemoveByUser needs a user id")
	}
	for range 10 {
		hashes, err := s.members(ctx, s.userKey(user))
		if err != nil {
			return 0, err
		}
		if len(hashes) == 0 {
			return 0, nil
		}
		n, err := s.removeHashes(ctx, hashes, user, true)
		if err != nil {
			return 0, err
		}
		if n >= 0 {
			return n, nil
		}
	}
	return 0, fmt.Errorf("%w (RemoveByUser %q: the user's sessions kept changing)", ErrConflict, user)
}

// members lists an index's live members, soonest expiry first, after
// dropping expired ones (server clock): the dropping script and a ZRANGE
// in one round trip.
func (s *Store) members(ctx context.Context, index string) ([]string, error) {
	rs := scripts.SessionIndex.Pipelined(ctx, s.c, []string{index}, nil, func() valkey.Commands {
		return valkey.Commands{s.c.B().Zrange().Key(index).Min("0").Max("-1").Build()}
	})
	if err := rs[0].Error(); err != nil {
		return nil, fmt.Errorf("session: index: %w", err)
	}
	m, err := rs[1].AsStrSlice()
	if err != nil {
		return nil, fmt.Errorf("session: index: %w", err)
	}
	return m, nil
}

// GetAll returns every live session in two round trips: the expiry index
// (expired members are dropped on the way) and the records (one MGET per
// 1,000, pipelined together).
// Records that no longer exist are skipped; records that do not parse are
// skipped and logged.
func (s *Store) GetAll(ctx context.Context) (recs []Record, err error) {
	ctx, sp := s.tel.Start(ctx, "get_all")
	defer func() { sp.End(ctx, err) }()
	return s.getAllOp(ctx)
}

// getAllOp is GetAll without telemetry.
func (s *Store) getAllOp(ctx context.Context) ([]Record, error) {
	return s.getIndexed(ctx, s.idx)
}

// GetAllByUser returns the live sessions of user, in two round trips.
func (s *Store) GetAllByUser(ctx context.Context, user string) (recs []Record, err error) {
	ctx, sp := s.tel.Start(ctx, "get_all_by_user")
	defer func() { sp.End(ctx, err) }()
	return s.getAllByUserOp(ctx, user)
}

// getAllByUserOp is GetAllByUser without telemetry.
func (s *Store) getAllByUserOp(ctx context.Context, user string) ([]Record, error) {
	if user == "" {
		return nil, nil
	}
	recs, err := s.getIndexed(ctx, s.userKey(user))
	out := recs[:0]
	for _, r := range recs {
		if r.UserID == user {
			out = append(out, r)
		}
	}
	return out, err
}

func (s *Store) getIndexed(ctx context.Context, index string) ([]Record, error) {
	hashes, err := s.members(ctx, index)
	if err != nil || len(hashes) == 0 {
		return nil, err
	}
	return s.records(ctx, hashes)
}

// Count returns how many sessions the store's expiry index lists (one
// round trip; sessions that expired since the last pruning count until a
// read or CollectGarbage drops them).
func (s *Store) Count(ctx context.Context) (int, error) {
	n, err := s.c.Do(ctx, s.c.B().Zcard().Key(s.idx).Build()).AsInt64()
	if err != nil {
		return 0, fmt.Errorf("session: count: %w", err)
	}
	return int(n), nil
}

// Page returns up to limit sessions from the offset-th, soonest expiry
// first, and how many the index lists: two round trips (the index's
// range and count, then the records), bounded by limit (at most 1,000),
// for a listing that pages through many sessions. Records gone meanwhile
// are skipped, so a page may be short.
func (s *Store) Page(ctx context.Context, offset, limit int) (recs []Record, total int, err error) {
	ctx, sp := s.tel.Start(ctx, "page")
	defer func() { sp.End(ctx, err) }()
	if offset < 0 || limit <= 0 || limit > listChunk {
		return nil, 0, fmt.Errorf("session: page: offset %d, limit %d: use an offset of 0 or more and a limit of 1 to %d", offset, limit, listChunk)
	}
	rs := s.c.DoMulti(ctx, s.c.B().Zrange().Key(s.idx).Min(strconv.Itoa(offset)).Max(strconv.Itoa(offset+limit-1)).Build(),
		s.c.B().Zcard().Key(s.idx).Build())
	hashes, err := rs[0].AsStrSlice()
	if err != nil {
		return nil, 0, fmt.Errorf("session: page: %w", err)
	}
	n, err := rs[1].AsInt64()
	if err != nil {
		return nil, 0, fmt.Errorf("session: page: %w", err)
	}
	if len(hashes) == 0 {
		return nil, int(n), nil
	}
	recs, err = s.records(ctx, hashes)
	return recs, int(n), err
}

// records reads and decodes the records under hashes (listed order).
func (s *Store) records(ctx context.Context, hashes []string) ([]Record, error) {
	keys := make([]string, len(hashes))
	for i, h := range hashes {
		keys[i] = s.key(h)
	}
	// Decoding JSON dominates the cost of a long list: it is spread over
	// goroutines. Up to listChunk records come in one MGET, decoded by one
	// goroutine per CPU; a longer list is read in MGETs of listChunk
	// (pipelined together), each decoded by its own goroutine as soon as
	// its reply is in, overlapping decoding with the rest of the transfer.
	out := make([]Record, len(keys))
	listed := make([]bool, len(keys))
	errs := make([]error, len(keys))
	var wg sync.WaitGroup
	if len(keys) <= listChunk {
		vals, err := s.c.Do(ctx, s.c.B().Mget().Key(keys...).Build()).ToArray()
		if err != nil {
			return nil, fmt.Errorf("session: get all: %w", err)
		}
		workers := min(runtime.GOMAXPROCS(0), max(1, len(vals)/64))
		for w := range workers {
			wg.Go(func() { s.decodeListed(vals, keys, out, listed, errs, w, workers) })
		}
	} else {
		for lo := 0; lo < len(keys); lo += listChunk {
			hi := min(lo+listChunk, len(keys))
			wg.Go(func() {
				vals, err := s.c.Do(ctx, s.c.B().Mget().Key(keys[lo:hi]...).Build()).ToArray()
				if err != nil {
					errs[lo] = err
					return
				}
				s.decodeListed(vals, keys[lo:hi], out[lo:hi], listed[lo:hi], errs[lo:hi], 0, 1)
			})
		}
	}
	wg.Wait()
	n := 0
	for i := range out {
		if errs[i] != nil {
			return nil, fmt.Errorf("session: get all: %w", errs[i])
		}
		if listed[i] {
			out[n] = out[i]
			n++
		}
	}
	clear(out[n:])
	return out[:n], nil
}

// listChunk is how many records a listing reads per MGET at most.
const listChunk = 1000

// decodeListed decodes the MGET elements vals[first], vals[first+step],
// ... into out, marking which are listed (see parseListed), reusing one
// document and one buffer for the sealed ids.
func (s *Store) decodeListed(vals []valkey.ValkeyMessage, keys []string, out []Record, listed []bool, errs []error, first, step int) {
	var scratch []byte
	st := new(stored)
	for i := first; i < len(vals); i += step {
		*st = stored{} // decoding merges into what is there
		listed[i], scratch, errs[i] = s.parseListed(vals[i], keys[i], st, scratch)
		if listed[i] {
			out[i] = st.Record
		}
	}
}

// parseListed parses one MGET element into st and reports whether it is
// listed: not for records that vanished, are renewed stubs, or do not
// parse (logged). scratch is unsealInto's.
func (s *Store) parseListed(v valkey.ValkeyMessage, key string, st *stored, scratch []byte) (bool, []byte, error) {
	b, err := v.AsBytes()
	if valkey.IsValkeyNil(err) {
		return false, scratch, nil
	}
	if err != nil {
		return false, scratch, err
	}
	if err := s.parseInto(b, st); err != nil {
		s.log.Warn("session: skipping a record that does not parse", "key", key, "error", err)
		return false, scratch, nil
	}
	if st.Renewed {
		return false, scratch, nil // the read-only stub of a renewed session
	}
	st.ID, scratch, _ = s.unsealInto(st.Sealed, scratch) // "" when no key opens it
	st.Ref = key[len(s.p):]
	return true, scratch, nil
}

// Renew moves the session to a fresh id and returns it (call it on login
// and privilege changes: session-fixation protection). One atomic script
// (one round trip when this process knows the session's user, else two)
// writes the record under the new id, updates the indexes
// and leaves the old id readable but not writable for Options.RenewGrace,
// so requests in flight with the old cookie still find the session.
func (s *Store) Renew(ctx context.Context, oldID string) (id string, err error) {
	ctx, sp := s.tel.Start(ctx, "renew")
	defer func() {
		sp.End(ctx, err)
		if err == nil {
			s.event(ctx, Event{Kind: EventRenewed})
		}
	}()
	return s.renewOp(ctx, oldID)
}

// renewOp is Renew without telemetry.
func (s *Store) renewOp(ctx context.Context, oldID string) (string, error) {
	if !validID(oldID) {
		return "", ErrNotFound
	}
	// The record is under the current key's hash, or a previous key's: the
	// script says "not found" for one that is not there, and the next is
	// tried (a renewed session moves to the current key).
	candidates := s.hashes(oldID)
	oldHash := candidates[0]
	// The user the record is expected to have: the one this process last
	// saw it with. The script refuses a wrong guess and names the user.
	guess := s.users.guess(oldHash)
	user := guess.user
	for range 4 + len(candidates) {
		newID := NewID()
		newHash := s.hash(newID)
		keys := []string{s.key(oldHash), s.key(newHash), s.idx, s.userKey(user)}
		args := []string{s.seal(newID), strconv.FormatInt(s.o.RenewGrace.Milliseconds(), 10), oldHash, newHash, user}
		out, err := s.runArray(ctx, scripts.SessionRenew, keys, args)
		if len(out) == 0 {
			return "", fmt.Errorf("session: renew: %w", err)
		}
		code, _ := out[0].AsInt64()
		switch {
		case code == 1 && errors.Is(err, ErrNotReplicated):
			return newID, err // renewed: the caller gets the new id with the error
		case err != nil:
			return "", fmt.Errorf("session: renew: %w", err)
		case code == 1:
			s.users.remember(newHash, user, guess.created)
			return newID, nil
		case code == 0 && len(candidates) > 1:
			candidates = candidates[1:]
			oldHash = candidates[0]
			guess = s.users.guess(oldHash)
			user = guess.user
			continue
		case code == 0:
			return "", ErrNotFound
		case code == -2:
			return "", fmt.Errorf("%w (renew)", ErrCorrupt)
		case code == -3:
			return "", ErrReadOnly
		case code == -4 && len(out) == 2:
			// The record has another user than expected: call again with
			// that user's index declared (its name is only known now).
			user, _ = out[1].ToString()
			guess = known{user: user}
		}
		// -1: the new id is taken (never in practice): draw another.
	}
	return "", fmt.Errorf("%w (renew)", ErrConflict)
}

// CollectGarbage drops expired members from the expiry index and from
// every user index (found with SCAN). Records expire by themselves.
func (s *Store) CollectGarbage(ctx context.Context) (n int, err error) {
	ctx, sp := s.tel.Start(ctx, "collect_garbage")
	defer func() { sp.End(ctx, err) }()
	return s.collectGarbageOp(ctx)
}

// collectGarbageOp is CollectGarbage without telemetry.
func (s *Store) collectGarbageOp(ctx context.Context) (int, error) {
	dropped := 0
	count := func(index string) error {
		before, err := s.c.Do(ctx, s.c.B().Zcard().Key(index).Build()).AsInt64()
		if err != nil {
			return err
		}
		m, err := s.members(ctx, index)
		dropped += int(before) - len(m)
		return err
	}
	if err := count(s.idx); err != nil {
		return dropped, fmt.Errorf("session: gc: %w", err)
	}
	if dropped > 0 {
		s.event(ctx, Event{Kind: EventExpired, Count: dropped})
	}
	// User indexes are found with SCAN on every primary (on a Cluster the
	// store's slot lives on one of them).
	for page, err := range scan.Keys(ctx, s.c, scan.Escape(s.p)+"u:*", 1000) {
		if err != nil {
			return dropped, fmt.Errorf("session: gc: %w", err)
		}
		for _, k := range page {
			if err := count(k); err != nil {
				return dropped, fmt.Errorf("session: gc: %w", err)
			}
		}
	}
	return dropped, nil
}
