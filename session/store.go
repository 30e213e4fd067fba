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
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
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
	// Key is the current secret (at least 32 bytes) for HMAC-SHA256 of
	// session ids and for sealing them: new and rewritten sessions use it.
	Key []byte
	// KeyFile names a file holding the key instead (Docker and Kubernetes
	// secrets); one trailing newline is ignored. New reads it; it excludes Key.
	KeyFile string
	// PreviousKeys (and the files PreviousKeyFiles) are earlier keys,
	// accepted for reading: a session stored under one keeps working and
	// moves to Key on its next write or sliding-expiration touch (one
	// atomic script). Rotate a key by making it Key and the old one a
	// previous key, run Rekey (keyvalue session rekey) to move every
	// session, then drop the previous key. Each costs a Get of a session
	// that is not found one more key in the same MGET.
	PreviousKeys     [][]byte
	PreviousKeyFiles []string
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
	// MaxSessionsPerUser, when positive, caps a user's sessions: a write
	// that gives a user one session more (Create, or Set/Update adding a
	// UserID) ends the user's sessions that expire soonest — with sliding
	// expiration, the least recently used; a Permanent session counts by
	// its longer expiry — in the same atomic script, so concurrent logins
	// cannot leave more. Renew keeps the count. Off by default.
	MaxSessionsPerUser int
	// OnEvent, if set, is called synchronously for sessions created,
	// renewed, removed, revoked, evicted by MaxSessionsPerUser and found
	// expired (see EventKind), e.g. for an audit log. The same counts go
	// to the OpenTelemetry counters keyvalue.session.<kind>.
	OnEvent func(Event)
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
	userIndexPrefix string     // kv:{s:PREFIX}:u: (a user's index is this + user id)
	keys            []storeKey // the current key first, then the previous ones
	log             *slog.Logger
	users           *userGuesses // the users of recently read or written sessions, for Renew
	tel             *telemetry.Recorder
}

// New returns a store on c. It does no I/O.
func New(c valkey.Client, o Options) (*Store, error) {
	if err := checkPrefix(o.Prefix); err != nil {
		return nil, err
	}
	secrets, err := o.secrets()
	if err != nil {
		return nil, err
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
	if o.MaxSessionsPerUser < 0 {
		return nil, fmt.Errorf("%w: MaxSessionsPerUser must not be negative", ErrInvalidOptions)
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
	keys := make([]storeKey, len(secrets))
	for i, secret := range secrets {
		keys[i] = deriveKey(secret)
	}
	p := "kv:{s:" + o.Prefix + "}:"
	tel := telemetry.New("session", "keyvalue.session.prefix", o.Prefix, o.MeterProvider, o.TracerProvider, map[string]string{
		string(EventCreated): "Sessions created.",
		string(EventRenewed): "Sessions renewed (moved to a new id).",
		string(EventRemoved): "Sessions removed one by one.",
		string(EventRevoked): "Sessions ended with their user's other sessions (RemoveByUser, RemoveOthers).",
		string(EventEvicted): "Sessions ended because their user went over Options.MaxSessionsPerUser.",
		string(EventExpired): "Sessions found expired, by a read or by garbage collection.",
	})
	return &Store{c: c, o: o, p: p, idx: p + "idx", userIndexPrefix: p + "u:", keys: keys, log: log,
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

// secrets returns the current key, then the previous ones, read from
// their files where given, each checked.
func (o Options) secrets() ([][]byte, error) {
	current := o.Key
	if o.KeyFile != "" {
		if len(o.Key) > 0 {
			return nil, fmt.Errorf("%w: Key and KeyFile are both set: use one", ErrInvalidOptions)
		}
		b, err := readKeyFile(o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: KeyFile: %v", ErrInvalidOptions, err)
		}
		current = b
	}
	if len(current) < MinKeyBytes {
		return nil, fmt.Errorf("%w: Key has %d bytes; use at least %d random bytes (e.g. openssl rand -hex 32)", ErrInvalidOptions, len(current), MinKeyBytes)
	}
	out := [][]byte{current}
	for i, k := range o.PreviousKeys {
		if len(k) < MinKeyBytes {
			return nil, fmt.Errorf("%w: PreviousKeys[%d] has %d bytes; keys have at least %d", ErrInvalidOptions, i, len(k), MinKeyBytes)
		}
		out = append(out, k)
	}
	for _, f := range o.PreviousKeyFiles {
		k, err := readKeyFile(f)
		if err != nil {
			return nil, fmt.Errorf("%w: PreviousKeyFiles: %v", ErrInvalidOptions, err)
		}
		if len(k) < MinKeyBytes {
			return nil, fmt.Errorf("%w: PreviousKeyFiles %s holds %d bytes; keys have at least %d", ErrInvalidOptions, f, len(k), MinKeyBytes)
		}
		out = append(out, k)
	}
	for i := 1; i < len(out); i++ {
		if bytes.Equal(out[i], current) {
			return nil, fmt.Errorf("%w: a previous key equals the current Key", ErrInvalidOptions)
		}
	}
	return out, nil
}

// readKeyFile reads a key file, ignoring one trailing newline.
func readKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(bytes.TrimSuffix(b, []byte("\n")), []byte("\r")), nil
}

// storeKey is what one secret is used as: separate keys for hashing ids
// and for sealing them, both derived from it.
type storeKey struct {
	ids  *sync.Pool // of *idHasher keyed with the id-hashing key
	aead cipher.AEAD
}

// idHasher is a keyed HMAC-SHA256 with its buffers, reused through
// storeKey.ids: hashing an id then allocates only the resulting string.
type idHasher struct {
	mac           hash.Hash
	in, sum, text []byte
}

func deriveKey(secret []byte) storeKey {
	derive := func(label string) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte("keyvalue/session/" + label))
		return m.Sum(nil)
	}
	block, _ := aes.NewCipher(derive("seal")) // a 32-byte key never fails
	aead, _ := cipher.NewGCM(block)
	idKey := derive("id")
	ids := &sync.Pool{New: func() any { return &idHasher{mac: hmac.New(sha256.New, idKey)} }}
	return storeKey{ids: ids, aead: aead}
}

// hash is HMAC-SHA256(the id-hashing key, id) in hex.
func (k storeKey) hash(id string) string {
	h := k.ids.Get().(*idHasher)
	defer k.ids.Put(h)
	h.mac.Reset()
	h.in = append(h.in[:0], id...)
	h.mac.Write(h.in)
	h.sum = h.mac.Sum(h.sum[:0])
	h.text = hex.AppendEncode(h.text[:0], h.sum)
	return string(h.text)
}

// hash is the member and key suffix for an id under the current key.
func (s *Store) hash(id string) string { return s.keys[0].hash(id) }

// hashes are an id's hashes under every key, the current one first.
func (s *Store) hashes(id string) []string {
	out := make([]string, len(s.keys))
	for i, k := range s.keys {
		out[i] = k.hash(id)
	}
	return out
}

func (s *Store) key(hash string) string { return s.p + hash }

func (s *Store) userKey(user string) string {
	if user == "" {
		return s.userIndexPrefix
	}
	return s.p + "u:" + user
}

// seal encrypts an id with the current key.
func (s *Store) seal(id string) string {
	aead := s.keys[0].aead
	nonce := make([]byte, aead.NonceSize())
	_, _ = rand.Read(nonce)
	return base64.RawStdEncoding.EncodeToString(aead.Seal(nonce, nonce, []byte(id), nil))
}

// unseal decrypts an id sealed with any of the keys.
func (s *Store) unseal(sealed string) (string, bool) {
	id, _, ok := s.unsealInto(sealed, nil)
	return id, ok
}

// unsealInto is unseal decoding into scratch (grown as needed and
// returned for the next call), so that a listing opening hundreds of ids
// allocates only the ids.
func (s *Store) unsealInto(sealed string, scratch []byte) (string, []byte, bool) {
	n := base64.RawStdEncoding.DecodedLen(len(sealed))
	scratch = slices.Grow(scratch[:0], 2*n)[:2*n]
	b, opened := scratch[:n], scratch[n:n:2*n]
	if _, err := base64.RawStdEncoding.Decode(b, []byte(sealed)); err != nil {
		return "", scratch, false
	}
	for _, k := range s.keys {
		ns := k.aead.NonceSize()
		if len(b) < ns {
			return "", scratch, false
		}
		if id, err := k.aead.Open(opened, b[:ns], b[ns:], nil); err == nil {
			return string(id), scratch, true
		}
	}
	return "", scratch, false
}

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
	st.ID = id
	s.users.remember(hash, st.UserID)
	// The SHA1 is what a later compare-and-set checks; listing needs none.
	sum := sha1.Sum(b) //nolint:gosec // see import
	return raw{st: st, sha1: hex.EncodeToString(sum[:]), hash: hash}, nil
}

func (s *Store) parse(b []byte) (stored, error) {
	var st stored
	err := s.parseInto(b, &st)
	return st, err
}

// parseInto is parse decoding into st (a listing decodes into one slice).
func (s *Store) parseInto(b []byte, st *stored) error {
	if len(b) == 0 || b[len(b)-1] != '}' {
		return fmt.Errorf("%w: not a JSON object ending in '}' (trailing bytes?)", ErrCorrupt)
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
		if err := s.write(ctx, id, hash, r.sha1, rec, r.st.UserID, r.origin(hash)); err != nil && !errors.Is(err, ErrConflict) {
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
