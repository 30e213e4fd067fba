// Package cli is the keyvalue command: bench, doctor, acl, cache, lock,
// session and version. Main takes the peer libraries bench compares with,
// so that the binary links them only when built with the peers tag (see
// the command's package doc).
//
// The endpoint comes from --url, --config, or the KEYVALUE_* environment
// (KEYVALUE_URL, KEYVALUE_CONFIG, KEYVALUE_PASSWORD, ...). With none of
// them, bench and doctor start a throwaway local server (redis-server or
// valkey-server on a free 127.0.0.1 port) and stop it on exit.
package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/keyvalue-go/keyvalue/cmd/keyvalue/internal/benchrun"
	"github.com/spf13/cobra"
	"golang.org/x/term"
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
		Version:       buildVersions().String(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate("{{.Version}}\n")
	ep.register(root)
	root.AddCommand(newBenchCmd(&ep, peers), newDoctorCmd(&ep), newACLCmd(&ep), newCacheCmd(&ep), newLockCmd(&ep), newSessionCmd(&ep), newServeCmd(&ep), newVersionCmd())
	return root
}

// errNotConfirmed is returned when the user answers no.
var errNotConfirmed = errors.New("not confirmed: nothing was changed")

// confirm asks question on standard input unless yes is set. With
// terminalOnly, it refuses when standard input is not a terminal, so that
// scripts must say --yes instead of piping an answer.
func confirm(cmd *cobra.Command, yes bool, question string, terminalOnly bool) error {
	if yes {
		return nil
	}
	in := cmd.InOrStdin()
	if f, ok := in.(*os.File); terminalOnly && (!ok || !term.IsTerminal(int(f.Fd()))) {
		return fmt.Errorf("%s Refusing without a terminal to ask on: add --yes to confirm", question)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s [y/N] ", question)
	answer, _ := bufio.NewReader(in).ReadString('\n')
	if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
		return errNotConfirmed
	}
	return nil
}
