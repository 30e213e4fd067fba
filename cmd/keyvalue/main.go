// Command keyvalue checks and exercises Redis/Valkey deployments with the
// keyvalue library: doctor diagnoses a connection.
//
// The endpoint comes from --url, --config, or the KEYVALUE_* environment
// (KEYVALUE_URL, KEYVALUE_CONFIG, KEYVALUE_PASSWORD, ...). With none of
// them, the command starts a throwaway local server (redis-server or
// valkey-server on a free 127.0.0.1 port) and stops it on exit.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "keyvalue:", err)
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	var ep endpointFlags
	root := &cobra.Command{
		Use:           "keyvalue",
		Short:         "Check and exercise Redis/Valkey deployments with keyvalue",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	ep.register(root)
	root.AddCommand(newDoctorCmd(&ep), newCacheCmd(&ep), newLockCmd(&ep), newSessionCmd(&ep))
	return root
}
