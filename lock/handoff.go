package lock

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keyvalue-go/keyvalue/internal/scripts"
	"github.com/keyvalue-go/keyvalue/internal/wake"
)

// The hand-off engine: the acquire and release scripts' keys and calls,
// the wait for a grant (server-side BLPOP, or in-process from a release of
// the same Locker), grant delivery, and leaving the queues. See "How
// waiting works" in the package doc.

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

// keys names one lock's keys, all in the slot of {l:NAME}.
type keys struct {
	name     string
	all      []string // owner, readers, fence, waiting writers, waiting readers, undelivered grants
	wait     string   // prefix of the waiters' grant lists: kv:{l:NAME}:w:
	counter  string   // waiter sequence counter: kv:{l:NAME}:n
	seqs     string   // waiters' sequence numbers: kv:{l:NAME}:s
	alive    string   // waiters' liveness deadlines: kv:{l:NAME}:qd
	numbered string   // prefix of the numbered grant lists: kv:{l:NAME}:w:s:
}

func (l *Locker) keysFor(name string) (keys, error) {
	if err := checkName(name); err != nil {
		return keys{}, err
	}
	p := "kv:{l:" + name + "}"
	return keys{name: name, all: []string{p, p + ":r", p + ":f", p + ":qx", p + ":qs", p + ":g"}, wait: p + ":w:",
		counter: p + ":n", seqs: p + ":s", alive: p + ":qd", numbered: p + ":w:s:"}, nil
}

// handoffCandidates is how many waiters queued after a holder its release
// declares (their numbered grant lists), to hand over in one round trip.
const handoffCandidates = 4

// forAcquire returns the acquire script's keys.
func (k keys) forAcquire(token string) []string {
	return append(k.with(token), k.counter, k.seqs, k.alive)
}

// forRelease returns the release script's keys: those of with(token), the
// sequence numbers, the waiters' liveness, and the numbered grant lists of
// the waiters after base (none when base < 0).
func (k keys) forRelease(token string, base int64) []string {
	out := append(k.with(token), k.seqs, k.alive)
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

// acquireOp is acquire without telemetry; t gives the lease's cohort and,
// when not "", its token (a cohort's hand-over that may have happened
// gave it).
func (l *Locker) acquireOp(ctx context.Context, k keys, shared, wait bool, ttl time.Duration, t turn) (*Lease, error) {
	token := t.token
	if ttl < time.Millisecond {
		return nil, fmt.Errorf("lock %s: %w: %s is under a millisecond", k.name, ErrInvalidTTL, ttl)
	}
	if err := ctx.Err(); err != nil {
		return nil, &notAcquiredError{name: k.name, cause: err, before: true}
	}
	if token == "" {
		token = newToken()
	}
	c := t.cohort
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
		// Register as a waiter (or renew the registration) for twice as long
		// as this round blocks: a waiter that stops renewing (it died, gave
		// up, or waits on another server after a failover) leaves the queue
		// within waiterTTL, so no release hands the lock to it.
		waitMS := "0"
		if wait {
			waitMS = strconv.FormatInt(waiterTTL.Milliseconds(), 10)
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
			return l.acquired(ctx, k, token, shared, res[1], res[3], sent, ttl, time.Duration(res[2])*time.Millisecond, start, c)
		}
		if len(res) < 2 || len(res) > 3 || res[0] != 0 || wait != (len(res) == 3) {
			return nil, fmt.Errorf("lock %s: acquire: unexpected reply %v", k.name, res)
		}
		if !wait {
			return nil, errNotAcquiredHere(k)
		}
		if !waited {
			l.event(Event{Kind: EventWaiting, Name: k.name, Shared: shared})
			waited = true
		}
		// Wake when the holder's TTL runs out (a crashed holder), timed by
		// the client (see package wake), or in time to renew the
		// registration.
		holderLeft := time.Duration(res[1]) * time.Millisecond
		seq = strconv.FormatInt(res[2], 10)
		if local == nil {
			local = &localWaiter{grant: make(chan int64, 1)}
			l.waiters.Store(token, local)
		}
		granted, ok, err := l.waitForGrant(ctx, k, token, seq, local, min(holderLeft+2*time.Millisecond, waiterTTL/2))
		switch {
		case ok:
			fence, perr := strconv.ParseInt(granted, 10, 64)
			if perr != nil {
				return nil, fmt.Errorf("lock %s: grant list holds %q", k.name, granted)
			}
			// The lease started when the release granted it, just before
			// now; the server keeps it for its TTL + slack.
			return l.acquired(ctx, k, token, shared, fence, res[2], time.Now(), ttl, ttl, start, c)
		case ctx.Err() != nil:
			return giveUp("waiting", ctx.Err())
		case err != nil && wake.Retryable(ctx, err):
			wake.Pause(ctx, &backoff) // the wait's connection was lost: wait again
		case err != nil:
			return giveUp("waiting", err)
		}
		// The holder's TTL ran out (it crashed?), a grant was missed, or the
		// registration is due for renewal: try again.
	}
}

// errNotAcquiredHere is TryLock's answer when the lock is held.
func errNotAcquiredHere(k keys) error { return fmt.Errorf("lock %s: %w", k.name, ErrNotAcquired) }

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

// maxWait bounds how long a grant list lives.
func (l *Locker) maxWait() time.Duration { return max(l.opts.TTL, time.Second) * 2 }

// waiterTTL is how long a waiter's place in the queue lasts without being
// renewed; a waiter renews it every half (each round of its wait).
const waiterTTL = 2 * time.Second

func (l *Locker) acquired(ctx context.Context, k keys, token string, shared bool, fence, base int64, sent time.Time, ttl, left time.Duration, start time.Time, c *cohort) (*Lease, error) {
	lease := newLease(l, k, token, shared, fence, sent, ttl, left, c)
	lease.base = base
	lease.member = token + "|" + strconv.FormatInt(ttl.Milliseconds(), 10)
	if err := l.replicate(ctx, lease); err != nil {
		return nil, err
	}
	l.event(Event{Kind: EventAcquired, Name: k.name, Shared: shared, Token: fence, Waited: time.Since(start)})
	return lease, nil
}

// driftMargin is Options.DriftMargin for a lease of ttl.
func (l *Locker) driftMargin(ttl time.Duration) time.Duration {
	switch {
	case l.opts.DriftMargin < 0:
		return 0
	case l.opts.DriftMargin > 0:
		return l.opts.DriftMargin
	}
	return ttl/100 + 2*time.Millisecond
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
