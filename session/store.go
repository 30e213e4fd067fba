package session

import (
	"errors"
	"fmt"
	"log/slog"
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
	// ErrInvalidRef: a reference RemoveRef cannot take (Record.Ref is 64
	// lower-case hex digits).
	ErrInvalidRef = errors.New("session: invalid session reference")
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
	users           *knownSessions // the users of recently read or written sessions, for Renew and blind writes
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
		users: &knownSessions{m: map[string]known{}, created: o.MaxLifetime > 0}, tel: tel}, nil
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

// Prefix returns Options.Prefix: the store's name in its keys
// (kv:{s:PREFIX}:...).
func (s *Store) Prefix() string { return s.o.Prefix }

func (s *Store) key(hash string) string { return s.p + hash }

func (s *Store) userKey(user string) string {
	if user == "" {
		return s.userIndexPrefix
	}
	return s.p + "u:" + user
}
