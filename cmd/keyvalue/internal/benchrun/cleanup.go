package benchrun

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/keyvalue-go/keyvalue/internal/scan"
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
// returns how many it removed. The SCAN's COUNT grows while pages come
// back nearly empty (scan.KeysSparse): after a run that tidied up, a
// sweep costs a few round trips however large the database.
func Cleanup(ctx context.Context, c valkey.Client, ns string) (int, error) {
	removed := 0
	for page, err := range scan.KeysSparse(ctx, c, "*"+scan.Escape(ns)+"*", 1000) {
		if err != nil {
			return removed, fmt.Errorf("bench cleanup: %w", err)
		}
		cmds := make(valkey.Commands, len(page))
		for i, k := range page {
			cmds[i] = c.B().Unlink().Key(k).Build()
		}
		for _, r := range c.DoMulti(ctx, cmds...) {
			if x, err := r.AsInt64(); err == nil {
				removed += int(x)
			}
		}
	}
	return removed, nil
}
