package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/cache"
	"github.com/spf13/cobra"
	"github.com/valkey-io/valkey-go"
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

	nodes := slices.Sorted(maps.Keys(client.Nodes()))
	switch cfg.Mode {
	case keyvalue.ModeSentinel:
		r.line("master", "%s (name %q, resolved through the sentinels)", strings.Join(nodes, ","), cfg.Sentinel.Master)
	case keyvalue.ModeCluster:
		r.line("nodes", "%d: %s", len(nodes), strings.Join(nodes, " "))
	}

	failed := false
	if cfg.TLS.Enabled && len(nodes) > 0 {
		if err := tlsReport(ctx, r, cfg.TLS, nodes[0]); err != nil {
			r.line("tls", "FAILED: %v", err)
			failed = true
		}
	} else if !cfg.TLS.Enabled {
		r.line("tls", "off (plaintext)")
	}

	info, err := client.Do(ctx, client.B().Info().Section("server").Build()).ToString()
	if err != nil {
		r.line("server", "FAILED: INFO server: %v", err)
		return errChecksFailed
	}
	f := infoFields(info)
	product, version := "redis", f["redis_version"]
	if v, ok := f["valkey_version"]; ok {
		product, version = "valkey", v
	} else if f["server_name"] == "valkey" {
		product = "valkey"
	}
	mode := f["redis_mode"]
	if mode == "" {
		mode = f["server_mode"] // Valkey 8 says server_mode unless extended-redis-compatibility is on
	}
	if mode == "" {
		mode = "unknown (INFO server names none)"
	}
	r.line("server", "%s %s (server mode %s)", product, version, mode)
	// An older server fails the connect above, naming the minimum.
	r.line("supported", "yes (keyvalue needs Redis %s or later, or Valkey %s or later)", keyvalue.MinRedisVersion, keyvalue.MinValkeyVersion)
	r.line("client mode", "%s", cfg.Mode)

	if role, err := client.Do(ctx, client.B().Role().Build()).ToArray(); err == nil && len(role) > 0 {
		name, _ := role[0].ToString()
		r.line("role", "%s", name)
	} else if err != nil {
		r.line("role", "unknown: %v", err)
	}
	if cfg.Mode == keyvalue.ModeCluster {
		ci, err := client.Do(ctx, client.B().ClusterInfo().Build()).ToString()
		switch {
		case errors.Is(err, keyvalue.ErrNoPermission):
			r.line("cluster", "not checked: the user may not run CLUSTER INFO")
		case err != nil:
			r.line("cluster", "FAILED: %v", err)
			failed = true
		default:
			cf := infoFields(ci)
			r.line("cluster", "state %s, %s slots assigned, %s known nodes", cf["cluster_state"], cf["cluster_slots_assigned"], cf["cluster_known_nodes"])
			failed = failed || cf["cluster_state"] != "ok"
		}
	}

	lat, err := pingLatency(ctx, client, pings)
	if err != nil {
		r.line("latency", "FAILED: %v", err)
		failed = true
	} else {
		r.line("latency", "%d PINGs: min %s, median %s, max %s", len(lat), lat[0], lat[len(lat)/2], lat[len(lat)-1])
	}

	r.line("client cache", "%s", cacheReport(ctx, client))
	r.line("eviction", "%s", evictionReport(ctx, client))
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

// tlsReport dials addr with the configured TLS settings and describes the session.
func tlsReport(ctx context.Context, r report, t keyvalue.TLSConfig, addr string) error {
	conf, err := t.ClientConfig()
	if err != nil {
		return err
	}
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: conf}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	st := c.(*tls.Conn).ConnectionState()
	verified := "verified"
	if conf.InsecureSkipVerify {
		verified = "NOT VERIFIED (insecure_skip_verify)"
	}
	r.line("tls", "%s, %s", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
	if len(st.PeerCertificates) > 0 {
		leaf := st.PeerCertificates[0]
		names := slices.Clone(leaf.DNSNames)
		for _, ip := range leaf.IPAddresses {
			names = append(names, ip.String())
		}
		r.line("server cert", "CN=%s for %s, issued by %s, expires %s (in %d days), %s", leaf.Subject.CommonName, strings.Join(names, ","),
			leaf.Issuer.CommonName, leaf.NotAfter.Format(time.DateOnly), int(time.Until(leaf.NotAfter).Hours()/24), verified)
	}
	if len(conf.Certificates) > 0 {
		r.line("client cert", "presented (mTLS)")
	} else {
		r.line("client cert", "none")
	}
	return nil
}

func pingLatency(ctx context.Context, c valkey.Client, n int) ([]time.Duration, error) {
	out := make([]time.Duration, 0, n)
	for range n {
		t0 := time.Now()
		if err := c.Do(ctx, c.B().Ping().Build()).Error(); err != nil {
			return nil, err
		}
		out = append(out, time.Since(t0).Round(time.Microsecond))
	}
	slices.Sort(out)
	return out, nil
}

// cacheReport checks client-side caching by reading one key twice through
// DoCache: the second read is a local hit when tracking works.
func cacheReport(ctx context.Context, c *keyvalue.Client) string {
	if !c.ClientSideCaching() {
		return "unavailable (disabled in the config, or the server refused CLIENT TRACKING)"
	}
	key := "kv:doctor:csc-probe"
	for range 2 {
		res := c.DoCache(ctx, c.B().Get().Key(key).Cache(), 5*time.Second)
		if err := res.Error(); errors.Is(err, keyvalue.ErrNoPermission) {
			return "enabled; not probed: the ACL user may not read " + key + " (only keyvalue's own keys)"
		} else if err != nil && !valkey.IsValkeyNil(err) {
			return "error: " + err.Error()
		}
		if res.IsCacheHit() {
			return "available (RESP3 CLIENT TRACKING; a repeated read was served locally)"
		}
	}
	return "enabled, but a repeated read was not served locally"
}

// infoFields parses "key:value" lines of INFO-style replies (RESP3 may
// deliver them as verbatim strings with a "txt:" prefix).
func infoFields(s string) map[string]string {
	s = strings.TrimPrefix(s, "txt:")
	m := map[string]string{}
	for line := range strings.SplitSeq(s, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			m[k] = v
		}
	}
	return m
}

// evictionReport gives the servers' maxmemory-policy and what it means for
// tagged caches (the same verdict cache.Backend.Set applies).
func evictionReport(ctx context.Context, c valkey.Client) string {
	policies, err := cache.EvictionPolicies(ctx, c)
	if err != nil {
		return "unknown: " + err.Error()
	}
	slices.Sort(policies)
	policies = slices.Compact(policies)
	unsafe, _ := cache.UnsafeEvictionPolicy(ctx, c)
	if unsafe != "" {
		return fmt.Sprintf("maxmemory-policy %s: UNSAFE for tagged caches (the server may evict a tag index while its entries stay); cache writes are refused unless Options.AllowEvictingPolicy is set; use noeviction or a volatile-* policy", strings.Join(policies, ","))
	}
	return fmt.Sprintf("maxmemory-policy %s: safe for tagged caches (tag indexes have no expiry and are never evicted)", strings.Join(policies, ","))
}
