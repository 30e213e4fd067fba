package cli

import (
	"bytes"
	"errors"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/keyvalue-go/keyvalue/internal/testsupport/servertest"
)

// run executes the CLI with args and returns its output.
func run(t *testing.T, args ...string) (string, error) {
	return runIn(t, "", args...)
}

// runIn is run with stdin.
func runIn(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd := NewRootCmd()
	cmd.SetArgs(args)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	err := cmd.ExecuteContext(t.Context())
	t.Logf("keyvalue %s\n%s", strings.Join(args, " "), out.String())
	return out.String(), err
}

func wantLines(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q", w)
		}
	}
}

// TestDoctorThrowawayServer runs doctor with no endpoint configured: it
// must start a local server, report on it, and stop it.
func TestDoctorThrowawayServer(t *testing.T) {
	for _, kv := range os.Environ() {
		if k, v, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "KEYVALUE_") && !strings.HasSuffix(k, "_BIN") {
			os.Unsetenv(k)
			t.Cleanup(func() { os.Setenv(k, v) })
		}
	}
	out, err := run(t, "doctor", "--pings", "3")
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, out, "config from     throwaway local server", "endpoint        standalone 127.0.0.1:", "latency         3 PINGs", "result          ok")
	addr := strings.Fields(strings.SplitN(strings.SplitN(out, "endpoint", 2)[1], "\n", 2)[0])[1]
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("throwaway server at %s still accepts connections after doctor returned", addr)
	}
}

func TestDoctorTopologies(t *testing.T) {
	t.Parallel()
	t.Run("standalone", func(t *testing.T) {
		t.Parallel()
		s := servertest.Standalone(t)
		out, err := run(t, "doctor", "--url", "redis://"+s.Addr()+"/1")
		if err != nil {
			t.Fatal(err)
		}
		wantLines(t, out, "(server mode standalone)", "client mode     standalone", "role            master", "tls             off", "latency         20 PINGs", "client cache    available", "eviction        maxmemory-policy noeviction: safe for tagged caches", "result          ok")
	})
	t.Run("mtls", func(t *testing.T) {
		t.Parallel()
		c := servertest.NewCerts(t)
		s := servertest.Standalone(t, servertest.WithTLS(c, true))
		q := url.Values{"tls_ca_file": {c.CAFile}, "tls_cert_file": {c.ClientCertFile}, "tls_key_file": {c.ClientKeyFile}}
		out, err := run(t, "doctor", "--url", "rediss://"+s.Addr()+"?"+q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		wantLines(t, out, "tls             TLS 1.3", "server cert     CN=server for localhost,127.0.0.1", "verified", "client cert     presented (mTLS)", "result          ok")
	})
	t.Run("sentinel", func(t *testing.T) {
		t.Parallel()
		set := servertest.Sentinel(t)
		out, err := run(t, "doctor", "--url", "redis+sentinel://"+strings.Join(set.SentinelAddrs(), ",")+"/"+set.Master)
		if err != nil {
			t.Fatal(err)
		}
		wantLines(t, out, "master          "+set.Primary.Addr(), "client mode     sentinel", "role            master", "result          ok")
	})
	t.Run("cluster", func(t *testing.T) {
		t.Parallel()
		cl := servertest.Cluster(t, 3)
		out, err := run(t, "doctor", "--url", "redis+cluster://"+cl.Addrs()[0])
		if err != nil {
			t.Fatal(err)
		}
		wantLines(t, out, "nodes           3:", "server mode cluster", "client mode     cluster", "cluster         state ok, 16384 slots", "result          ok")
	})
}

func TestDoctorExplainsFailures(t *testing.T) {
	t.Parallel()
	c := servertest.NewCerts(t)
	mtls := servertest.Standalone(t, servertest.WithTLS(c, true))
	auth := servertest.Standalone(t, servertest.WithArgs("--requirepass", "right"))
	free := servertest.ReservePort(t)
	set := servertest.Sentinel(t)
	cases := map[string]struct {
		args []string
		want string
	}{
		"refused": {[]string{"--url", "redis://127.0.0.1:" + itoa(free) + "?retry_max_attempts=2"},
			"server unreachable after 2 attempts: dial tcp 127.0.0.1:" + itoa(free) + ": connect: connection refused — nothing listens there"},
		"untrusted server": {[]string{"--url", "rediss://" + mtls.Addr()},
			"TLS handshake failed: tls: failed to verify certificate: x509: certificate signed by unknown authority — the server certificate is not trusted: set tls.ca_file"},
		"no client cert": {[]string{"--url", "rediss://" + mtls.Addr() + "?tls_ca_file=" + url.QueryEscape(c.CAFile)},
			"remote error: tls: certificate required — the server rejected the TLS handshake"},
		"wrong password": {[]string{"--url", "redis://:wrong@" + auth.Addr()},
			"authentication failed: WRONGPASS"},
		"unknown master": {[]string{"--url", "redis+sentinel://" + set.SentinelAddrs()[0] + "/nosuch?retry_max_attempts=1"},
			`sentinel does not know the master name: No such master with that name — the sentinels do not monitor a master named "nosuch"`},
		"bad url": {[]string{"--url", "redis://h?dial_timeout=fast"},
			`config dial_timeout: "fast" is not a duration`},
		"both flags": {[]string{"--url", "redis://h", "--config", "x.yaml"}, "--url and --config both given"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			out, err := run(t, append([]string{"doctor"}, tc.args...)...)
			if err == nil {
				t.Fatal("doctor succeeded")
			}
			if !strings.Contains(out+err.Error(), tc.want) {
				t.Errorf("output and error %q / %v lack %q", out, err, tc.want)
			}
			if errors.Is(err, errChecksFailed) && strings.Contains(out, "result          ok") {
				t.Error("reported ok and failed")
			}
		})
	}
}
