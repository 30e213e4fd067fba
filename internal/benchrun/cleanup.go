package benchrun

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/keyvalue-go/keyvalue/internal/glob"
	"github.com/valkey-io/valkey-go"
)

// NewNamespace returns a fresh namespace ("kvbench-" and 8 hex digits) for
// one run's keys.
func NewNamespace() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "kvbench-" + hex.EncodeToString(b[:])
}

// Cleanup removes every key containing ns, with SCAN and UNLINK on every
// primary (one UNLINK per key, so it works across Cluster slots), and
// returns how many it removed.
func Cleanup(ctx context.Context, c valkey.Client, ns string) (int, error) {
	nodes := map[string]valkey.Client{"": c}
	if c.Mode() == valkey.ClientModeCluster {
		nodes = c.Nodes()
	}
	removed := 0
	for _, n := range nodes {
		var cursor uint64
		for {
			e, err := n.Do(ctx, n.B().Scan().Cursor(cursor).Match("*"+glob.Escape(ns)+"*").Count(1000).Build()).AsScanEntry()
			if err != nil {
				return removed, fmt.Errorf("bench cleanup: %w", err)
			}
			if len(e.Elements) > 0 {
				cmds := make(valkey.Commands, len(e.Elements))
				for i, k := range e.Elements {
					cmds[i] = c.B().Unlink().Key(k).Build()
				}
				for _, r := range c.DoMulti(ctx, cmds...) {
					if x, err := r.AsInt64(); err == nil {
						removed += int(x)
					}
				}
			}
			if cursor = e.Cursor; cursor == 0 {
				break
			}
		}
	}
	return removed, nil
}
