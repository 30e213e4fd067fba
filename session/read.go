package session

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // matches the server's redis.sha1hex for optimistic checks, not for security
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/valkey-io/valkey-go"
)

// raw is a record as read, with the bytes it was read from and where.
type raw struct {
	st   stored
	sha1 string
	hash string // the hash it was found under
}

// origin is where a write of this record must take it from: nowhere
// special when it was found under the current key, else its previous
// key's hash (the write moves it).
func (r raw) origin(current string) origin {
	if r.hash == current {
		return origin{}
	}
	return origin{from: r.hash}
}

// prior is what a write of this record expects to replace: exactly what
// was read.
func (r raw) prior() prior { return prior{sha1: r.sha1, user: r.st.UserID} }

// find reads the record of id, whose hash under the current key is hash:
// under the current key, or else under a previous one (all in one MGET).
func (s *Store) find(ctx context.Context, id, hash string) (raw, error) {
	if len(s.keys) == 1 {
		return s.read(ctx, id, hash)
	}
	hashes := s.hashes(id)
	keys := make([]string, len(hashes))
	for i, h := range hashes {
		keys[i] = s.key(h)
	}
	vals, err := s.c.Do(ctx, s.c.B().Mget().Key(keys...).Build()).ToArray()
	if err != nil {
		return raw{}, fmt.Errorf("session: get: %w", err)
	}
	for i, v := range vals {
		b, err := v.AsBytes()
		if valkey.IsValkeyNil(err) {
			continue
		}
		if err != nil {
			return raw{}, fmt.Errorf("session: get: %w", err)
		}
		return s.parsed(id, hashes[i], b)
	}
	return raw{}, ErrNotFound
}

// read fetches and parses the record of hash (id only for error text and the result).
func (s *Store) read(ctx context.Context, id, hash string) (raw, error) {
	b, err := s.c.Do(ctx, s.c.B().Get().Key(s.key(hash)).Build()).AsBytes()
	if valkey.IsValkeyNil(err) {
		return raw{}, ErrNotFound
	}
	if err != nil {
		return raw{}, fmt.Errorf("session: get: %w", err)
	}
	return s.parsed(id, hash, b)
}

// parsed parses a record read for id under hash.
func (s *Store) parsed(id, hash string, b []byte) (raw, error) {
	st, err := s.parse(b)
	if err != nil {
		return raw{}, err
	}
	st.ID, st.Ref = id, hash
	s.users.remember(hash, st.UserID, st.Created)
	// The SHA1 is what a later compare-and-set checks; listing needs none.
	sum := sha1.Sum(b) //nolint:gosec // see import
	return raw{st: st, sha1: hex.EncodeToString(sum[:]), hash: hash}, nil
}

func (s *Store) parse(b []byte) (stored, error) {
	var st stored
	err := s.parseInto(b, &st)
	return st, err
}

// recordStart begins every stored record: the schema version, then the
// sealed id.
var recordStart = []byte(`{"v":` + strconv.Itoa(SchemaVersion) + `,"sid":"`)

// parseInto is parse decoding into st (a listing decodes into one slice).
func (s *Store) parseInto(b []byte, st *stored) error {
	if len(b) == 0 || b[len(b)-1] != '}' {
		return fmt.Errorf("%w: not a JSON object ending in '}' (trailing bytes?)", ErrCorrupt)
	}
	// What this package writes, and what Renew's script accepts (it
	// rewrites the sealed id in place): every reader takes the same
	// records.
	if !bytes.HasPrefix(b, recordStart) {
		return fmt.Errorf("%w: does not start with %s, as every record this package writes does", ErrCorrupt, recordStart)
	}
	// encoding/json/v2 semantics (the module mirrors the standard
	// library's; it aliases it from Go 1.27): one pass, about 3× faster
	// than a v1 Decoder on a record and 2 allocations instead of 16 (a
	// listing decodes hundreds), and stricter — unknown, duplicate or
	// differently-cased members, trailing bytes and invalid UTF-8 are
	// errors.
	if err := jsonv2.Unmarshal(b, st, jsonv2.RejectUnknownMembers(true)); err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if st.V != SchemaVersion {
		return fmt.Errorf("%w: schema version %d, this code reads %d", ErrCorrupt, st.V, SchemaVersion)
	}
	st.ReadOnly = st.Renewed
	return nil
}

// GetOptions adjust one read (GetWith).
type GetOptions struct {
	// CheckBinding makes the read report ErrNotFound unless the record's
	// binding equals Binding (compared in constant time). Records without
	// a binding match.
	CheckBinding bool
	Binding      string
	// NoTouch reads without extending the session.
	NoTouch bool
}

// Get returns the session with id. Unknown, expired and malformed ids all
// return ErrNotFound. If the session was last extended longer ago than
// Options.TouchInterval, Get extends it (sliding expiration).
func (s *Store) Get(ctx context.Context, id string) (Record, error) {
	return s.GetWith(ctx, id, GetOptions{})
}

// GetWith is Get with options: a binding check, or no sliding expiration.
func (s *Store) GetWith(ctx context.Context, id string, o GetOptions) (rec Record, err error) {
	ctx, sp := s.tel.Start(ctx, "get")
	defer func() { sp.End(ctx, notFound(err)) }()
	return s.getWithOp(ctx, id, o)
}

// getWithOp is GetWith without telemetry.
func (s *Store) getWithOp(ctx context.Context, id string, o GetOptions) (Record, error) {
	if !validID(id) {
		return Record{}, ErrNotFound
	}
	hash := s.hash(id)
	r, err := s.find(ctx, id, hash)
	if errors.Is(err, ErrNotFound) && s.o.OnEvent != nil {
		s.reportExpired(ctx, id)
	}
	if err != nil {
		return Record{}, err
	}
	if o.CheckBinding && r.st.Binding != "" && !hmac.Equal([]byte(r.st.Binding), []byte(o.Binding)) {
		return Record{}, ErrNotFound
	}
	now := time.Now()
	if !o.NoTouch && !r.st.ReadOnly && now.Sub(r.st.Touched) >= s.o.TouchInterval {
		rec := r.st.Record
		rec.Touched = now
		// Best effort: a concurrent write wins and has extended it anyway.
		rec.Expires = time.Time{}
		if _, err := s.write(ctx, id, hash, r.prior(), rec, r.origin(hash)); err != nil && !errors.Is(err, ErrConflict) {
			s.log.Warn("session: sliding expiration failed", "error", err)
		} else if err == nil {
			return s.withExpiry(rec), nil
		}
	}
	return r.st.Record, nil
}

// notFound is err unless it is ErrNotFound: a missing session is an
// answer, not a failure.
func notFound(err error) error {
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}
