package cache

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keyvalue-go/keyvalue/internal/scripts"
	"github.com/valkey-io/valkey-go"
)

// Set stores data under id with tags, replacing any previous entry and its
// tags. lifetime is a duration, DefaultLifetime or Unlimited. It costs one
// round trip, plus one more when the entry had tags it no longer has (see
// the package doc).
func (b *Backend) Set(ctx context.Context, id string, data []byte, tags []string, lifetime time.Duration) (err error) {
	ctx, sp := b.tel.Start(ctx, "set")
	defer func() { sp.End(ctx, err) }()
	return b.setOp(ctx, id, data, tags, lifetime)
}

// setOp is Set without telemetry.
func (b *Backend) setOp(ctx context.Context, id string, data []byte, tags []string, lifetime time.Duration) error {
	return b.setPayload(ctx, id, Raw.ID(), data, tags, lifetime)
}

func (b *Backend) setPayload(ctx context.Context, id string, codecID byte, body []byte, tags []string, lifetime time.Duration) error {
	return b.store(ctx, id, codecID, body, tags, lifetime, guard{})
}

// guard makes a write conditional: a value computed by Typed.GetOrSet is
// refused when a flush of the cache or of one of its tags was stamped
// after its computation began (since, from the lease script), and its
// computing lease (token) is released with the write.
type guard struct {
	since string // server µs when the computation began; "" for a plain Set
	token string // the computing lease's token; "" for none
	fresh *freshness
}

// ErrFlushedWhileComputing is Fill.Store's error when the computed value
// was not stored because the whole cache or one of its tags was flushed
// after its computation began: it may have been computed from data the
// flush was meant to purge. The value may still be served to the
// requests that were waiting for it; the next read computes it again.
var ErrFlushedWhileComputing = errors.New("cache: computed value not stored: the cache or one of its tags was flushed after its computation began")

// store writes an entry, unless the guard refuses it (ErrFlushedWhileComputing) or
// degraded mode drops it (no error).
func (b *Backend) store(ctx context.Context, id string, codecID byte, body []byte, tags []string, lifetime time.Duration, g guard) error {
	if err := b.checkID(id); err != nil {
		return err
	}
	tags, err := b.checkTags(tags)
	if err != nil {
		return err
	}
	ms, err := b.lifetimeMS(lifetime)
	if err != nil {
		return err
	}
	value, err := b.payloads.encode(codecID, tags, g.fresh, body)
	if err != nil {
		return fmt.Errorf("cache %s: set %q: %w", b.name, id, err)
	}
	if len(value) > b.opts.MaxValueBytes {
		return &InputError{Cache: b.name, Kind: ErrTooLarge, Value: id,
			Reason: fmt.Sprintf("the stored value would be %d bytes (from %d bytes of data), over MaxValueBytes %d", len(value), len(body), b.opts.MaxValueBytes)}
	}
	if len(tags) > 0 {
		if err := b.checkPolicy(ctx); err != nil {
			return err
		}
	}
	if b.opts.Sharded {
		if b.recent != nil {
			defer b.recent.wrote(b.valueKey(id), value)
		}
		err := b.setSharded(ctx, id, value, tags, ms)
		if g.token != "" {
			b.releaseLease(ctx, id, g.token)
		}
		if err != nil && b.opts.Degraded && unavailable(err) {
			b.dropped(ctx, "set", id, err)
			return nil
		}
		return err
	}
	keys := make([]string, 4, 4+len(tags))
	keys[0], keys[1], keys[2], keys[3] = b.valueKey(id), b.stampsKey(), b.leaseKey(id), b.wakeKey(id)
	args := make([]string, 6, 6+len(tags))
	args[0], args[1], args[2] = valkey.BinaryString(value), strconv.FormatInt(ms, 10), id
	args[3], args[4], args[5] = g.since, g.token, b.stampKeep()
	for _, t := range tags {
		keys = append(keys, b.indexKey(t))
		args = append(args, t)
	}
	out, err := scripts.CacheSet.Exec(ctx, b.c, keys, args).AsStrSlice()
	if err == nil && (len(out) == 0 || out[0] != "stored" && out[0] != "refused") {
		err = fmt.Errorf("unexpected reply %q", out)
	}
	if err != nil {
		if b.recent != nil {
			b.recent.wrote(b.valueKey(id), value) // it may have been written
		}
		if b.opts.Degraded && unavailable(err) {
			b.dropped(ctx, "set", id, err)
			return nil
		}
		return fmt.Errorf("cache %s: set %q: %w", b.name, id, err)
	}
	if out[0] == "refused" {
		return ErrFlushedWhileComputing
	}
	if b.recent != nil {
		b.recent.wrote(b.valueKey(id), value)
	}
	left := out[1:]
	if err := b.step("set", "written"); err != nil {
		return err
	}
	// The entry left these tags: drop it from their indexes (a failure
	// here only leaves surplus members, which pruning removes later).
	if len(left) > 0 {
		groups := make(map[string][]string, len(left))
		for _, t := range left {
			groups[t] = []string{id}
		}
		if _, err := b.prune(ctx, groups); err != nil {
			return fmt.Errorf("cache %s: set %q: leave old tags: %w", b.name, id, err)
		}
	}
	return nil
}

// prune removes, from each tag's index, the listed ids unless their entry
// is live with that tag (see pruneEach). It returns the number of members
// removed.
func (b *Backend) prune(ctx context.Context, groups map[string][]string) (int, error) {
	removed := 0
	var errs []error
	for tag, r := range b.pruneEach(ctx, groups) {
		removed += r.removed
		if r.err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", b.indexKey(tag), r.err))
		}
	}
	return removed, errors.Join(errs...)
}

// Remove deletes the entry under id; it reports whether an entry existed.
// It costs two round trips: the value goes first, then the entry's
// memberships in its tags' indexes.
func (b *Backend) Remove(ctx context.Context, id string) (ok bool, err error) {
	ctx, sp := b.tel.Start(ctx, "remove")
	defer func() { sp.End(ctx, err) }()
	return b.removeOp(ctx, id)
}

// removeOp is Remove without telemetry.
func (b *Backend) removeOp(ctx context.Context, id string) (bool, error) {
	if err := b.checkID(id); err != nil {
		return false, err
	}
	var n int
	var err error
	if b.opts.Sharded {
		n, err = b.removeSharded(ctx, []string{id}, nil)
	} else {
		n, err = b.removeEntries(ctx, []string{id}, nil, nil, nil)
	}
	if err != nil {
		return n == 1, fmt.Errorf("cache %s: remove %q: %w", b.name, id, err)
	}
	return n == 1, nil
}

// FlushByTag removes every entry tagged tag; see FlushByTags.
func (b *Backend) FlushByTag(ctx context.Context, tag string) (int, error) {
	return b.FlushByTags(ctx, tag)
}

// FlushByTags removes every entry carrying any of tags and returns how
// many it removed. When it returns without error, no entry that had one
// of the tags when it started is live; an entry written while it runs may
// survive it or not (it is newer than the flush), and is found by a later
// flush of its tags either way. With an error, the
// returned count is what was removed so far, and the cache's invariant
// holds all the same (see the package doc): calling it again finishes the
// job.
//
// It costs three round trips whatever the number of tags and entries:
// the tags' indexes, one pipeline of removal scripts in batches of
// Options.BatchSize (values first, then their memberships in the flushed
// tags), and one pipeline cleaning the entries' other tags' indexes.
func (b *Backend) FlushByTags(ctx context.Context, tags ...string) (n int, err error) {
	ctx, sp := b.tel.Start(ctx, "flush_by_tags")
	defer func() { sp.End(ctx, err) }()
	return b.flushByTagsOp(ctx, tags...)
}

// flushByTagsOp is FlushByTags without telemetry.
func (b *Backend) flushByTagsOp(ctx context.Context, tags ...string) (int, error) {
	tags, err := b.checkTags(tags)
	if err != nil || len(tags) == 0 {
		return 0, err
	}
	var n int
	if b.opts.Sharded {
		n, err = b.flushByTagsSharded(ctx, tags)
	} else {
		n, err = b.flushByTags(ctx, tags)
	}
	if err != nil {
		return n, fmt.Errorf("cache %s: flush by tags: %w", b.name, err)
	}
	return n, nil
}

// multiBand is where the scores of members whose entry has more than one
// tag start (the scripts' MULTI): a flush reads the two bands apart.
const multiBand = "2e15"

func (b *Backend) flushByTags(ctx context.Context, tags []string) (int, error) {
	var (
		ids    []string
		tagsOf = map[string][]int{} // id -> indexes into read of the indexes it was read from
		multi  = map[string]bool{}  // ids read from a multi-tag band: their other tags are looked up
		errs   []error
	)
	// The flush is stamped first (so that a computation that began before
	// it cannot store its result after it: see guard), in one pipeline
	// with two plain reads per tag (no scores: formatting them costs more
	// than a second range): the single-tag band, then the multi-tag band.
	stampArgs := append([]string{b.stampKeep()}, tags...)
	var all []valkey.ValkeyResult
	err := retryLostConnection(ctx, func() error {
		all = scripts.CacheFlushStamp.Pipelined(ctx, b.c, []string{b.stampsKey()}, stampArgs, func() valkey.Commands {
			cmds := make(valkey.Commands, 0, 2*len(tags))
			for _, t := range tags {
				key := b.indexKey(t)
				cmds = append(cmds,
					b.c.B().Zrange().Key(key).Min("-inf").Max("("+multiBand).Byscore().Build(),
					b.c.B().Zrange().Key(key).Min(multiBand).Max("+inf").Byscore().Build())
			}
			return cmds
		})
		return all[0].Error()
	})
	if err != nil {
		return 0, fmt.Errorf("stamp the flush: %w", err)
	}
	rs := all[1:]
	read := tags[:0:0]
	for i := 0; i < len(rs); i += 2 {
		single, err := rs[i].AsStrSlice()
		var several []string
		if err == nil {
			several, err = rs[i+1].AsStrSlice()
		}
		if err != nil {
			// A bad index (wrong type) must not stop the other tags' flush.
			b.log.Error("cache: cannot read a tag index; its entries were not flushed", "cache", b.name, "key", b.indexKey(tags[i/2]), "error", err)
			errs = append(errs, fmt.Errorf("read %s: %w", b.indexKey(tags[i/2]), err))
			continue
		}
		read = append(read, tags[i/2])
		for j, id := range slices.Concat(single, several) {
			if _, seen := tagsOf[id]; !seen {
				ids = append(ids, id)
			}
			tagsOf[id] = append(tagsOf[id], len(read)-1)
			if j >= len(single) {
				multi[id] = true
			}
		}
	}
	if err := b.step("flush-by-tags", "read"); err != nil {
		return 0, err
	}
	n, err := b.removeEntries(ctx, ids, read, tagsOf, multi)
	return n, errors.Join(append(errs, err)...)
}

// removeEntries removes entries by id (standalone layout): values first,
// in batches, with their memberships in the flushed tags (tags, and
// tagsOf mapping each id to the indexes into tags it was read from; nil
// for a plain remove), then their other tags' memberships. When flushing,
// only entries in multi are read for other tags. It returns how many
// values were removed.
func (b *Backend) removeEntries(ctx context.Context, ids, tags []string, tagsOf map[string][]int, multi map[string]bool) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	if b.recent != nil {
		defer b.recent.removedIDs(b, ids)
	}
	var execs []valkey.LuaExec
	var batches [][]string
	for batch := range slices.Chunk(ids, b.opts.BatchSize) {
		groups := make([][]string, len(tags))
		for _, id := range batch {
			for _, ti := range tagsOf[id] {
				groups[ti] = append(groups[ti], id)
			}
		}
		e := valkey.LuaExec{Keys: make([]string, 0, len(tags)+len(batch)), Args: make([]string, 0, 1+2*len(tags)+len(batch))}
		e.Args = append(e.Args, strconv.Itoa(len(tags)))
		for _, t := range tags {
			e.Keys = append(e.Keys, b.indexKey(t))
			e.Args = append(e.Args, t)
		}
		for _, g := range groups {
			e.Args = append(e.Args, strconv.Itoa(len(g)))
			e.Args = append(e.Args, g...)
		}
		flags := make([]byte, len(batch))
		for i, id := range batch {
			e.Keys = append(e.Keys, b.valueKey(id))
			flags[i] = '0'
			if multi[id] {
				flags[i] = '1'
			}
		}
		if len(tags) > 0 {
			e.Args = append(e.Args, string(flags))
		}
		execs = append(execs, e)
		batches = append(batches, batch)
	}
	removed := 0
	others := map[string][]string{} // other tag -> ids of removed entries that had it
	var errs []error
	for i, r := range scripts.CacheRemove.ExecMulti(ctx, b.c, execs...) {
		out, err := r.ToArray()
		if err == nil && len(out)%2 != 1 {
			err = fmt.Errorf("unexpected reply of %d elements", len(out))
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		n, _ := out[0].AsInt64()
		removed += int(n)
		for j := 1; j+1 < len(out); j += 2 {
			at, _ := out[j].AsInt64()
			s, _ := out[j+1].ToString()
			if at < 1 || int(at) > len(batches[i]) {
				errs = append(errs, fmt.Errorf("unexpected position %d in the reply", at))
				continue
			}
			id := batches[i][at-1]
			for t := range strings.SplitSeq(s, "\n") {
				others[t] = append(others[t], id)
			}
		}
	}
	if err := b.step("remove", "values-removed"); err != nil {
		return removed, err
	}
	if len(others) > 0 {
		if _, err := b.prune(ctx, others); err != nil {
			errs = append(errs, fmt.Errorf("clean other tags' indexes: %w", err))
		}
	}
	return removed, errors.Join(errs...)
}
