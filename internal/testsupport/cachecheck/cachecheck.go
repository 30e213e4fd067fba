// Package cachecheck is an independent reader of a cache's keyspace: it
// knows the documented key layout and value format (cache/doc.go), not
// the cache package's code, and checks the cache's promise: every live
// value is a member of the index of each of its tags. The cache's own
// tests and the network-fault scenarios use it.
package cachecheck

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"
)

// ParseTags reads the tags from a stored value's header.
func ParseTags(raw []byte) ([]string, error) {
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

// Layout names a cache's keys as the package doc documents them.
type Layout struct {
	Prefix  string
	Sharded bool
}

// Standalone and Sharded are the layouts of the cache called name.
func Standalone(name string) Layout { return Layout{Prefix: "kv:{c:" + name + "}:"} }
func Sharded(name string) Layout    { return Layout{Prefix: "kv:c:" + name + ":", Sharded: true} }

// ID returns the entry id of a value key, or false for other keys.
func (l Layout) ID(key string) (string, bool) {
	rest, ok := strings.CutPrefix(key, l.Prefix)
	if !ok {
		return "", false
	}
	if l.Sharded {
		if strings.HasPrefix(rest, "{") && strings.HasSuffix(rest, "}:v") {
			return rest[1 : len(rest)-3], true
		}
		return "", false
	}
	return strings.CutPrefix(rest, "v:")
}

// Index names a tag's index.
func (l Layout) Index(tag string) string {
	if l.Sharded {
		return l.Prefix + "i:{" + tag + "}"
	}
	return l.Prefix + "i:" + tag
}

// AllKeys lists every key on every primary of c with SCAN.
func AllKeys(t testing.TB, c valkey.Client) []string {
	t.Helper()
	var out []string
	nodes := map[string]valkey.Client{"": c}
	if c.Mode() == valkey.ClientModeCluster {
		nodes = c.Nodes()
	}
	for _, n := range nodes {
		if c.Mode() == valkey.ClientModeCluster {
			role, err := n.Do(ctx(t), n.B().Role().Build()).ToArray()
			if err != nil || len(role) == 0 {
				continue // unreachable, or not answering: a primary cut off is not read
			}
			if r, _ := role[0].ToString(); r != "master" {
				continue
			}
		}
		var cursor uint64
		for range 100000 {
			e, err := n.Do(ctx(t), n.B().Scan().Cursor(cursor).Count(1000).Build()).AsScanEntry()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, e.Elements...)
			if cursor = e.Cursor; cursor == 0 {
				break
			}
		}
	}
	return out
}

// Violations lists every live value of the cache missing from the index
// of one of its tags. The check reads each value and then its
// memberships; callers run it while nothing writes to the cache.
func Violations(t testing.TB, c valkey.Client, l Layout) []string {
	t.Helper()
	var out []string
	for _, key := range AllKeys(t, c) {
		id, ok := l.ID(key)
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
		tags, err := ParseTags(raw)
		if err != nil {
			out = append(out, fmt.Sprintf("%s: %v", key, err))
			continue
		}
		for _, tag := range tags {
			_, err := c.Do(ctx(t), c.B().Zscore().Key(l.Index(tag)).Member(id).Build()).AsFloat64()
			if valkey.IsValkeyNil(err) {
				out = append(out, fmt.Sprintf("live entry %q is not in the index of its tag %q", id, tag))
			} else if err != nil {
				out = append(out, fmt.Sprintf("index %s: %v", l.Index(tag), err))
			}
		}
	}
	return out
}

// Check fails the test if any live value is missing from one of its
// tags' indexes.
func Check(t testing.TB, c valkey.Client, l Layout, when string) {
	t.Helper()
	if v := Violations(t, c, l); len(v) > 0 {
		t.Errorf("%s: the cache's invariant is broken (%d violations), e.g. %s", when, len(v), strings.Join(v[:min(len(v), 5)], "; "))
	}
}

// ValueTags returns the tags stored in a value, nil if it does not exist.
func ValueTags(t testing.TB, c valkey.Client, key string) []string {
	t.Helper()
	raw, err := c.Do(ctx(t), c.B().Get().Key(key).Build()).AsBytes()
	if valkey.IsValkeyNil(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	tags, err := ParseTags(raw)
	if err != nil {
		t.Fatal(err)
	}
	return tags
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}
