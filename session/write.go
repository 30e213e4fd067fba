package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/keyvalue-go/keyvalue/internal/scripts"
	"github.com/valkey-io/valkey-go"
)

// The write path: every write goes through write and one script.

// Create stores a new session with a fresh id (ignoring rec.ID) and
// returns it with its id, timestamps and expiry filled in.
func (s *Store) Create(ctx context.Context, rec Record) (out Record, err error) {
	ctx, sp := s.tel.Start(ctx, "create")
	defer func() {
		sp.End(ctx, err)
		if err == nil {
			s.event(ctx, Event{Kind: EventCreated, UserID: out.UserID})
		}
	}()
	return s.createOp(ctx, rec)
}

// createOp is Create without telemetry.
func (s *Store) createOp(ctx context.Context, rec Record) (Record, error) {
	now := time.Now()
	rec.ID = NewID()
	rec.Created, rec.Updated, rec.Touched, rec.Expires = now, now, now, time.Time{}
	rec.ReadOnly, rec.Ref = false, s.hash(rec.ID)
	rec = s.withExpiry(rec)
	if _, err := s.write(ctx, rec.ID, rec.Ref, prior{}, rec, origin{}); err != nil {
		if errors.Is(err, ErrNotReplicated) {
			return rec, err // stored: the caller gets the id with the error
		}
		return Record{}, err
	}
	return rec, nil
}

// Set stores rec under id, replacing any session there (a blind write; use
// Update to modify a session that others may write too). A zero Created is
// set to now; Updated and Touched are set to now.
func (s *Store) Set(ctx context.Context, id string, rec Record) (out Record, err error) {
	ctx, sp := s.tel.Start(ctx, "set")
	defer func() { sp.End(ctx, err) }()
	return s.setOp(ctx, id, rec)
}

// setOp is Set without telemetry.
func (s *Store) setOp(ctx context.Context, id string, rec Record) (Record, error) {
	if !validID(id) {
		return Record{}, fmt.Errorf("%w (set: ids are 16-256 printable ASCII characters; use NewID)", ErrNotFound)
	}
	hash := s.hash(id)
	oldUser := ""
	old, err := s.find(ctx, id, hash)
	switch {
	case err == nil:
		if old.st.ReadOnly {
			return Record{}, ErrReadOnly
		}
		oldUser = old.st.UserID
	case errors.Is(err, ErrCorrupt):
		return Record{}, fmt.Errorf("%w; remove it first to replace it", err)
	case !errors.Is(err, ErrNotFound):
		return Record{}, err
	}
	now := time.Now()
	if rec.Created.IsZero() {
		rec.Created = now
	}
	rec.ID, rec.Ref, rec.Updated, rec.Touched, rec.ReadOnly = id, hash, now, now, false
	want := "" // create: nothing may be there
	if err == nil {
		want = old.sha1 // replace exactly what was read
	}
	var from origin
	if err == nil {
		from = old.origin(hash)
	}
	if _, err := s.write(ctx, id, hash, prior{sha1: want, user: oldUser}, rec, from); err != nil {
		if errors.Is(err, ErrNotReplicated) {
			return s.withExpiryIfZero(rec), err // stored, not acknowledged by replicas
		}
		return Record{}, err
	}
	return s.withExpiryIfZero(rec), nil
}

// Put stores rec under id whatever is stored there, the way scs and
// gorilla/sessions save a session (their adapters call it): the last
// write wins. Unlike Set it does not read the session first, and it
// fails with ErrConflict only if the session's user changed 16 times
// during the call: one round trip when this process knows the stored
// session's user (it read or wrote the session lately), one more each
// time the user changed elsewhere. The user indexes follow rec.UserID, so the
// per-user features (RemoveByUser, MaxSessionsPerUser, GetAllByUser,
// RemoveOthers) see sessions written this way. A stored session keeps its
// creation time (rec.Created applies to a new one; zero means now); a
// zero rec.Expires is computed from the lifetimes. Put refuses to replace
// a value that is not a session record (ErrCorrupt) and the read-only
// stub Renew left (ErrReadOnly). It returns the record as stored.
func (s *Store) Put(ctx context.Context, id string, rec Record) (out Record, err error) {
	ctx, sp := s.tel.Start(ctx, "put")
	created := false
	defer func() {
		sp.End(ctx, err)
		if created && (err == nil || errors.Is(err, ErrNotReplicated)) {
			s.event(ctx, Event{Kind: EventCreated, UserID: out.UserID})
		}
	}()
	out, created, err = s.putOp(ctx, id, rec)
	return out, err
}

// maxPutRounds bounds a blind write's calls while the stored session's
// user keeps changing under it.
const maxPutRounds = 16

// putOp is Put without telemetry; it also reports whether it created the
// session.
func (s *Store) putOp(ctx context.Context, id string, rec Record) (Record, bool, error) {
	if !validID(id) {
		return Record{}, false, fmt.Errorf("%w (got %d characters)", ErrInvalidID, len(id))
	}
	hashes := s.hashes(id)
	guess := s.users.guess(hashes[0])
	now := time.Now()
	rec.ID, rec.Ref, rec.Updated, rec.Touched, rec.ReadOnly = id, hashes[0], now, now, false
	if rec.Created.IsZero() {
		rec.Created = now
	}
	fixed := !rec.Expires.IsZero()
	p := prior{sha1: "*", user: guess.user}
	if !fixed && s.o.MaxLifetime > 0 {
		// The expiry counts from the creation time: the script checks the
		// one it is computed from.
		if !guess.created.IsZero() {
			rec.Created = guess.created
		}
		p.created = rec.Created.Format(time.RFC3339Nano)
	}
	for range maxPutRounds {
		w := rec
		if !fixed {
			w = s.withExpiry(w)
		}
		kept, err := s.write(ctx, id, hashes[0], p, w, origin{stale: hashes[1:]})
		var as *storedAs
		if errors.As(err, &as) {
			p.user = as.user
			if p.created != "" {
				p.created = as.created
				if t, perr := time.Parse(time.RFC3339Nano, as.created); perr == nil {
					rec.Created = t
				}
			}
			continue
		}
		if err != nil && !errors.Is(err, ErrNotReplicated) {
			return Record{}, false, err
		}
		if kept != "" {
			if t, perr := time.Parse(time.RFC3339Nano, kept); perr == nil {
				w.Created = t
			}
		}
		return w, kept == "", err // err: nil, or ErrNotReplicated (stored all the same)
	}
	return Record{}, false, fmt.Errorf("%w (put: the stored session's user changed %d times during the call)", ErrConflict, maxPutRounds)
}

func (s *Store) withExpiryIfZero(rec Record) Record {
	if rec.Expires.IsZero() {
		return s.withExpiry(rec)
	}
	return rec
}

// Update applies fn to the current record and writes the result only if
// nobody wrote the session meanwhile (an optimistic check in the write
// script); on a conflict it reads again and re-applies fn, up to
// Options.UpdateRetries times, then returns ErrConflict. No write is lost.
// fn may change every field but ID, Created and ReadOnly.
func (s *Store) Update(ctx context.Context, id string, fn func(*Record) error) (out Record, err error) {
	ctx, sp := s.tel.Start(ctx, "update")
	defer func() { sp.End(ctx, err) }()
	return s.updateOp(ctx, id, fn)
}

// updateOp is Update without telemetry.
func (s *Store) updateOp(ctx context.Context, id string, fn func(*Record) error) (Record, error) {
	if !validID(id) {
		return Record{}, ErrNotFound
	}
	hash := s.hash(id)
	for range s.o.UpdateRetries {
		r, err := s.find(ctx, id, hash)
		if err != nil {
			return Record{}, err
		}
		if r.st.ReadOnly {
			return Record{}, ErrReadOnly
		}
		rec := r.st.Record
		if err := fn(&rec); err != nil {
			return Record{}, err
		}
		now := time.Now()
		rec.ID, rec.Ref, rec.Created, rec.Updated, rec.Touched, rec.ReadOnly = id, hash, r.st.Created, now, now, false
		if rec.Expires.Equal(r.st.Expires) {
			rec.Expires = time.Time{} // recompute with the new touch
		}
		_, err = s.write(ctx, id, hash, r.prior(), rec, r.origin(hash))
		if errors.Is(err, ErrConflict) {
			continue
		}
		if errors.Is(err, ErrNotReplicated) {
			return s.withExpiryIfZero(rec), err // stored, not acknowledged by replicas
		}
		if err != nil {
			return Record{}, err
		}
		return s.withExpiryIfZero(rec), nil
	}
	return Record{}, fmt.Errorf("%w after %d attempts", ErrConflict, s.o.UpdateRetries)
}

// expiry computes when rec expires: its idle lifetime from its last touch,
// capped by MaxLifetime from its creation.
func (s *Store) expiry(rec Record) time.Time {
	life := s.o.Lifetime
	if rec.Permanent {
		life = s.o.PermanentLifetime
	}
	exp := rec.Touched.Add(life)
	if limit := rec.Created.Add(s.o.MaxLifetime); s.o.MaxLifetime > 0 && limit.Before(exp) {
		exp = limit
	}
	return exp
}

func (s *Store) withExpiry(rec Record) Record {
	rec.Expires = s.expiry(rec)
	return rec
}

// origin says where a written record is now, when that is not under its
// hash for the current key: under a previous key's hash (from: the write
// moves it, checking want there), or possibly under any previous key's
// (stale: a blind write deletes those copies).
type origin struct {
	from  string
	stale []string
}

// prior is what a write expects to replace.
type prior struct {
	// sha1 is "" when nothing may be there, "*" for whatever is there (a
	// blind write), else the SHA1 of the value read.
	sha1 string
	// user is the user of the value replaced: its index loses the session
	// when the user changes. A blind write checks it.
	user string
	// created is, for a blind write, the creation time (RFC 3339) the
	// value replaced must have, or "" for any.
	created string
}

// storedAs is a blind write's finding that the stored session has another
// user or creation time than the write expected: nothing was written.
type storedAs struct{ user, created string }

func (e *storedAs) Error() string {
	return fmt.Sprintf("session: the stored session has user %q, created %s", e.user, e.created)
}

// write stores rec for id under hash if the current value is what p
// expects. A zero rec.Expires is computed from the lifetimes; a set one
// (scs decides expiry itself) is kept. It returns the creation time a
// blind write kept ("" when it created the session).
func (s *Store) write(ctx context.Context, id, hash string, p prior, rec Record, o origin) (string, error) {
	if rec.Expires.IsZero() {
		rec = s.withExpiry(rec)
	}
	ttl := time.Until(rec.Expires)
	st := stored{V: SchemaVersion, Sealed: s.seal(id), Record: rec}
	return s.writeStored(ctx, hash, p, st, ttl, o)
}

// maxLimitRounds bounds the calls of a write that must evict sessions over
// Options.MaxSessionsPerUser while concurrent logins of the same user keep
// changing which ones (each call learns the current ones).
const maxLimitRounds = 100

func (s *Store) writeStored(ctx context.Context, hash string, p prior, st stored, ttl time.Duration, o origin) (string, error) {
	if ttl < time.Millisecond {
		_, err := s.removeHashes(ctx, append([]string{hash}, append(o.stale, nonEmpty(o.from)...)...), p.user, false)
		if err == nil {
			s.users.forget(hash)
		}
		return "", err
	}
	b, err := json.Marshal(st)
	if err != nil {
		return "", fmt.Errorf("session: encode: %w", err)
	}
	if len(b) > s.o.MaxRecordBytes {
		return "", fmt.Errorf("%w: %d bytes, over MaxRecordBytes %d", ErrTooLarge, len(b), s.o.MaxRecordBytes)
	}
	newUser := st.UserID
	src := hash
	if o.from != "" {
		src = o.from
	}
	var declared []string // members of the user's index the limit may evict
	for range maxLimitRounds {
		keys := []string{s.key(hash), s.idx, s.userKey(newUser), s.userKey(p.user), s.key(src)}
		args := []string{p.sha1, string(b), strconv.FormatInt(ttl.Milliseconds(), 10), hash, flag(newUser != ""), jsonContents(p.user), o.from, strconv.Itoa(len(o.stale)), p.created}
		for _, h := range o.stale {
			keys = append(keys, s.key(h))
			args = append(args, h)
		}
		args = append(args, strconv.Itoa(s.o.MaxSessionsPerUser))
		for _, h := range declared {
			keys = append(keys, s.key(h))
			args = append(args, h)
		}
		out, err := s.runArray(ctx, scripts.SessionWrite, keys, args)
		if len(out) == 0 {
			return "", fmt.Errorf("session: write: %w", err)
		}
		status, _ := out[0].AsInt64()
		switch {
		case status == 1:
			kept := ""
			if len(out) == 3 {
				if n, _ := out[1].AsInt64(); n > 0 {
					s.event(ctx, Event{Kind: EventEvicted, UserID: newUser, Count: int(n)})
				}
				kept, _ = out[2].ToString()
			}
			created := st.Created
			if kept != "" {
				created, _ = time.Parse(time.RFC3339Nano, kept)
			}
			s.users.remember(hash, newUser, created)
			return kept, err // nil, or ErrNotReplicated: stored all the same
		case err != nil:
			return "", fmt.Errorf("session: write: %w", err)
		case status == -2:
			return "", fmt.Errorf("%w: the stored value is not a session record; remove it first to replace it", ErrCorrupt)
		case status == -3:
			declared = declared[:0]
			for _, m := range out[1:] {
				h, _ := m.ToString()
				declared = append(declared, h)
			}
			continue
		case status == -4 && len(out) == 3:
			user, _ := out[1].ToString()
			created, _ := out[2].ToString()
			return "", &storedAs{user: user, created: created}
		case status == -5:
			return "", ErrReadOnly
		}
		return "", ErrConflict
	}
	return "", fmt.Errorf("%w (the user's sessions kept changing while the limit was enforced)", ErrConflict)
}

// jsonContents is s as a JSON string holds it, without the quotes: the
// bytes a record written by json.Marshal has for it.
func jsonContents(s string) string {
	b, err := json.Marshal(s)
	if err != nil || len(b) < 2 {
		return s // json.Marshal of a string does not fail
	}
	return string(b[1 : len(b)-1])
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

// run executes a writing script that returns a number; see exec.
func (s *Store) run(ctx context.Context, l *scripts.Script, keys, args []string) (int64, error) {
	r, err := s.exec(ctx, l, keys, args)
	if err != nil && !errors.Is(err, ErrNotReplicated) {
		return 0, err
	}
	v, rerr := r.AsInt64()
	if rerr != nil {
		return 0, rerr
	}
	return v, err
}

// runArray executes a writing script that returns an array whose first
// element is its status; see exec.
func (s *Store) runArray(ctx context.Context, l *scripts.Script, keys, args []string) ([]valkey.ValkeyMessage, error) {
	r, err := s.exec(ctx, l, keys, args)
	if err != nil && !errors.Is(err, ErrNotReplicated) {
		return nil, err
	}
	out, rerr := r.ToArray()
	if rerr != nil {
		return nil, rerr
	}
	return out, err
}

// exec executes a writing script; with Options.WaitReplicas it pipelines a
// WAIT after it on the same connection and reports a shortfall as
// ErrNotReplicated (the write itself stands) when the script wrote (its
// status, a number or an array's first element, is not 0 or negative).
func (s *Store) exec(ctx context.Context, l *scripts.Script, keys, args []string) (valkey.ValkeyResult, error) {
	if s.o.WaitReplicas <= 0 {
		r := l.Exec(ctx, s.c, keys, args)
		return r, r.Error()
	}
	rs := l.Pipelined(ctx, s.c, keys, args, func() valkey.Commands {
		return valkey.Commands{s.c.B().Wait().Numreplicas(int64(s.o.WaitReplicas)).Timeout(s.o.WaitTimeout.Milliseconds()).Build()}
	})
	if err := rs[0].Error(); err != nil {
		return rs[0], err
	}
	status, err := rs[0].AsInt64()
	if err != nil {
		if arr, aerr := rs[0].ToArray(); aerr == nil && len(arr) > 0 {
			status, _ = arr[0].AsInt64()
		}
	}
	acked, err := rs[1].AsInt64()
	if err != nil {
		return rs[0], fmt.Errorf("session: WAIT: %w", err)
	}
	if status > 0 && acked < int64(s.o.WaitReplicas) {
		return rs[0], fmt.Errorf("%w: %d of %d replicas within %s", ErrNotReplicated, acked, s.o.WaitReplicas, s.o.WaitTimeout)
	}
	return rs[0], nil
}

func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// removeHashes deletes records by hash with their index entries; exact
// requires the user index to hold exactly hashes (else it returns -1).
func (s *Store) removeHashes(ctx context.Context, hashes []string, user string, exact bool) (int, error) {
	keys := make([]string, 0, 2+len(hashes))
	keys = append(keys, s.idx, s.userKey(user))
	args := make([]string, 0, 2+len(hashes))
	args = append(args, flag(user != ""), flag(exact))
	for _, h := range hashes {
		keys = append(keys, s.key(h))
		args = append(args, h)
	}
	n, err := s.run(ctx, scripts.SessionRemove, keys, args)
	if err != nil {
		return 0, fmt.Errorf("session: remove: %w", err)
	}
	if n > 0 {
		for _, h := range hashes {
			s.users.forget(h)
		}
	}
	return int(n), nil
}
