// Package cli is the keyvalue command: bench, doctor, cache, lock and
// session. It lives in an internal package so that two binaries can share
// it: cmd/keyvalue (keyvalue and the naive baseline only) and
// bench/cmd/keyvalue (the same command with the peer libraries, which stay
// out of the library's go.mod).
//
// The endpoint comes from --url, --config, or the KEYVALUE_* environment
// (KEYVALUE_URL, KEYVALUE_CONFIG, KEYVALUE_PASSWORD, ...). With none of
// them, bench and doctor start a throwaway local server (redis-server or
// valkey-server on a free 127.0.0.1 port) and stop it on exit.
package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/keyvalue-go/keyvalue/cmd/keyvalue/internal/benchrun"
	"github.com/spf13/cobra"
)

// Main runs the command with os.Args and exits. peers are extra
// implementations for keyvalue bench.
func Main(peers ...benchrun.Peer) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := NewRootCmd(peers...).ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "keyvalue:", err)
		os.Exit(1)
	}
}

// NewRootCmd builds the command tree.
func NewRootCmd(peers ...benchrun.Peer) *cobra.Command {
	var ep endpointFlags
	root := &cobra.Command{
		Use:           "keyvalue",
		Short:         "Check and exercise Redis/Valkey deployments with keyvalue",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	ep.register(root)
	root.AddCommand(newBenchCmd(&ep, peers), newDoctorCmd(&ep), newCacheCmd(&ep), newLockCmd(&ep), newSessionCmd(&ep))
	return root
}
