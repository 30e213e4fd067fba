package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/keyvalue-go/keyvalue"
	"github.com/spf13/cobra"
)

// versions are the versions linked into this binary, from its build
// information: "(devel)" for a module built from a checkout rather than
// installed at a version.
type versions struct {
	cli, library, valkeyGo, goVersion, platform string
}

// The module paths whose versions keyvalue version reports.
const (
	cliModule    = "github.com/keyvalue-go/keyvalue/cmd/keyvalue"
	valkeyModule = "github.com/valkey-io/valkey-go"
)

func buildVersions() versions {
	info, _ := debug.ReadBuildInfo()
	return versionsOf(info, keyvalue.Version())
}

// versionsOf reads the versions from info (nil: none), with library the
// library's version as keyvalue.Version reports it.
func versionsOf(info *debug.BuildInfo, library string) versions {
	v := versions{cli: "(devel)", library: library, valkeyGo: "(unknown)",
		goVersion: runtime.Version(), platform: runtime.GOOS + "/" + runtime.GOARCH}
	if info == nil {
		return v
	}
	if info.Main.Path == cliModule && info.Main.Version != "" {
		v.cli = info.Main.Version
	}
	if info.GoVersion != "" {
		v.goVersion = info.GoVersion
	}
	for _, d := range info.Deps {
		if d.Path == valkeyModule {
			v.valkeyGo = d.Version
		}
	}
	return v
}

// String is what keyvalue version and keyvalue --version print.
func (v versions) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "keyvalue %s\n", v.cli)
	fmt.Fprintf(&b, "library   github.com/keyvalue-go/keyvalue %s\n", v.library)
	fmt.Fprintf(&b, "valkey-go %s\n", v.valkeyGo)
	fmt.Fprintf(&b, "go        %s %s", v.goVersion, v.platform)
	return b.String()
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the versions of keyvalue, valkey-go and Go in this binary",
		Long: `version prints the version of the keyvalue command, of the keyvalue library and of
valkey-go linked into it, and the Go version it was built with, from the binary's
build information. A binary built from a checkout (make build) reports (devel).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), buildVersions())
			return err
		},
	}
}
