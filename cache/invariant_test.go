package cache_test

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/keyvalue-go/keyvalue/cache"
	"github.com/valkey-io/valkey-go"
)

// This file is an independent reader of a cache's keyspace: it knows the
// documented key layout and value format (cache/doc.go), not the package's
// code, and checks the cache's promise: every live value is a member of
// the index of each of its tags.

// parseTags reads the tags from a stored value's header.
func parseTags(raw []byte) ([]string, error) {
	if len(raw) == 0 {
		return nil, fmt.Errorf("empty value")
	}
	if raw[0]&0x80 == 0 {
		return nil, nil
	}
	if len(raw) < 5 {
		return nil, fmt.Errorf("header says tags follow, value is %d bytes", len(raw))
	}
	n := int(binary.BigEndian.Uint32(raw[1:5]))
	if 5+n > len(raw) {
		return nil, fmt.Errorf("tags claim %d bytes, value is %d", n, len(raw))
	}
	if n == 0 {
		return nil, nil
	}
	return strings.Split(string(raw[5:5+n]), "\n"), nil
}

// layout names a cache's keys as the package doc documents them.
type layout struct {
	prefix  string
	sharded bool
}

func standaloneLayout(name string) layout { return layout{prefix: "kv:{c:" + name + "}:"} }
func shardedLayout(name string) layout    { return layout{prefix: "kv:c:" + name + ":", sharded: true} }

// id returns the entry id of a value key, or false for other keys.
func (l layout) id(key string) (string, bool) {
	rest, ok := strings.CutPrefix(key, l.prefix)
	if !ok {
		return "", false
	}
	if l.sharded {
		if strings.HasPrefix(rest, "{") && strings.HasSuffix(rest, "}:v") {
			return rest[1 : len(rest)-3], true
		}
		return "", false
	}
	return strings.CutPrefix(rest, "v:")
}

func (l layout) index(tag string) string {
	if l.sharded {
		return l.prefix + "i:{" + tag + "}"
	}
	return l.prefix + "i:" + tag
}

// violations lists every live value of the cache missing from the index
// of one of its tags. The check reads each value and then its
// memberships; callers run it while nothing writes to the cache.
func violations(t *testing.T, c valkey.Client, l layout) []string {
	t.Helper()
	var out []string
	for _, key := range allKeys(t, c) {
		id, ok := l.id(key)
		if !ok {
			continue
		}
		raw, err := c.Do(ctx(t), c.B().Get().Key(key).Build()).AsBytes()
		if valkey.IsValkeyNil(err) {
			continue // expired meanwhile
		}
		if err != nil {
			out = append(out, fmt.Sprintf("%s: %v", key, err))
			continue
		}
		tags, err := parseTags(raw)
		if err != nil {
			out = append(out, fmt.Sprintf("%s: %v", key, err))
			continue
		}
		for _, tag := range tags {
			_, err := c.Do(ctx(t), c.B().Zscore().Key(l.index(tag)).Member(id).Build()).AsFloat64()
			if valkey.IsValkeyNil(err) {
				out = append(out, fmt.Sprintf("live entry %q is not in the index of its tag %q", id, tag))
			} else if err != nil {
				out = append(out, fmt.Sprintf("index %s: %v", l.index(tag), err))
			}
		}
	}
	return out
}

// checkInvariant fails the test if any live value is missing from one of
// its tags' indexes.
func checkInvariant(t *testing.T, c valkey.Client, l layout, when string) {
	t.Helper()
	if v := violations(t, c, l); len(v) > 0 {
		t.Errorf("%s: the cache's invariant is broken (%d violations), e.g. %s", when, len(v), strings.Join(v[:min(len(v), 5)], "; "))
	}
}

// valueTags returns the tags stored in a value, nil if it does not exist.
func valueTags(t *testing.T, c valkey.Client, key string) []string {
	t.Helper()
	raw, err := c.Do(ctx(t), c.B().Get().Key(key).Build()).AsBytes()
	if valkey.IsValkeyNil(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	tags, err := parseTags(raw)
	if err != nil {
		t.Fatal(err)
	}
	return tags
}

// TestCheckerFindsViolations shows that the checker can fail: it reports a
// live entry whose membership was removed behind the cache's back, in both
// layouts.
func TestCheckerFindsViolations(t *testing.T) {
	t.Parallel()
	for _, tp := range topologies(t) {
		name := "checked-" + tp.name
		b := newBackend(t, tp.c, name, cache.Options{Sharded: tp.sharded})
		mustSet(t, b, "e", "a", "b")
		if v := violations(t, tp.c, tp.layout(name)); len(v) != 0 {
			t.Fatalf("%s: violations in a healthy cache: %v", tp.name, v)
		}
		if err := tp.c.Do(ctx(t), tp.c.B().Zrem().Key(tp.layout(name).index("b")).Member("e").Build()).Error(); err != nil {
			t.Fatal(err)
		}
		v := violations(t, tp.c, tp.layout(name))
		if len(v) != 1 || !strings.Contains(v[0], `live entry "e" is not in the index of its tag "b"`) {
			t.Errorf("%s: checker reported %v, want the missing membership", tp.name, v)
		}
	}
}
