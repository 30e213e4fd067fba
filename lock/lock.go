package lock

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/keyvalue-go/keyvalue/internal/telemetry"
	"github.com/valkey-io/valkey-go"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Errors callers branch on with errors.Is.
var (
	// ErrNotAcquired: TryLock found the lock held.
	ErrNotAcquired = errors.New("held by another owner")
	// ErrNotHeld: Unlock or Refresh on a lease that expired or was taken
	// over; nothing was changed.
	ErrNotHeld = errors.New("lease no longer held")
	// ErrInvalidName: the lock name is empty, too long, or has whitespace,
	// control characters or braces.
	ErrInvalidName = errors.New("invalid name")
	// ErrNotReplicated: Options.WaitReplicas replicas did not acknowledge
	// the acquisition in time; the lock was released again.
	ErrNotReplicated = errors.New("acquisition not acknowledged by replicas")
	// ErrInvalidTTL: a lease TTL under a millisecond (the server's unit).
	ErrInvalidTTL = errors.New("invalid TTL")
)

// notAcquiredError is returned by Lock when its context ends before the
// lock is free, and by Lock and TryLock when the context was done before
// they tried: it matches both ErrNotAcquired and the context's error.
type notAcquiredError struct {
	name   string
	cause  error
	before bool // the context was done before the lock was tried
}

func (e *notAcquiredError) Error() string {
	if e.before {
		return fmt.Sprintf("lock %s: not acquired: the context was done before the lock was tried: %v", e.name, e.cause)
	}
	return fmt.Sprintf("lock %s: %v: gave up waiting: %v", e.name, ErrNotAcquired, e.cause)
}

func (e *notAcquiredError) Unwrap() []error { return []error{ErrNotAcquired, e.cause} }

// Defaults for zero Options fields.
const (
	DefaultTTL   = 30 * time.Second
	MaxNameBytes = 200
)

// Options configure a Locker.
type Options struct {
	// TTL is how long a lease lasts without Refresh; default 30s. A holder
	// that dies is replaced after its TTL, not before.
	TTL time.Duration
	// Watchdog refreshes every lease at a third of its TTL until it is
	// unlocked, so work may outlast the TTL while the process is alive.
	Watchdog bool
	// CheckInterval is how often a lease without the watchdog checks that
	// the server still has it (one read), so that a lease deleted or
	// shortened from outside (DEL, FLUSHDB, ForceRelease, PEXPIRE, a
	// failover that lost it) cancels Context within this interval instead
	// of at the end of the TTL; 0 means a third of the TTL, negative turns
	// the check off. It never extends the lease.
	CheckInterval time.Duration
	// DriftMargin is how much earlier than the server could drop a lease
	// its Context ends when the lease is not refreshed: Context's timer
	// runs on this machine's clock, the TTL on the server's, and the
	// margin absorbs a local clock that runs slower by up to that much
	// over a TTL. Default: a hundredth of the TTL plus 2ms (Redlock's
	// clock-drift factor); negative means none.
	DriftMargin time.Duration
	// WaitReplicas, when positive, makes every acquisition wait (WAIT) until
	// that many replicas acknowledged it, for up to WaitTimeout (default
	// 100ms); otherwise the lock is released and ErrNotReplicated returned.
	// It narrows, but cannot close, the window in which a Sentinel failover
	// loses a lock (replication is asynchronous): use fencing tokens.
	WaitReplicas int
	WaitTimeout  time.Duration
	// FairAfter is how long a waiter of another process may wait before
	// the lock is owed to it: until then, an exclusive lease's Unlock hands
	// the lock straight to a caller of the same Locker waiting for it (one
	// round trip, a new fencing token); after it, Unlock releases to the
	// server's queue in order (see "Cohorts" in the package doc). Default
	// 1ms (sync.Mutex's starvation threshold); negative hands every lock
	// over in queue order across processes. Not with WaitReplicas.
	FairAfter time.Duration
	// Logger receives debug lines for acquire, wait, release and lost
	// leases; nil uses slog.Default().
	Logger *slog.Logger
	// MeterProvider and TracerProvider receive the locks' metrics and spans
	// (keyvalue.lock.*: the "lock" operation's duration is the time spent
	// waiting; lock names are not attributes); nil uses OpenTelemetry's
	// global providers.
	MeterProvider  metric.MeterProvider
	TracerProvider trace.TracerProvider
	// OnEvent, if set, is called for each event (for metrics), synchronously.
	OnEvent func(Event)
}

// EventKind names what happened to a lock.
type EventKind string

// The event kinds.
const (
	// EventWaiting: Lock found the lock held and started waiting.
	EventWaiting EventKind = "waiting"
	// EventAcquired: a lease was granted.
	EventAcquired EventKind = "acquired"
	// EventReleased: Unlock released a lease.
	EventReleased EventKind = "released"
	// EventLost: a lease ended without Unlock (TTL ran out, taken over).
	EventLost EventKind = "lost"
)

// Event describes something that happened to a lock, for OnEvent.
type Event struct {
	Kind   EventKind
	Name   string
	Shared bool
	Token  int64         // fencing token (acquired, released, lost)
	Waited time.Duration // acquired: time spent waiting
}

// Locker makes locks on one connection (a *keyvalue.Client or any
// valkey.Client). It is safe for concurrent use.
type Locker struct {
	c    valkey.Client
	opts Options
	log  *slog.Logger
	tel  *telemetry.Recorder
	// waiters holds this Locker's waiting callers by token (*localWaiter):
	// a release by this Locker that grants one of them hands it the
	// fencing token in-process instead of through the server.
	waiters sync.Map
	// cohorts holds each exclusive lock's queue of this Locker's callers
	// (*cohort, by name; see cohort.go).
	cohorts sync.Map
}

// New returns a Locker on c.
func New(c valkey.Client, opts Options) *Locker {
	if opts.TTL <= 0 {
		opts.TTL = DefaultTTL
	}
	if opts.WaitTimeout <= 0 {
		opts.WaitTimeout = 100 * time.Millisecond
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	// Lock names stay out of the attributes: there may be one per resource.
	tel := telemetry.New("lock", "", "", opts.MeterProvider, opts.TracerProvider, map[string]string{
		"handoffs":     "Locks handed by a release straight to a waiting caller.",
		"not_acquired": "Lock attempts that ended without the lock (TryLock found it held, or the wait ended).",
		"lost":         "Leases that ended without Unlock (expired or taken away on the server).",
	})
	tel.Classify = func(err error) string {
		switch {
		case errors.Is(err, ErrNotHeld):
			return "not_held"
		case errors.Is(err, ErrNotAcquired):
			return "not_acquired"
		}
		return ""
	}
	return &Locker{c: c, opts: opts, log: log, tel: tel}
}

func checkName(name string) error {
	bad := func(why string) error { return fmt.Errorf("lock: %w %q: %s", ErrInvalidName, name, why) }
	switch {
	case name == "":
		return bad("must not be empty")
	case len(name) > MaxNameBytes:
		return bad(fmt.Sprintf("is %d bytes, over the %d-byte limit", len(name), MaxNameBytes))
	case !utf8.ValidString(name):
		return bad("is not valid UTF-8")
	}
	for i, r := range name {
		switch {
		case unicode.IsSpace(r):
			return bad(fmt.Sprintf("contains whitespace at byte %d", i))
		case unicode.IsControl(r) || !unicode.IsPrint(r):
			return bad(fmt.Sprintf("contains the control character %U at byte %d", r, i))
		case r == '{' || r == '}':
			return bad("contains a brace: lock names form the keys' hash tag")
		}
	}
	return nil
}

// Mutex is an exclusive lock called name.
type Mutex struct {
	l *Locker
	k keys
}

// Mutex returns the exclusive lock called name (1-200 bytes of UTF-8
// without whitespace, control characters or braces).
func (l *Locker) Mutex(name string) (*Mutex, error) {
	k, err := l.keysFor(name)
	if err != nil {
		return nil, err
	}
	return &Mutex{l: l, k: k}, nil
}

// TryLock takes the lock if it is free, else returns ErrNotAcquired at once.
// The lease lasts Options.TTL.
func (m *Mutex) TryLock(ctx context.Context) (*Lease, error) {
	return m.l.acquire(ctx, m.k, false, false, m.l.opts.TTL)
}

// Lock takes the lock, waiting until it is free or ctx is done. Waiting
// blocks on the server (BLPOP on the waiter's grant list, on a connection
// of valkey-go's blocking pool) until the holder releases or its TTL runs
// out: there is no client-side polling. A lost connection does not end the
// wait: it resumes on a new one. If ctx ends first, the error matches both
// ErrNotAcquired and ctx's error. The lease lasts Options.TTL.
func (m *Mutex) Lock(ctx context.Context) (*Lease, error) {
	return m.l.acquire(ctx, m.k, false, true, m.l.opts.TTL)
}

// TryLockFor is TryLock with a lease of ttl (at least a millisecond).
func (m *Mutex) TryLockFor(ctx context.Context, ttl time.Duration) (*Lease, error) {
	return m.l.acquire(ctx, m.k, false, false, ttl)
}

// LockFor is Lock with a lease of ttl (at least a millisecond).
func (m *Mutex) LockFor(ctx context.Context, ttl time.Duration) (*Lease, error) {
	return m.l.acquire(ctx, m.k, false, true, ttl)
}

// RWMutex is a lock called name with shared (read) and exclusive (write)
// leases: many readers or one writer. A waiting writer keeps new readers
// out, so a stream of readers cannot starve it. Its TryLock and Lock are
// Mutex's: exclusive leases.
type RWMutex struct {
	Mutex
}

// RWMutex returns the read/write lock called name. It shares its keys with
// Mutex(name): an exclusive lease from either excludes everybody.
func (l *Locker) RWMutex(name string) (*RWMutex, error) {
	m, err := l.Mutex(name)
	if err != nil {
		return nil, err
	}
	return &RWMutex{Mutex: *m}, nil
}

// TryRLock takes a shared lease if no writer holds or waits for the lock.
func (m *RWMutex) TryRLock(ctx context.Context) (*Lease, error) {
	return m.l.acquire(ctx, m.k, true, false, m.l.opts.TTL)
}

// RLock takes a shared lease, waiting while a writer holds or waits for it.
func (m *RWMutex) RLock(ctx context.Context) (*Lease, error) {
	return m.l.acquire(ctx, m.k, true, true, m.l.opts.TTL)
}

// RLockFor is RLock with a lease of ttl (at least a millisecond).
func (m *RWMutex) RLockFor(ctx context.Context, ttl time.Duration) (*Lease, error) {
	return m.l.acquire(ctx, m.k, true, true, ttl)
}

// acquire runs the acquire script; when wait is true and the lock is
// taken, it blocks in BLPOP on its own grant list until a release hands it
// the lock (the release makes it the holder, and a second call pushes its
// fencing token onto the list), the holder's TTL runs out (then it tries
// again: the acquire script also finds a grant that was not delivered), or
// ctx ends.
func (l *Locker) acquire(ctx context.Context, k keys, shared, wait bool, ttl time.Duration) (*Lease, error) {
	op := "try_lock"
	if wait {
		op = "lock"
	}
	ctx, sp := l.tel.Start(ctx, op)
	// giveBack returns the lock when it came as the caller gave up (a grant
	// and the end of its context crossed), as a waiter that leaves does.
	giveBack := func(lease *Lease) (*Lease, error) {
		if lease.cohort != nil {
			_ = lease.Unlock(context.WithoutCancel(ctx)) // hands it to the cohort's next caller
		} else {
			lease.end(context.Canceled)
			l.leave(k, lease.token, lease.member)
		}
		return nil, &notAcquiredError{name: k.name, cause: ctx.Err()}
	}
	var lease *Lease
	var err error
	if !shared && l.usesCohorts() {
		lease, err = l.lockInCohort(ctx, k, wait, ttl)
	} else {
		lease, err = l.acquireOp(ctx, k, shared, wait, ttl, turn{})
	}
	if err == nil && ctx.Err() != nil {
		lease, err = giveBack(lease)
	}
	switch {
	case errors.Is(err, ErrNotAcquired):
		l.tel.Add(ctx, "not_acquired", 1)
		if wait {
			sp.End(ctx, err)
		} else {
			sp.End(ctx, nil) // TryLock finding the lock held is an answer
		}
	default:
		sp.End(ctx, err)
	}
	// Checked again last, so that only a context that ends after this point
	// is the caller's to see: no lease goes to a caller whose context was
	// done before Lock returned.
	if err == nil && ctx.Err() != nil {
		return giveBack(lease)
	}
	return lease, err
}

func (l *Locker) event(e Event) {
	if e.Kind == EventLost {
		l.tel.Add(context.Background(), "lost", 1)
	}
	if l.log.Enabled(context.Background(), slog.LevelDebug) { // the arguments allocate even when dropped
		l.log.Debug("lock "+string(e.Kind), "lock", e.Name, "shared", e.Shared, "token", e.Token, "waited", e.Waited)
	}
	if l.opts.OnEvent != nil {
		l.opts.OnEvent(e)
	}
}
