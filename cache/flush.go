package cache

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"time"

	"github.com/keyvalue-go/keyvalue/internal/scan"
	"github.com/keyvalue-go/keyvalue/internal/wake"
	"github.com/valkey-io/valkey-go"
)

// Progress reports a long operation's advance: keys or tag indexes handled so far.
type Progress func(done int)

// scanKeys yields pages of this cache's keys matching pattern on every
// primary, with SCAN (never KEYS).
func (b *Backend) scanKeys(ctx context.Context, pattern string) iter.Seq2[[]string, error] {
	return scan.Keys(ctx, b.c, pattern, b.opts.BatchSize)
}

// scanAll yields pages of every key of the cache (Flush, Stats): SCAN's
// COUNT grows while the pages come back nearly empty (the cache is a small
// part of a large database), so the walk costs about one round trip per
// BatchSize keys of the cache, not of the database (scan.KeysSparse).
func (b *Backend) scanAll(ctx context.Context) iter.Seq2[[]string, error] {
	return scan.KeysSparse(ctx, b.c, scan.Escape(b.layout.prefix())+"*", b.opts.BatchSize)
}

// maxFlushPasses bounds how often Flush walks a Cluster whose slots keep
// moving.
const maxFlushPasses = 10

// ErrSlotsMoving is returned (wrapped) by Flush when a Cluster's slots kept
// moving during every pass: keys may have moved behind the scan. Run the
// flush again once the resharding is done.
var ErrSlotsMoving = errors.New("cluster slots kept moving during the flush")

// Flush removes every key of this cache, and nothing else, with SCAN and
// UNLINK in batches of Options.BatchSize on every primary, so the server
// keeps serving other clients between batches and frees memory in the
// background. It returns the number of keys removed.
//
// Values go first (every key but the tag indexes: a flush stopped half-way
// leaves indexes that still list every remaining value), then the indexes
// the walk found: unlinked unread when no Set ran since the flush began
// (the usual case: one round trip, whatever their size), else
// garbage-collected, which removes them (an entry written during the
// flush keeps its memberships). On a Cluster the walk is repeated until
// one pass ran while no slot moved, so keys migrated behind the scan are
// not missed. Keys of an earlier layout of the cache are removed too.
// progress, if not nil, is called after each batch.
func (b *Backend) Flush(ctx context.Context, progress Progress) (n int, err error) {
	ctx, sp := b.tel.Start(ctx, "flush")
	defer func() { sp.End(ctx, err) }()
	return b.flushOp(ctx, progress)
}

// flushOp is Flush without telemetry.
func (b *Backend) flushOp(ctx context.Context, progress Progress) (int, error) {
	start := time.Now()
	removed := 0
	b.modes.flushed()
	defer b.modes.flushed()
	report := func(n int) {
		removed += n
		if progress != nil {
			progress(removed)
		}
	}
	mark, err := b.layout.stampFlush(ctx)
	if err != nil {
		return 0, fmt.Errorf("cache %s: flush: stamp: %w", b.name, err)
	}
	// The walk sees every index that existed when it began (SCAN returns
	// every key present for its whole run): their tags are collected
	// below without a second walk. An index made during the flush lists
	// entries written during it, which are live.
	indexed := map[string]bool{}
	var tags []string
	for pass := 1; ; pass++ {
		before, err := b.topology(ctx)
		if err != nil {
			return removed, fmt.Errorf("cache %s: flush: %w", b.name, err)
		}
		if err := b.unlinkAll(ctx, func(k string) bool {
			kind := b.layout.kindOf(k)
			if kind == indexKey || kind == pendingKey {
				if t := b.layout.tagOf(k); !indexed[t] {
					indexed[t] = true
					tags = append(tags, t)
				}
			}
			return kind != indexKey && kind != pendingKey && kind != stampsKey
		}, report); err != nil {
			return removed, fmt.Errorf("cache %s: flush: %w", b.name, err)
		}
		after, err := b.topology(ctx)
		if err != nil {
			return removed, fmt.Errorf("cache %s: flush: %w", b.name, err)
		}
		if before == after && !strings.Contains(after, "->") && !strings.Contains(after, "-<") {
			break // no slot moved or was moving during the pass
		}
		if pass == maxFlushPasses {
			return removed, fmt.Errorf("cache %s: flush: %w (%d passes)", b.name, ErrSlotsMoving, pass)
		}
		b.log.Info("cache flush: slots moved during the pass; walking the cluster again", "cache", b.name, "pass", pass)
	}
	if err := b.step("flush", "values-removed"); err != nil {
		return removed, err
	}
	// Nothing written since the stamp: the indexes go as they are.
	// Otherwise, or for those the layout cannot drop, each member is
	// checked (an entry written during the flush keeps its memberships).
	dropped, foreign, tags, err := b.layout.dropIndexes(ctx, mark, tags)
	if dropped > 0 {
		report(dropped)
	}
	if err != nil {
		return removed, fmt.Errorf("cache %s: flush: indexes: %w", b.name, err)
	}
	b.foreignRemoved(foreign)
	if err := b.step("flush", "indexes-dropped"); err != nil {
		return removed, err
	}
	st, foreign, err := b.collectTags(ctx, tags)
	removed += st.IndexesRemoved
	if err != nil {
		return removed, fmt.Errorf("cache %s: flush: indexes: %w", b.name, err)
	}
	if len(foreign) > 0 {
		// Keys of another type at index names were not written by the
		// cache and would make every Set with their tag fail: they go
		// with the rest of the namespace.
		n, err := b.layout.unlink(ctx, foreign)
		removed += n
		if err != nil {
			return removed, fmt.Errorf("cache %s: flush: keys of another type at index names: %w", b.name, err)
		}
		b.foreignRemoved(foreign)
	}
	if progress != nil {
		progress(removed)
	}
	b.log.Info("cache flushed", "cache", b.name, "keys", removed, "took", time.Since(start))
	return removed, nil
}

// foreignRemoved reports the keys of another type a flush removed at
// index names: the cache did not write them.
func (b *Backend) foreignRemoved(keys []string) {
	if len(keys) > 0 {
		b.log.Warn("cache flush: removed keys of another type found at index names", "cache", b.name, "keys", keys)
	}
}

// unlinkAll walks the cache's keys once and unlinks those doom selects.
// Each UNLINK runs while the next SCAN page is fetched, so a pass costs
// about one round trip per page.
func (b *Backend) unlinkAll(ctx context.Context, doom func(key string) bool, report func(int)) error {
	var pending chan unlinkResult
	wait := func() error {
		if pending == nil {
			return nil
		}
		r := <-pending
		pending = nil
		if r.err == nil {
			report(r.n)
		}
		return r.err
	}
	for page, err := range b.scanAll(ctx) {
		if err == nil {
			err = wait()
		}
		if err != nil {
			_ = wait()
			return err
		}
		keys := slices.DeleteFunc(page, func(k string) bool { return !doom(k) })
		if err := b.step("flush", "page"); err != nil {
			_ = wait()
			return err
		}
		if len(keys) == 0 {
			continue
		}
		pending = make(chan unlinkResult, 1)
		go func(keys []string, out chan<- unlinkResult) {
			n, err := b.layout.unlink(ctx, keys)
			out <- unlinkResult{n, err}
		}(keys, pending)
	}
	return wait()
}

type unlinkResult struct {
	n   int
	err error
}

// topology describes which primary serves which slots and which slots are
// migrating ("->") or importing ("-<"), from CLUSTER NODES on every
// primary; "" when the client is not a Cluster client.
func (b *Backend) topology(ctx context.Context) (string, error) {
	if b.c.Mode() != valkey.ClientModeCluster {
		return "", nil
	}
	nodes, err := scan.Primaries(ctx, b.c)
	if err != nil {
		return "", err
	}
	var views []string
	for _, n := range nodes {
		s, err := n.Do(ctx, n.B().ClusterNodes().Build()).ToString()
		if err != nil {
			return "", fmt.Errorf("CLUSTER NODES: %w", err)
		}
		var lines []string
		for line := range strings.SplitSeq(s, "\n") {
			f := strings.Fields(line)
			if len(f) < 8 {
				continue
			}
			// id, master/replica flag, and the slots (fields 8 on): drop
			// the timings and link state, which change all the time.
			flags := strings.ReplaceAll(f[2], "myself,", "")
			lines = append(lines, f[0]+" "+flags+" "+strings.Join(f[8:], " "))
		}
		slices.Sort(lines)
		views = append(views, strings.Join(lines, "\n"))
	}
	slices.Sort(views)
	return strings.Join(views, "\n--\n"), nil
}

// retryLostConnection runs an idempotent call (a flush's stamp and reads)
// up to three times while it fails on a lost connection: the first
// command after a connection was cut fails without telling whether it
// ran, and running it again is harmless.
func retryLostConnection(ctx context.Context, call func() error) error {
	var backoff time.Duration
	var err error
	for range 3 {
		if err = call(); err == nil || !wake.Retryable(ctx, err) {
			return err
		}
		wake.Pause(ctx, &backoff)
	}
	return err
}
