package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/internal/serverstatus"
	"github.com/spf13/cobra"
)

// errChecksFailed makes the command exit non-zero after the report says why.
var errChecksFailed = errors.New("doctor found a problem (see above)")

func newDoctorCmd(ep *endpointFlags) *cobra.Command {
	var (
		timeout time.Duration
		pings   int
		aclUser string
		comps   componentFlags
	)
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Connect, check TLS and report server version, role, mode, latency and client-side caching",
		Long: `doctor resolves the endpoint (through the sentinels in Sentinel mode), connects
with the same code path the library uses, and reports what it found. On failure it
says what is wrong: connection refused, TLS verification failed and why, a client
certificate rejected, authentication failed, an unknown Sentinel master name.

It checks with ACL DRYRUN that the ACL user (the connection's, or --acl-user) may
run every command the named components send (--cache, --sessions, --locks, as for
keyvalue acl; all of them, any name, when none is named) and lists what is missing.
Checking another user needs a connection whose user may run ACL DRYRUN.

Without --url, --config or KEYVALUE_* variables it checks a throwaway local server.`,
		Example: `  keyvalue doctor
  keyvalue doctor --url rediss://app:secret@cache.internal:6380?tls_ca_file=/run/tls/ca.crt
  keyvalue doctor --url redis+sentinel://10.0.0.1,10.0.0.2,10.0.0.3/mymaster
  KEYVALUE_URL=redis+cluster://10.0.1.1:7000 keyvalue doctor
  keyvalue doctor --url redis://admin:secret@cache.internal --acl-user app --cache pages --sessions fe`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if pings < 1 || pings > maxPings {
				return fmt.Errorf("--pings %d: use 1 to %d", pings, maxPings)
			}
			e, err := ep.resolve(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer e.close()
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			perms, err := comps.permissions(e.cfg, true)
			if err != nil {
				return err
			}
			return doctor(ctx, cmd.OutOrStdout(), e, pings, aclUser, perms)
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 15*time.Second, "give up after this long")
	cmd.Flags().IntVar(&pings, "pings", 20, "PINGs sent to measure round-trip latency")
	cmd.Flags().StringVar(&aclUser, "acl-user", "", "the ACL user to check (default: the connection's)")
	comps.register(cmd.Flags())
	return cmd
}

// report prints aligned "name  value" lines.
type report struct{ w io.Writer }

func (r report) line(name, format string, args ...any) {
	fmt.Fprintf(r.w, "%-15s %s\n", name, fmt.Sprintf(format, args...))
}

// maxPings bounds doctor's latency sample (each PING's latency is kept).
const maxPings = 100000

func doctor(ctx context.Context, w io.Writer, e *endpoint, pings int, aclUser string, perms []keyvalue.Permissions) error {
	r := report{w}
	r.line("config from", "%s", e.source)
	cfg, err := e.cfg.Config.Normalize()
	if err != nil {
		r.line("config", "INVALID: %v", err)
		return errChecksFailed
	}
	r.line("endpoint", "%s", cfg)
	client, err := keyvalue.Open(cfg)
	if err != nil {
		r.line("config", "INVALID: %v", err)
		return errChecksFailed
	}
	defer client.Close()

	start := time.Now()
	if err := client.Connect(ctx); err != nil {
		r.line("connect", "FAILED: %v", err)
		return errChecksFailed
	}
	r.line("connect", "ok in %s", time.Since(start).Round(time.Microsecond))

	failed := false
	for _, l := range serverstatus.Check(ctx, client, cfg, pings) {
		r.line(l.Name, "%s", l.Value)
		failed = failed || l.Failed
		if l.Name == "server" && l.Failed {
			return errChecksFailed
		}
	}
	if aclUser == "" {
		aclUser = cfg.Username
	}
	if aclUser == "" {
		aclUser = "default"
	}
	if !aclReport(ctx, r, w, client, aclUser, perms) {
		failed = true
	}
	if failed {
		return errChecksFailed
	}
	r.line("result", "ok")
	return nil
}
