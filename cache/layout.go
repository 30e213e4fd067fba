package cache

import (
	"context"
	"fmt"
	"strings"

	"github.com/keyvalue-go/keyvalue/internal/scripts"
	"github.com/valkey-io/valkey-go"
)

// A layout is where a cache's keys live and the protocols that keep the
// cache's promise there. New picks one, once: standalone (standalone.go,
// every key of the cache in one slot, so one script writes an entry and
// its memberships) or sharded (sharded.go, values by id and indexes by
// tag, written in steps across slots). The Backend validates and encodes;
// its layout writes, removes, flushes and collects.
type layout interface {
	// prefix starts every key of the cache.
	prefix() string
	// valueKey names an entry's value, leaseKey its computing lease,
	// wakeKey the lease's wake-up list (all in the value's slot).
	valueKey(id string) string
	leaseKey(id string) string
	wakeKey(id string) string
	// indexKey names a tag's index.
	indexKey(tag string) string
	// kindOf classifies a key of the cache's namespace; tagOf returns the
	// tag of an index (or pending) key.
	kindOf(key string) keyKind
	tagOf(key string) string
	// indexPattern matches (SCAN MATCH) the keys garbage collection visits.
	indexPattern() string
	// oneSlot reports whether every value key shares one Cluster slot
	// (one MGET reads any of them).
	oneSlot() bool

	// set writes entries with their memberships, together (one pipeline
	// per step), each unless its guard refuses it
	// (ErrFlushedWhileComputing, nothing written), and ends the guards'
	// leases. It returns each write's error, in order.
	set(ctx context.Context, ws []write) []error
	// remove deletes entries by id, values before memberships, and returns
	// how many values it deleted.
	remove(ctx context.Context, ids []string) (int, error)
	// flushByTags removes every entry carrying any of tags, and returns
	// how many values it deleted and the ids it deleted values of (or
	// tried to).
	flushByTags(ctx context.Context, tags []string) (n int, ids []string, err error)
	// stampFlush stamps a Flush before anything is removed, where the
	// layout keeps flush stamps, and returns the flush's write mark ("" if
	// the layout keeps none): see dropIndexes.
	stampFlush(ctx context.Context) (mark string, err error)
	// dropIndexes unlinks the indexes of tags, found by a Flush's walk
	// after it removed the values, if nothing was written since the flush
	// set mark; it returns how many keys it unlinked, those among them
	// that held another type (not written by the cache), and the tags
	// whose indexes it left for garbage collection (all of them when
	// something was written, or the layout keeps no mark).
	dropIndexes(ctx context.Context, mark string, tags []string) (dropped int, foreign, rest []string, err error)
	// unlink deletes keys found by Flush's walk.
	unlink(ctx context.Context, keys []string) (int, error)
	// collect garbage-collects the indexes of tags and counts into run.
	collect(ctx context.Context, tags []string, run *gcRun)
}

// write is an entry for a layout to write: its encoded value, its tags,
// its lifetime in milliseconds (0: none) and its guard.
type write struct {
	id    string
	value []byte
	tags  []string
	ms    int64
	g     guard
}

// keyKind tells what a key of this cache is.
type keyKind int

const (
	otherKey   keyKind = iota // not of the current layout (an earlier version's key)
	valueKey                  // an entry's value
	indexKey                  // a tag's index
	pendingKey                // a tag's pending marks (sharded)
	stampsKey                 // the flush stamps (kept by Flush, expire on their own)
)

// newLayout returns the layout of the cache called name.
func newLayout(b *Backend, name string, sharded bool) layout {
	if sharded {
		return &shardedLayout{b: b, p: "kv:c:" + name + ":"}
	}
	p := "kv:{c:" + name + "}:"
	return &standalone{b: b, p: p, values: p + "v:", stamps: p + "f"}
}

// readTags reads the tags of the entries ids in one pipelined round trip
// (each entry's value holds its tags); entries that do not exist are
// absent from the result. Both layouts use it.
func (b *Backend) readTags(ctx context.Context, ids []string) (map[string][]string, error) {
	out := make(map[string][]string, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	execs := make([]valkey.LuaExec, len(ids))
	for i, id := range ids {
		execs[i] = valkey.LuaExec{Keys: []string{b.layout.valueKey(id)}}
	}
	for i, r := range scripts.CacheTags.ExecMulti(ctx, b.c, execs...) {
		tags, err := r.AsStrSlice()
		if valkey.IsValkeyNil(err) {
			continue // no value
		}
		if err != nil {
			return nil, err
		}
		out[ids[i]] = tags
	}
	return out, nil
}

// hasPrefixes reports whether s is longer than prefix+suffix and starts
// and ends with them.
func hasPrefixes(s, prefix, suffix string) bool {
	return len(s) > len(prefix)+len(suffix) && strings.HasPrefix(s, prefix) && strings.HasSuffix(s, suffix)
}

// keyError is err about one key (an index a batch could not clean, say).
type keyError struct {
	key string
	err error
}

func (e *keyError) Error() string { return e.key + ": " + e.err.Error() }
func (e *keyError) Unwrap() error { return e.err }

// joinErrors joins the errors of a multi-step or batched operation, each
// distinct message once: a reply every batch got (TRYAGAIN after a slot
// migration outlasted the retries, say) reads once with how often it
// occurred, and errors about keys (*keyError) with the same cause read
// once with the keys they concern (the first three, and how many more),
// not thirty times. errors.Is and errors.As see every distinct error; nil
// errors are skipped, and nil is returned when none is left.
func joinErrors(errs ...error) error {
	var groups []*errorGroup
	byMsg := map[string]*errorGroup{}
	for _, err := range errs {
		if err == nil {
			continue
		}
		cause, key := err, ""
		if ke, ok := err.(*keyError); ok {
			cause, key = ke.err, ke.key
		}
		msg := cause.Error()
		g := byMsg[msg]
		if g == nil {
			g = &errorGroup{err: cause}
			byMsg[msg] = g
			groups = append(groups, g)
		}
		g.n++
		if key != "" {
			g.keys = append(g.keys, key)
		}
	}
	if len(groups) == 0 {
		return nil
	}
	return joinedErrors(groups)
}

// errorGroup is one distinct error, how often it occurred and the keys it
// concerned.
type errorGroup struct {
	err  error
	n    int
	keys []string
}

type joinedErrors []*errorGroup

func (j joinedErrors) Error() string {
	var b strings.Builder
	for i, g := range j {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(g.err.Error())
		switch {
		case len(g.keys) > 0:
			shown := g.keys[:min(3, len(g.keys))]
			fmt.Fprintf(&b, " (on %s", strings.Join(shown, ", "))
			if more := len(g.keys) - len(shown); more > 0 {
				fmt.Fprintf(&b, " and %d more", more)
			}
			b.WriteString(")")
		case g.n > 1:
			fmt.Fprintf(&b, " (%d times)", g.n)
		}
	}
	return b.String()
}

func (j joinedErrors) Unwrap() []error {
	out := make([]error, len(j))
	for i, g := range j {
		out[i] = g.err
	}
	return out
}
