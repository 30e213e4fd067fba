package lock

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/keyvalue-go/keyvalue/internal/scripts"
	"github.com/keyvalue-go/keyvalue/internal/telemetry"
	"github.com/keyvalue-go/keyvalue/internal/wake"
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
	ErrInvalidName = errors.New("lock: invalid name")
	// ErrNotReplicated: Options.WaitReplicas replicas did not acknowledge
	// the acquisition in time; the lock was released again.
	ErrNotReplicated = errors.New("acquisition not acknowledged by replicas")
	// ErrInvalidTTL: a lease TTL under a millisecond (the server's unit).
	ErrInvalidTTL = errors.New("lock: invalid TTL")
)

// notAcquiredError is returned by Lock when its context ends before the
// lock is free: it matches both ErrNotAcquired and the context's error.
type notAcquiredError struct {
	name  string
	cause error
}

func (e *notAcquiredError) Error() string {
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
}

// localWaiter is a caller of Lock waiting in this process: a release of
// the same Locker that grants it puts the fencing token on grant and ends
// its server-side wait.
type localWaiter struct {
	grant chan int64 // buffered: the release never blocks
	mu    sync.Mutex
	stop  context.CancelFunc // ends the current BLPOP; nil between waits
}

// hand gives the waiter its fencing token, unless it already has one.
func (w *localWaiter) hand(fence int64) bool {
	select {
	case w.grant <- fence:
	default:
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stop != nil {
		w.stop()
	}
	return true
}

// waiting sets (or, with nil, clears) what ends the current wait.
func (w *localWaiter) waiting(stop context.CancelFunc) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stop = stop
}

// handed returns the fencing token a release of this process handed over.
func (w *localWaiter) handed() (int64, bool) {
	select {
	case f := <-w.grant:
		return f, true
	default:
		return 0, false
	}
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

// keys names one lock's keys, all in the slot of {l:NAME}.
type keys struct {
	name     string
	all      []string // owner, readers, fence, waiting writers, waiting readers, undelivered grants
	wait     string   // prefix of the waiters' grant lists: kv:{l:NAME}:w:
	counter  string   // waiter sequence counter: kv:{l:NAME}:n
	seqs     string   // waiters' sequence numbers: kv:{l:NAME}:s
	numbered string   // prefix of the numbered grant lists: kv:{l:NAME}:w:s:
}

func (l *Locker) keysFor(name string) (keys, error) {
	if err := checkName(name); err != nil {
		return keys{}, err
	}
	p := "kv:{l:" + name + "}"
	return keys{name: name, all: []string{p, p + ":r", p + ":f", p + ":qx", p + ":qs", p + ":g"}, wait: p + ":w:",
		counter: p + ":n", seqs: p + ":s", numbered: p + ":w:s:"}, nil
}

// handoffCandidates is how many waiters queued after a holder its release
// declares (their numbered grant lists), to hand over in one round trip.
const handoffCandidates = 4

// forAcquire returns the acquire script's keys.
func (k keys) forAcquire(token string) []string {
	return append(k.with(token), k.counter, k.seqs)
}

// forRelease returns the release script's keys: those of with(token), the
// sequence numbers, and the numbered grant lists of the waiters after base
// (none when base < 0).
func (k keys) forRelease(token string, base int64) []string {
	out := append(k.with(token), k.seqs)
	if base >= 0 {
		for i := int64(1); i <= handoffCandidates; i++ {
			out = append(out, k.numbered+strconv.FormatInt(base+i, 10))
		}
	}
	return out
}

// with returns the lock's keys followed by token's grant list.
func (k keys) with(token string) []string {
	return append(k.all[:len(k.all):len(k.all)], k.wait+token)
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
// the lock (the release makes it the holder, and a second call pushes its
// fencing token onto the list), the holder's TTL runs out (then it tries
// again: the acquire script also finds a grant that was not delivered), or
// ctx ends.
func (l *Locker) acquire(ctx context.Context, k keys, shared, wait bool, ttl time.Duration) (lease *Lease, err error) {
	op := "try_lock"
	if wait {
		op = "lock"
	}
	ctx, sp := l.tel.Start(ctx, op)
	defer func() {
		if errors.Is(err, ErrNotAcquired) {
			l.tel.Add(ctx, "not_acquired", 1)
			err2 := err
			if !wait {
				err2 = nil // TryLock finding the lock held is an answer
			}
			sp.End(ctx, err2)
			return
		}
		sp.End(ctx, err)
	}()
	return l.acquireOp(ctx, k, shared, wait, ttl)
}

// acquireOp is acquire without telemetry.
func (l *Locker) acquireOp(ctx context.Context, k keys, shared, wait bool, ttl time.Duration) (*Lease, error) {
	if ttl < time.Millisecond {
		return nil, fmt.Errorf("lock %s: %w: %s is under a millisecond", k.name, ErrInvalidTTL, ttl)
	}
	token := newToken()
	ttlMS := strconv.FormatInt(ttl.Milliseconds(), 10)
	member := token + "|" + ttlMS
	start := time.Now()
	waited := false
	var backoff time.Duration
	// local registers the caller as a waiter of this Locker once it waits
	// (a lock taken at once costs no registration); a release of this
	// Locker that grants it meanwhile delivers through the server instead.
	var local *localWaiter
	defer func() {
		if local != nil {
			l.waiters.Delete(token)
		}
	}()
	// giveUp leaves the queues and reports why the acquisition ended.
	giveUp := func(what string, err error) (*Lease, error) {
		l.leave(k, token, member)
		if ctx.Err() != nil {
			return nil, &notAcquiredError{name: k.name, cause: ctx.Err()}
		}
		return nil, fmt.Errorf("lock %s: %s: %w", k.name, what, err)
	}
	seq := "" // this waiter's sequence number, once it has one
	for {
		// Register as a waiter for longer than this round may block.
		waitMS := "0"
		if wait {
			waitMS = strconv.FormatInt((l.maxWait() + time.Second).Milliseconds(), 10)
		}
		sent := time.Now()
		res, err := scripts.LockAcquire.Exec(ctx, l.c, k.forAcquire(token), []string{token, ttlMS, mode(shared), waitMS, seq}).AsIntSlice()
		if err != nil && wait && wake.Retryable(ctx, err) {
			wake.Pause(ctx, &backoff) // a lost connection: the same token tries again
			continue
		}
		if err != nil {
			return giveUp("acquire", err)
		}
		backoff = 0
		if len(res) > 0 && res[0] == 1 && len(res) == 4 {
			return l.acquired(ctx, k, token, shared, res[1], res[3], sent, ttl, time.Duration(res[2])*time.Millisecond, start)
		}
		if len(res) < 2 || len(res) > 3 || res[0] != 0 || wait != (len(res) == 3) {
			return nil, fmt.Errorf("lock %s: acquire: unexpected reply %v", k.name, res)
		}
		if !wait {
			return nil, fmt.Errorf("lock %s: %w", k.name, ErrNotAcquired)
		}
		if !waited {
			l.event(Event{Kind: EventWaiting, Name: k.name, Shared: shared})
			waited = true
		}
		// Wake when the holder's TTL runs out (a crashed holder), timed by
		// the client (see package wake).
		holderLeft := time.Duration(res[1]) * time.Millisecond
		seq = strconv.FormatInt(res[2], 10)
		if local == nil {
			local = &localWaiter{grant: make(chan int64, 1)}
			l.waiters.Store(token, local)
		}
		granted, ok, err := l.waitForGrant(ctx, k, token, seq, local, holderLeft+2*time.Millisecond)
		switch {
		case ok:
			fence, perr := strconv.ParseInt(granted, 10, 64)
			if perr != nil {
				return nil, fmt.Errorf("lock %s: grant list holds %q", k.name, granted)
			}
			// The lease started when the release granted it, just before
			// now; the server keeps it for its TTL + slack.
			return l.acquired(ctx, k, token, shared, fence, res[2], time.Now(), ttl, ttl, start)
		case ctx.Err() != nil:
			return giveUp("waiting", ctx.Err())
		case err != nil && wake.Retryable(ctx, err):
			wake.Pause(ctx, &backoff) // the wait's connection was lost: wait again
		case err != nil:
			return giveUp("waiting", err)
		}
		// The holder's TTL ran out (it crashed?), or a grant was missed: try again.
	}
}

// waitForGrant blocks up to d on the waiter's two grant lists (by token,
// where a grant delivered by a second call lands, and by sequence number,
// where a release puts it in its own script) until its grant (a fencing
// token) arrives, or a release in this process hands it over through
// local, which also ends the BLPOP (valkey-go unblocks it). The wait runs
// in the caller's goroutine: a grant reaches the caller with no hop
// between goroutines. Both lists are this waiter's alone, so a cancelled
// wait never takes another waiter's grant. An element of another token on
// the numbered list (a number given twice after the counter was lost) is
// forwarded to that waiter's own list.
func (l *Locker) waitForGrant(ctx context.Context, k keys, token, seq string, local *localWaiter, d time.Duration) (string, bool, error) {
	deadline := time.Now().Add(d)
	lists := []string{k.wait + token, k.numbered + seq}
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	local.waiting(cancel)
	defer local.waiting(nil)
	for {
		if f, ok := local.handed(); ok {
			return strconv.FormatInt(f, 10), true, nil
		}
		from, value, ok, err := wake.PopAny(pctx, l.c, lists, time.Until(deadline))
		if f, handed := local.handed(); handed {
			return strconv.FormatInt(f, 10), true, nil
		}
		if !ok || from == lists[0] {
			return value, ok, err
		}
		tok, fence, _ := strings.Cut(value, "|")
		if tok == token {
			return fence, true, nil
		}
		l.forward(ctx, k, tok, fence)
		if time.Until(deadline) <= 0 {
			return "", false, nil
		}
	}
}

// forward delivers a grant of another waiter to that waiter's own list
// (lock_grant.lua drops it if that waiter took it another way meanwhile).
func (l *Locker) forward(ctx context.Context, k keys, tok, fence string) {
	l.deliver(ctx, k, []string{tok}, []string{fence})
}

// deliver pushes grants (fencing tokens) onto their waiters' token lists
// in one call (lock_grant.lua). A failure only delays those waiters until
// their waits time out (they then find their grants themselves).
func (l *Locker) deliver(ctx context.Context, k keys, tokens, fences []string) {
	keys := []string{k.all[5]}
	args := []string{strconv.FormatInt((l.maxWait() + l.grantSlack()).Milliseconds(), 10)}
	for i, tok := range tokens {
		keys = append(keys, k.wait+tok)
		args = append(args, tok, fences[i])
	}
	if err := scripts.LockGrant.Exec(context.WithoutCancel(ctx), l.c, keys, args).Error(); err != nil {
		l.log.Warn("lock: delivering a grant failed; the waiter will find it when its wait times out", "lock", k.name, "error", err)
	}
}

// maxWait bounds how long a waiter stays registered per round.
func (l *Locker) maxWait() time.Duration { return max(l.opts.TTL, time.Second) * 2 }

func (l *Locker) acquired(ctx context.Context, k keys, token string, shared bool, fence, base int64, sent time.Time, ttl, left time.Duration, start time.Time) (*Lease, error) {
	lease := newLease(l, k, token, shared, fence, sent, ttl, left)
	lease.base = base
	if err := l.replicate(ctx, lease); err != nil {
		return nil, err
	}
	l.event(Event{Kind: EventAcquired, Name: k.name, Shared: shared, Token: fence, Waited: time.Since(start)})
	return lease, nil
}

// grantSlack is how much longer than its TTL a lease handed to a waiter
// lives on the server (covering the grant's delivery).
func (l *Locker) grantSlack() time.Duration {
	return min(time.Second, max(10*time.Millisecond, l.opts.TTL/10))
}

// release runs the release script in mode x, s, leave or force, then
// delivers the grants it made to the next holders. It reports whether the
// token held the lock.
func (l *Locker) release(ctx context.Context, k keys, token, mode, member string, base int64) (bool, error) {
	baseArg := ""
	if base >= 0 {
		baseArg = strconv.FormatInt(base, 10)
	}
	out, err := scripts.LockRelease.Exec(ctx, l.c, k.forRelease(token, base), []string{token, mode, member,
		strconv.FormatInt(l.grantSlack().Milliseconds(), 10), baseArg}).ToArray()
	if err != nil {
		return false, err
	}
	if len(out) < 2 {
		return false, fmt.Errorf("unexpected release reply of %d elements", len(out))
	}
	held, _ := out[0].AsInt64()
	pushed, _ := out[1].AsInt64()
	if granted := pushed + int64(len(out)-2)/2; granted > 0 {
		l.tel.Add(ctx, "handoffs", granted)
	}
	var tokens, fences []string
	for i := 2; i+1 < len(out); i += 2 {
		tok, _ := out[i].ToString()
		f, _ := out[i+1].AsInt64()
		if w, ok := l.waiters.Load(tok); ok && w.(*localWaiter).hand(f) {
			continue // a waiter of this Locker: handed over in-process
		}
		tokens, fences = append(tokens, tok), append(fences, strconv.FormatInt(f, 10))
	}
	if len(tokens) > 0 {
		l.deliver(ctx, k, tokens, fences)
	}
	return held == 1, nil
}

// leave takes a waiter out of the queues after it gave up, releasing the
// lock if a release handed it over meanwhile (best effort: queue entries
// also expire).
func (l *Locker) leave(k keys, token, member string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, _ = l.release(ctx, k, token, "leave", member, -1)
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
