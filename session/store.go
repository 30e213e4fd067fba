package session

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // matches the server's redis.sha1hex for optimistic checks, not for security
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/keyvalue-go/keyvalue/internal/telemetry"
	"github.com/valkey-io/valkey-go"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Errors callers branch on with errors.Is.
var (
	// ErrNotFound: no session has that id (unknown, expired, removed or
	// malformed: the error does not say which).
	ErrNotFound = errors.New("session: not found")
	// ErrConflict: Update's function kept meeting concurrent writes.
	ErrConflict = errors.New("session: concurrent update conflict")
	// ErrReadOnly: the id was replaced by Renew; the old id is readable
	// during the grace period but cannot be written.
	ErrReadOnly = errors.New("session: id was renewed; write through the new id")
	// ErrCorrupt: a stored record does not parse (it is left as it is).
	ErrCorrupt = errors.New("session: stored record cannot be read")
	// ErrTooLarge: the record exceeds Options.MaxRecordBytes.
	ErrTooLarge = errors.New("session: record too large")
	// ErrNotReplicated: Options.WaitReplicas replicas did not acknowledge a
	// write in time. The write is stored on the primary: Create, Set,
	// Update and Renew return their result (the record, the new id) together
	// with this error, so the caller can keep or remove it. It may be lost if
	// the primary fails before a replica has it.
	ErrNotReplicated = errors.New("session: write not acknowledged by replicas")
	// ErrInvalidOptions: the Options cannot work.
	ErrInvalidOptions = errors.New("session: invalid options")
	// ErrInvalidID: an id (an scs token) that no session can have: ids are
	// 16 to 256 printable ASCII characters (NewID and scs make 43).
	ErrInvalidID = errors.New("session: invalid token: ids are 16 to 256 printable ASCII characters")
)

// Defaults for zero Options fields.
const (
	DefaultLifetime          = 24 * time.Hour
	DefaultPermanentLifetime = 30 * 24 * time.Hour
	DefaultRenewGrace        = 30 * time.Second
	DefaultMaxRecordBytes    = 1 << 20
	DefaultWaitTimeout       = 100 * time.Millisecond
	DefaultUpdateRetries     = 10
	// MinKeyBytes is the shortest Options.Key accepted.
	MinKeyBytes = 32
)

// Options configure a Store.
type Options struct {
	// Prefix separates stores on one server ("fe", "be"): keys are
	// kv:{s:PREFIX}:…, all in one Cluster slot. Letters, digits, '_', '-', '.'.
	Prefix string
	// Key is the secret (at least 32 bytes) for HMAC-SHA256 of session ids
	// and for sealing them. Changing it invalidates every session.
	Key []byte
	// KeyFile names a file holding the key instead (Docker and Kubernetes
	// secrets); one trailing newline is ignored. New reads it; it excludes Key.
	KeyFile string
	// Lifetime is the idle lifetime, extended on use (sliding expiration);
	// default 24h. PermanentLifetime applies to Permanent ("remember me")
	// sessions; default 30 days.
	Lifetime, PermanentLifetime time.Duration
	// MaxLifetime caps a session's age however active it is; 0 = no cap.
	MaxLifetime time.Duration
	// TouchInterval throttles sliding expiration: Get extends a session only
	// when it was last extended longer ago than this; default Lifetime/10.
	TouchInterval time.Duration
	// RenewGrace keeps the old id readable after Renew; default 30s.
	RenewGrace time.Duration
	// MaxRecordBytes bounds a stored record; default 1 MiB.
	MaxRecordBytes int
	// WaitReplicas, when positive, makes every write wait (WAIT) until that
	// many replicas acknowledged it, for up to WaitTimeout (default 100ms),
	// else ErrNotReplicated (the write itself stands). With it, sessions
	// acknowledged before a Sentinel failover survive it.
	WaitReplicas int
	WaitTimeout  time.Duration
	// UpdateRetries bounds Update's retries on conflict; default 10.
	UpdateRetries int
	// MeterProvider and TracerProvider receive the store's metrics and
	// spans (keyvalue.session.*; no session ids or data in attributes);
	// nil uses OpenTelemetry's global providers.
	MeterProvider  metric.MeterProvider
	TracerProvider trace.TracerProvider
	// Logger; nil uses slog.Default().
	Logger *slog.Logger
}

// Store keeps sessions under one prefix. It is safe for concurrent use.
type Store struct {
	c               valkey.Client
	o               Options
	p               string // kv:{s:PREFIX}:
	idx             string
	userIndexPrefix string // kv:{s:PREFIX}:u: (a user's index is this + user id)
	mac             []byte
	aead            cipher.AEAD
	log             *slog.Logger
	users           *userGuesses // the users of recently read or written sessions, for Renew
	tel             *telemetry.Recorder
}

// New returns a store on c. It does no I/O.
func New(c valkey.Client, o Options) (*Store, error) {
	if err := checkPrefix(o.Prefix); err != nil {
		return nil, err
	}
	if o.KeyFile != "" {
		if len(o.Key) > 0 {
			return nil, fmt.Errorf("%w: Key and KeyFile are both set: use one", ErrInvalidOptions)
		}
		b, err := os.ReadFile(o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: KeyFile: %v", ErrInvalidOptions, err)
		}
		o.Key = bytes.TrimSuffix(bytes.TrimSuffix(b, []byte("\n")), []byte("\r"))
	}
	if len(o.Key) < MinKeyBytes {
		return nil, fmt.Errorf("%w: Key has %d bytes; use at least %d random bytes (e.g. openssl rand -hex 32)", ErrInvalidOptions, len(o.Key), MinKeyBytes)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.Lifetime, DefaultLifetime)
	def(&o.PermanentLifetime, DefaultPermanentLifetime)
	def(&o.TouchInterval, o.Lifetime/10)
	def(&o.RenewGrace, DefaultRenewGrace)
	def(&o.WaitTimeout, DefaultWaitTimeout)
	if o.MaxRecordBytes <= 0 {
		o.MaxRecordBytes = DefaultMaxRecordBytes
	}
	if o.UpdateRetries <= 0 {
		o.UpdateRetries = DefaultUpdateRetries
	}
	if o.MaxLifetime < 0 {
		return nil, fmt.Errorf("%w: MaxLifetime must not be negative", ErrInvalidOptions)
	}
	for name, d := range map[string]time.Duration{"Lifetime": o.Lifetime, "PermanentLifetime": o.PermanentLifetime, "MaxLifetime": o.MaxLifetime, "RenewGrace": o.RenewGrace} {
		if d > 0 && d < time.Millisecond {
			return nil, fmt.Errorf("%w: %s is %s; the server counts in milliseconds: use at least 1ms", ErrInvalidOptions, name, d)
		}
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	// Separate keys for hashing and sealing, both derived from o.Key.
	derive := func(label string) []byte {
		m := hmac.New(sha256.New, o.Key)
		m.Write([]byte("keyvalue/session/" + label))
		return m.Sum(nil)
	}
	block, _ := aes.NewCipher(derive("seal"))
	aead, _ := cipher.NewGCM(block)
	p := "kv:{s:" + o.Prefix + "}:"
	tel := telemetry.New("session", "keyvalue.session.prefix", o.Prefix, o.MeterProvider, o.TracerProvider, map[string]string{
		"created": "Sessions created.",
		"renewed": "Sessions renewed (moved to a new id).",
		"removed": "Sessions removed one by one.",
		"revoked": "Sessions removed with all of their user's sessions (RemoveByUser).",
	})
	return &Store{c: c, o: o, p: p, idx: p + "idx", userIndexPrefix: p + "u:", mac: derive("id"), aead: aead, log: log,
		users: &userGuesses{m: map[string]string{}}, tel: tel}, nil
}

func checkPrefix(p string) error {
	if p == "" || len(p) > 64 {
		return fmt.Errorf("%w: Prefix %q must be 1 to 64 bytes", ErrInvalidOptions, p)
	}
	for i := range len(p) {
		c := p[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return fmt.Errorf("%w: Prefix %q: byte %d (%q) is not allowed; use letters, digits, '_', '-', '.'", ErrInvalidOptions, p, i, c)
		}
	}
	return nil
}

// NewID returns a fresh session id: 32 random bytes, base64url (43 characters).
func NewID() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// validID accepts what NewID produces and other reasonable cookie values:
// 16 to 256 printable ASCII characters without spaces.
func validID(id string) bool {
	if len(id) < 16 || len(id) > 256 {
		return false
	}
	for i := range len(id) {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}

// hash is the member and key suffix for an id.
func (s *Store) hash(id string) string {
	m := hmac.New(sha256.New, s.mac)
	m.Write([]byte(id))
	return hex.EncodeToString(m.Sum(nil))
}

func (s *Store) key(hash string) string { return s.p + hash }

func (s *Store) userKey(user string) string {
	if user == "" {
		return s.userIndexPrefix
	}
	return s.p + "u:" + user
}

func (s *Store) seal(id string) string {
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce)
	return base64.RawStdEncoding.EncodeToString(s.aead.Seal(nonce, nonce, []byte(id), nil))
}

func (s *Store) unseal(sealed string) (string, bool) {
	b, err := base64.RawStdEncoding.DecodeString(sealed)
	if err != nil || len(b) < s.aead.NonceSize() {
		return "", false
	}
	id, err := s.aead.Open(nil, b[:s.aead.NonceSize()], b[s.aead.NonceSize():], nil)
	return string(id), err == nil
}

// raw is a record as read, with the bytes it was read from.
type raw struct {
	st   stored
	sha1 string
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
	st, err := s.parse(b)
	if err != nil {
		return raw{}, err
	}
	st.ID = id
	s.users.remember(hash, st.UserID)
	// The SHA1 is what a later compare-and-set checks; listing needs none.
	sum := sha1.Sum(b) //nolint:gosec // see import
	return raw{st: st, sha1: hex.EncodeToString(sum[:])}, nil
}

func (s *Store) parse(b []byte) (stored, error) {
	var st stored
	if len(b) == 0 || b[len(b)-1] != '}' {
		return stored{}, fmt.Errorf("%w: not a JSON object ending in '}' (trailing bytes?)", ErrCorrupt)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return stored{}, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if dec.More() {
		return stored{}, fmt.Errorf("%w: bytes after the record", ErrCorrupt)
	}
	if st.V != SchemaVersion {
		return stored{}, fmt.Errorf("%w: schema version %d, this code reads %d", ErrCorrupt, st.V, SchemaVersion)
	}
	st.ReadOnly = st.Renewed
	return st, nil
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
	r, err := s.read(ctx, id, hash)
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
		if err := s.write(ctx, id, hash, r.sha1, rec, r.st.UserID); err != nil && !errors.Is(err, ErrConflict) {
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
