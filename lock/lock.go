package lock

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/keyvalue-go/keyvalue/internal/scripts"
	"github.com/valkey-io/valkey-go"
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
	ErrInvalidName = errors.New("lock: invalid name")
	// ErrNotReplicated: Options.WaitReplicas replicas did not acknowledge
	// the acquisition in time; the lock was released again.
	ErrNotReplicated = errors.New("acquisition not acknowledged by replicas")
)

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
	// WaitReplicas, when positive, makes every acquisition wait (WAIT) until
	// that many replicas acknowledged it, for up to WaitTimeout (default
	// 100ms); otherwise the lock is released and ErrNotReplicated returned.
	// It narrows, but cannot close, the window in which a Sentinel failover
	// loses a lock (replication is asynchronous): use fencing tokens.
	WaitReplicas int
	WaitTimeout  time.Duration
	// Logger receives debug lines for acquire, wait, release and lost
	// leases; nil uses slog.Default().
	Logger *slog.Logger
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
	return &Locker{c: c, opts: opts, log: log}
}

// keys names one lock's keys, all in the slot of {l:NAME}.
type keys struct {
	name string
	all  []string // owner, readers, fence, waiting writers, waiting readers
	wait string   // prefix of the waiters' grant lists: kv:{l:NAME}:w:
}

func (l *Locker) keysFor(name string) (keys, error) {
	if err := checkName(name); err != nil {
		return keys{}, err
	}
	p := "kv:{l:" + name + "}"
	return keys{name: name, all: []string{p, p + ":r", p + ":f", p + ":qx", p + ":qs"}, wait: p + ":w:"}, nil
}

func checkName(name string) error {
	bad := func(why string) error { return fmt.Errorf("%w %q: %s", ErrInvalidName, name, why) }
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
func (m *Mutex) TryLock(ctx context.Context) (*Lease, error) {
	return m.l.acquire(ctx, m.k, false, false)
}

// Lock takes the lock, waiting until it is free or ctx is done. Waiting
// blocks on the server (BLPOP on the lock's wake list, on a connection of
// valkey-go's blocking pool) until the holder releases or its TTL runs
// out: there is no client-side polling.
func (m *Mutex) Lock(ctx context.Context) (*Lease, error) {
	return m.l.acquire(ctx, m.k, false, true)
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
	return m.l.acquire(ctx, m.k, true, false)
}

// RLock takes a shared lease, waiting while a writer holds or waits for it.
func (m *RWMutex) RLock(ctx context.Context) (*Lease, error) {
	return m.l.acquire(ctx, m.k, true, true)
}

func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func mode(shared bool) string {
	if shared {
		return "s"
	}
	return "x"
}

// acquire runs the acquire script; when wait is true and the lock is
// taken, it blocks in BLPOP on its own grant list until a release hands it
// the lock (the release script makes it the holder and pushes its fencing
// token), the holder's TTL runs out (then it tries again), or ctx ends.
func (l *Locker) acquire(ctx context.Context, k keys, shared, wait bool) (*Lease, error) {
	token := newToken()
	ttl := strconv.FormatInt(l.opts.TTL.Milliseconds(), 10)
	start := time.Now()
	waited := false
	for {
		// Register as a waiter for longer than this round may block.
		waitMS := "0"
		if wait {
			waitMS = strconv.FormatInt((l.opts.TTL + time.Second).Milliseconds(), 10)
		}
		sent := time.Now()
		res, err := l.runAcquire(ctx, k, token, ttl, shared, waitMS)
		if err != nil {
			l.leave(k, token)
			return nil, fmt.Errorf("lock %s: acquire: %w", k.name, err)
		}
		if len(res) != 2 {
			return nil, fmt.Errorf("lock %s: acquire: unexpected reply %v", k.name, res)
		}
		if res[0] == 1 {
			return l.acquired(ctx, k, token, shared, res[1], sent, start)
		}
		if !wait {
			return nil, fmt.Errorf("lock %s: %w", k.name, ErrNotAcquired)
		}
		if !waited {
			l.event(Event{Kind: EventWaiting, Name: k.name, Shared: shared})
			waited = true
		}
		timeout := time.Duration(res[1])*time.Millisecond + 5*time.Millisecond
		if dl, ok := ctx.Deadline(); ok {
			timeout = min(timeout, time.Until(dl))
		}
		if timeout <= 0 {
			l.leave(k, token)
			return nil, fmt.Errorf("lock %s: %w", k.name, context.DeadlineExceeded)
		}
		// UnblockOnCancel: when ctx ends, valkey-go sends CLIENT UNBLOCK and
		// keeps the connection, so cancellation returns at once even for a
		// context that also has a (later) deadline.
		blpop := l.c.B().Blpop().Key(k.wait + token).Timeout(max(timeout.Seconds(), 0.001)).Build().UnblockOnCancel()
		granted, err := l.c.Do(ctx, blpop).AsStrSlice()
		switch {
		case err == nil && len(granted) == 2:
			fence, perr := strconv.ParseInt(granted[1], 10, 64)
			if perr != nil {
				return nil, fmt.Errorf("lock %s: grant list holds %q", k.name, granted[1])
			}
			// The lease started when the release script granted it, just
			// before now; the server keeps it for TTL + slack.
			return l.acquired(ctx, k, token, shared, fence, time.Now(), start)
		case err != nil && !valkey.IsValkeyNil(err):
			l.leave(k, token)
			if ctx.Err() != nil {
				return nil, fmt.Errorf("lock %s: waiting: %w", k.name, ctx.Err())
			}
			return nil, fmt.Errorf("lock %s: waiting: %w", k.name, err)
		}
		// Timed out: the holder's TTL ran out (it crashed?); try again.
	}
}

func (l *Locker) acquired(ctx context.Context, k keys, token string, shared bool, fence int64, sent, start time.Time) (*Lease, error) {
	lease := newLease(l, k, token, shared, fence, sent)
	if err := l.replicate(ctx, lease); err != nil {
		return nil, err
	}
	l.event(Event{Kind: EventAcquired, Name: k.name, Shared: shared, Token: fence, Waited: time.Since(start)})
	return lease, nil
}

// grantSlack is how much longer than the TTL a lease handed to a waiter
// lives on the server (covering the grant's delivery).
func (l *Locker) grantSlack() time.Duration {
	return min(time.Second, max(10*time.Millisecond, l.opts.TTL/10))
}

// release runs the release script in mode x, s, leave or force.
func (l *Locker) release(ctx context.Context, k keys, token, mode string) (int64, error) {
	return scripts.LockRelease.Exec(ctx, l.c, k.all, []string{token, mode,
		strconv.FormatInt(l.opts.TTL.Milliseconds(), 10), strconv.FormatInt(l.grantSlack().Milliseconds(), 10), k.wait}).AsInt64()
}

func (l *Locker) runAcquire(ctx context.Context, k keys, token, ttl string, shared bool, waitMS string) ([]int64, error) {
	return scripts.LockAcquire.Exec(ctx, l.c, k.all, []string{token, ttl, mode(shared), waitMS}).AsIntSlice()
}

// leave takes a waiter out of the queues after it gave up, releasing the
// lock if a release handed it over meanwhile (best effort: queue entries
// also expire).
func (l *Locker) leave(k keys, token string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, _ = l.release(ctx, k, token, "leave")
}

// replicate waits for Options.WaitReplicas acknowledgements.
func (l *Locker) replicate(ctx context.Context, lease *Lease) error {
	if l.opts.WaitReplicas <= 0 {
		return nil
	}
	n, err := l.c.Do(ctx, l.c.B().Wait().Numreplicas(int64(l.opts.WaitReplicas)).Timeout(l.opts.WaitTimeout.Milliseconds()).Build()).AsInt64()
	if err == nil && n >= int64(l.opts.WaitReplicas) {
		return nil
	}
	_ = lease.Unlock(context.WithoutCancel(ctx))
	if err != nil {
		return fmt.Errorf("lock %s: WAIT: %w", lease.k.name, err)
	}
	return fmt.Errorf("lock %s: %w: %d of %d replicas within %s", lease.k.name, ErrNotReplicated, n, l.opts.WaitReplicas, l.opts.WaitTimeout)
}

func (l *Locker) event(e Event) {
	l.log.Debug("lock "+string(e.Kind), "lock", e.Name, "shared", e.Shared, "token", e.Token, "waited", e.Waited)
	if l.opts.OnEvent != nil {
		l.opts.OnEvent(e)
	}
}
