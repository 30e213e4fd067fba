// Package scan walks keys with SCAN (never KEYS) on every primary: one
// server for standalone and Sentinel clients, each primary of a Cluster
// (replicas skipped), with MATCH patterns escaped by Escape.
package scan

import (
	"context"
	"fmt"
	"iter"
	"maps"
	"slices"
	"strings"

	"github.com/valkey-io/valkey-go"
)

// Primaries returns a client per primary: c itself unless c is a Cluster
// client, whose nodes are asked for their ROLE.
func Primaries(ctx context.Context, c valkey.Client) ([]valkey.Client, error) {
	if c.Mode() != valkey.ClientModeCluster {
		return []valkey.Client{c}, nil
	}
	nodes := c.Nodes()
	var out []valkey.Client
	for _, addr := range slices.Sorted(maps.Keys(nodes)) {
		n := nodes[addr]
		role, err := n.Do(ctx, n.B().Role().Build()).ToArray()
		if err != nil {
			return nil, fmt.Errorf("ROLE on %s: %w", addr, err)
		}
		if len(role) > 0 {
			if r, _ := role[0].ToString(); r == "master" {
				out = append(out, n)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no primary among %d cluster nodes", len(nodes))
	}
	return out, nil
}

// Keys yields the pages of keys matching pattern, SCAN COUNT count, on
// every primary. Each page is a fresh slice. An error ends the iteration.
func Keys(ctx context.Context, c valkey.Client, pattern string, count int) iter.Seq2[[]string, error] {
	return keys(ctx, c, pattern, count, count)
}

// SparseGrowth bounds KeysSparse's COUNT: at most this many times the
// count it starts with.
const SparseGrowth = 8

// KeysSparse is Keys for a pattern that may match a small part of a large
// database (one cache among many keys): while a page brings fewer than an
// eighth of COUNT keys, the next call's COUNT doubles, up to
// SparseGrowth·count, and it halves back towards count while pages come
// back more than half full. A walk then costs about one round trip per
// count matching keys plus one per SparseGrowth·count other keys (it was
// one per count keys of the database), and no call visits more than
// SparseGrowth·count keys or returns more than about count·SparseGrowth/2.
func KeysSparse(ctx context.Context, c valkey.Client, pattern string, count int) iter.Seq2[[]string, error] {
	return keys(ctx, c, pattern, count, count*SparseGrowth)
}

func keys(ctx context.Context, c valkey.Client, pattern string, count, maxCount int) iter.Seq2[[]string, error] {
	return func(yield func([]string, error) bool) {
		nodes, err := Primaries(ctx, c)
		if err != nil {
			yield(nil, err)
			return
		}
		for _, n := range nodes {
			var cursor uint64
			cur := count
			for {
				e, err := n.Do(ctx, n.B().Scan().Cursor(cursor).Match(pattern).Count(int64(cur)).Build()).AsScanEntry()
				if err != nil {
					yield(nil, err)
					return
				}
				switch got := len(e.Elements); {
				case got < cur/8 && cur < maxCount:
					cur = min(cur*2, maxCount)
				case got > cur/2 && cur > count:
					cur = max(cur/2, count)
				}
				if len(e.Elements) > 0 && !yield(e.Elements, nil) {
					return
				}
				if cursor = e.Cursor; cursor == 0 {
					break
				}
			}
		}
	}
}

var escaper = strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`, `]`, `\]`)

// Escape makes s match itself literally in a SCAN MATCH pattern.
func Escape(s string) string { return escaper.Replace(s) }
