package cache

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/keyvalue-go/keyvalue/internal/scan"
	"github.com/keyvalue-go/keyvalue/internal/scripts"
	"github.com/valkey-io/valkey-go"
)

// The standalone layout (the default) keeps every key of a cache in one
// Cluster slot, under the hash tag {c:NAME} (see "Key layout" in the
// package doc), so one script writes an entry and its memberships, and
// one script removes a batch of entries with theirs.
type standalone struct {
	b      *Backend
	p      string // kv:{c:NAME}:
	values string // kv:{c:NAME}:v:
	stamps string // kv:{c:NAME}:f: tag -> when it was last flushed
}

func (l *standalone) prefix() string             { return l.p }
func (l *standalone) valueKey(id string) string  { return l.values + id }
func (l *standalone) leaseKey(id string) string  { return l.p + "l:" + id }
func (l *standalone) wakeKey(id string) string   { return l.p + "n:" + id }
func (l *standalone) indexKey(tag string) string { return l.p + "i:" + tag }
func (l *standalone) indexPattern() string       { return scan.Escape(l.p+"i:") + "*" }
func (l *standalone) oneSlot() bool              { return true }

func (l *standalone) kindOf(key string) keyKind {
	switch rest := key[len(l.p):]; {
	case len(rest) > 2 && rest[:2] == "v:":
		return valueKey
	case len(rest) > 2 && rest[:2] == "i:":
		return indexKey
	case rest == "f":
		return stampsKey
	}
	return otherKey
}

func (l *standalone) tagOf(key string) string { return key[len(l.p)+2:] }

// set runs the Set script for each entry (one pipeline): memberships,
// then the value, checked against the flush stamps when the guard says
// so; then, in a second round trip, the entries leave the indexes of tags
// they no longer have.
func (l *standalone) set(ctx context.Context, ws []write) []error {
	b := l.b
	execs := make([]valkey.LuaExec, len(ws))
	for i, w := range ws {
		keys := make([]string, 4, 4+len(w.tags))
		keys[0], keys[1], keys[2], keys[3] = l.valueKey(w.id), l.stamps, l.leaseKey(w.id), l.wakeKey(w.id)
		args := make([]string, 6, 6+len(w.tags))
		args[0], args[1], args[2] = valkey.BinaryString(w.value), strconv.FormatInt(w.ms, 10), w.id
		args[3], args[4], args[5] = w.g.since, w.g.token, b.keep
		for _, t := range w.tags {
			keys = append(keys, l.indexKey(t))
			args = append(args, t)
		}
		execs[i] = valkey.LuaExec{Keys: keys, Args: args}
	}
	errs := make([]error, len(ws))
	left := map[string][]string{} // tag -> ids that left it
	var leaving []int
	written := 0
	for i, r := range scripts.CacheSet.ExecMulti(ctx, b.c, execs...) {
		out, err := r.AsStrSlice()
		switch {
		case err != nil:
			errs[i] = err
		case len(out) == 0 || out[0] != "stored" && out[0] != "refused":
			errs[i] = fmt.Errorf("unexpected reply %q", out)
		case out[0] == "refused":
			errs[i] = ErrFlushedWhileComputing
		default:
			written++
			for _, t := range out[1:] {
				left[t] = append(left[t], ws[i].id)
			}
			if len(out) > 1 {
				leaving = append(leaving, i)
			}
		}
	}
	if written == 0 {
		return errs
	}
	if err := b.step("set", "written"); err != nil {
		return failRest(errs, err)
	}
	// The entries left these tags: drop them from their indexes (a
	// failure here only leaves surplus members, which pruning removes
	// later).
	if len(left) > 0 {
		if _, err := l.prune(ctx, left); err != nil {
			for _, i := range leaving {
				errs[i] = fmt.Errorf("leave old tags: %w", err)
			}
		}
	}
	return errs
}

// failRest sets err as the error of every write that has none yet (an
// operation stopped there) and returns errs.
func failRest(errs []error, err error) []error {
	for i := range errs {
		if errs[i] == nil {
			errs[i] = err
		}
	}
	return errs
}

func (l *standalone) remove(ctx context.Context, ids []string) (int, error) {
	return l.removeEntries(ctx, ids, nil, nil, nil)
}

// stampFlush stamps the whole cache as flushed now, before anything is
// removed: a computation that began earlier must not store its result
// after the flush (see guard). The stamp is also the flush's write mark,
// which every Set removes (see dropIndexes).
func (l *standalone) stampFlush(ctx context.Context) (string, error) {
	var stamp int64
	err := retryLostConnection(ctx, func() (err error) {
		stamp, err = scripts.CacheFlushStamp.Exec(ctx, l.b.c, []string{l.stamps}, []string{l.b.keep, ""}).AsInt64()
		return err
	})
	if err != nil {
		return "", err
	}
	return strconv.FormatInt(stamp, 10), nil
}

// dropIndexes unlinks the indexes of tags with one script per BatchSize
// indexes, pipelined, each checking first that the flush's write mark is
// still there: no Set ran since the flush stamped, so every value that
// existed then is gone (the walk unlinked it) and none was written since,
// and no index lists a live entry. The last call removes the mark. A call
// that finds the mark gone leaves its indexes to the caller, whose
// garbage collection checks each member (cache_prune.lua). Keys of another
// type at index names go too; their names are returned.
func (l *standalone) dropIndexes(ctx context.Context, mark string, tags []string) (int, []string, []string, error) {
	if len(tags) == 0 {
		return 0, nil, nil, nil
	}
	batches := slices.Collect(slices.Chunk(tags, l.b.opts.BatchSize))
	execs := make([]valkey.LuaExec, len(batches))
	for i, batch := range batches {
		keys := make([]string, 1, 1+len(batch))
		keys[0] = l.stamps
		for _, t := range batch {
			keys = append(keys, l.indexKey(t))
		}
		execs[i] = valkey.LuaExec{Keys: keys, Args: []string{mark, "0"}}
	}
	execs[len(execs)-1].Args[1] = "1"
	dropped := 0
	var rest, foreign []string
	for i, r := range scripts.CacheFlushIndexes.ExecMulti(ctx, l.b.c, execs...) {
		out, err := r.ToArray()
		if err == nil && len(out) == 0 {
			err = fmt.Errorf("unexpected empty reply")
		}
		var n int64
		if err == nil {
			n, err = out[0].AsInt64()
		}
		if err != nil {
			return dropped, nil, nil, err
		}
		if n < 0 {
			rest = append(rest, batches[i]...)
			continue
		}
		dropped += int(n)
		for _, k := range out[1:] {
			if name, err := k.ToString(); err == nil {
				foreign = append(foreign, name)
			}
		}
	}
	return dropped, foreign, rest, nil
}

// unlink removes keys with one UNLINK per BatchSize keys, pipelined (they
// share the cache's slot).
func (l *standalone) unlink(ctx context.Context, keys []string) (int, error) {
	size := l.b.opts.BatchSize // one UNLINK per batch, pipelined
	rs := scripts.DoMulti(ctx, l.b.c, (len(keys)+size-1)/size, func(i int) valkey.Completed {
		return l.b.c.B().Unlink().Key(keys[i*size : min((i+1)*size, len(keys))]...).Build()
	})
	total := 0
	for _, r := range rs {
		n, err := r.AsInt64()
		if err != nil {
			return total, err
		}
		total += int(n)
	}
	return total, nil
}

// multiBand is where the scores of members whose entry has more than one
// tag start (the scripts' MULTI): a flush reads the two bands apart.
const multiBand = "2e15"

// flushByTags stamps the flush and reads the tags' indexes in one round
// trip, then removes the entries read (removeEntries).
func (l *standalone) flushByTags(ctx context.Context, tags []string) (int, []string, error) {
	b := l.b
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
	stampArgs := append([]string{b.keep}, tags...)
	var all []valkey.ValkeyResult
	err := retryLostConnection(ctx, func() error {
		all = scripts.CacheFlushStamp.Pipelined(ctx, b.c, []string{l.stamps}, stampArgs, func() valkey.Commands {
			cmds := make(valkey.Commands, 0, 2*len(tags))
			for _, t := range tags {
				key := l.indexKey(t)
				cmds = append(cmds,
					b.c.B().Zrange().Key(key).Min("-inf").Max("("+multiBand).Byscore().Build(),
					b.c.B().Zrange().Key(key).Min(multiBand).Max("+inf").Byscore().Build())
			}
			return cmds
		})
		return all[0].Error()
	})
	if err != nil {
		return 0, nil, fmt.Errorf("stamp the flush: %w", err)
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
			b.log.Error("cache: cannot read a tag index; its entries were not flushed", "cache", b.name, "key", l.indexKey(tags[i/2]), "error", err)
			errs = append(errs, fmt.Errorf("read %s: %w", l.indexKey(tags[i/2]), err))
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
		return 0, nil, err
	}
	n, err := l.removeEntries(ctx, ids, read, tagsOf, multi)
	return n, ids, joinErrors(append(errs, err)...)
}

// removeEntries removes entries by id: values first,
// in batches, with their memberships in the flushed tags (tags, and
// tagsOf mapping each id to the indexes into tags it was read from; nil
// for a plain remove), then their other tags' memberships. When flushing,
// only entries in multi are read for other tags. It returns how many
// values were removed.
func (l *standalone) removeEntries(ctx context.Context, ids, tags []string, tagsOf map[string][]int, multi map[string]bool) (int, error) {
	b := l.b
	if len(ids) == 0 {
		return 0, nil
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
			e.Keys = append(e.Keys, l.indexKey(t))
			e.Args = append(e.Args, t)
		}
		for _, g := range groups {
			e.Args = append(e.Args, strconv.Itoa(len(g)))
			e.Args = append(e.Args, g...)
		}
		flags := make([]byte, len(batch))
		for i, id := range batch {
			e.Keys = append(e.Keys, l.valueKey(id))
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
		if _, err := l.prune(ctx, others); err != nil {
			errs = append(errs, fmt.Errorf("clean other tags' indexes: %w", err))
		}
	}
	return removed, joinErrors(errs...)
}

// prune removes, from each tag's index, the listed ids unless their entry
// is live with that tag (see pruneEach). It returns the number of members
// removed.
func (l *standalone) prune(ctx context.Context, groups map[string][]string) (int, error) {
	removed := 0
	var errs []error
	for tag, r := range l.pruneEach(ctx, groups) {
		removed += r.removed
		if r.err != nil {
			errs = append(errs, &keyError{l.indexKey(tag), r.err})
		}
	}
	return removed, joinErrors(errs...)
}

// gcGroup is how many indexes gcIndexes works on at once: enough to
// pipeline, few enough that the server answers other clients in between
// (a pipeline of a hundred prune scripts of a thousand keys each held
// another client's PING for 70ms).
const gcGroup = 8

// gcIndexes checks the members of several indexes (standalone layout), a
// few at a time, page by page, with two pipelined round trips per page:
// the pages, then one prune script per page.
//
// A group holds gcGroup indexes at first; after each group, as many as
// hold about gcGroup full pages given the members its indexes had (up to
// maxGCGroup): small indexes are collected many per round trip, and a
// pipeline never carries more work than gcGroup full pages.
func (l *standalone) collect(ctx context.Context, tags []string, run *gcRun) {
	size := gcGroup
	for len(tags) > 0 && ctx.Err() == nil {
		group := tags[:min(size, len(tags))]
		tags = tags[len(group):]
		members := l.gcIndexGroup(ctx, group, run)
		perIndex := max(members/len(group), 1)
		size = min(max(gcGroup*l.b.opts.BatchSize/perIndex, gcGroup), maxGCGroup)
	}
}

// maxGCGroup bounds the indexes garbage collection reads in one pipeline.
const maxGCGroup = 256

// gcIndexGroup collects a group of indexes and returns how many members
// their first pages held.
func (l *standalone) gcIndexGroup(ctx context.Context, tags []string, run *gcRun) int {
	b := l.b
	type state struct {
		tag     string
		offset  int // rank of the next page: members before it were kept
		page    int // members read in the last page
		removed int
		gone    bool
		err     error
	}
	all := make([]*state, len(tags))
	for i, t := range tags {
		all[i] = &state{tag: t}
	}
	// Pages by rank, without scores (formatting scores costs the server more
	// than the ranges): removed members free their ranks, so the next page
	// starts after the ones kept. A member others remove meanwhile may shift
	// one past a page; the next run finds it.
	open := all
	firstPages := -1
	for len(open) > 0 && ctx.Err() == nil {
		rs := scripts.DoMulti(ctx, b.c, len(open), func(i int) valkey.Completed {
			return b.c.B().Zrange().Key(l.indexKey(open[i].tag)).Min(strconv.Itoa(open[i].offset)).Max(strconv.Itoa(open[i].offset + b.opts.BatchSize - 1)).Build()
		})
		groups := map[string][]string{}
		var next []*state
		for i, r := range rs {
			s := open[i]
			ids, err := r.AsStrSlice()
			if err != nil {
				s.err = err
				continue
			}
			s.page = len(ids)
			if len(ids) > 0 {
				groups[s.tag] = ids
			}
			if len(ids) == b.opts.BatchSize {
				next = append(next, s)
			}
		}
		if firstPages < 0 {
			firstPages = 0
			for _, s := range open {
				firstPages += s.page
			}
		}
		res := l.pruneEach(ctx, groups)
		for _, s := range open {
			if r, ok := res[s.tag]; ok {
				s.removed += r.removed
				s.offset += s.page - r.removed
				s.gone = s.gone || r.gone
				if r.err != nil && s.err == nil {
					s.err = r.err
				}
			}
		}
		open = next
	}
	for _, s := range all {
		run.add(b, s.tag, s.removed, s.gone, s.err)
	}
	return max(firstPages, 0)
}

type pruneResult struct {
	removed int
	gone    bool
	err     error
}

// pruneEach removes, from each tag's index, the listed ids unless their
// entry is live with that tag: one script per tag and batch of
// Options.BatchSize, pipelined. It returns a result per tag.
func (l *standalone) pruneEach(ctx context.Context, groups map[string][]string) map[string]pruneResult {
	b := l.b
	// Small groups share a script call (up to BatchSize ids per call); a
	// large one is split into calls of BatchSize ids.
	var execs []valkey.LuaExec
	var tagsOf [][]string // the tags of each call, in order
	var cur []string      // the tags of the call being built
	var curIDs [][]string
	flush := func() {
		if len(cur) == 0 {
			return
		}
		e := valkey.LuaExec{Args: []string{strconv.Itoa(len(cur))}}
		for _, t := range cur {
			e.Keys = append(e.Keys, l.indexKey(t))
			e.Args = append(e.Args, t)
		}
		for _, ids := range curIDs {
			e.Args = append(e.Args, strconv.Itoa(len(ids)))
		}
		for _, ids := range curIDs {
			for _, id := range ids {
				e.Keys = append(e.Keys, l.valueKey(id))
				e.Args = append(e.Args, id)
			}
		}
		execs = append(execs, e)
		tagsOf = append(tagsOf, cur)
		cur, curIDs = nil, nil
	}
	size := 0
	for _, tag := range slices.Sorted(maps.Keys(groups)) {
		for batch := range slices.Chunk(groups[tag], b.opts.BatchSize) {
			if size+len(batch) > b.opts.BatchSize {
				flush()
				size = 0
			}
			cur = append(cur, tag)
			curIDs = append(curIDs, batch)
			size += len(batch)
		}
	}
	flush()
	out := make(map[string]pruneResult, len(groups))
	for i, r := range scripts.CachePrune.ExecMulti(ctx, b.c, execs...) {
		n, err := r.AsIntSlice()
		if err == nil && len(n) != 2*len(tagsOf[i]) {
			err = fmt.Errorf("unexpected reply %v", n)
		}
		for j, tag := range tagsOf[i] {
			res := out[tag]
			if err != nil {
				res.err = cmp.Or(res.err, err)
			} else {
				res.removed += int(n[2*j])
				res.gone = n[2*j+1] == 1 // the last batch's answer is the index's state
			}
			out[tag] = res
		}
	}
	return out
}
