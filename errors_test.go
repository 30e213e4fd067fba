package keyvalue_test

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/servertest"
)

// TestSetupRejections: a server that answers but refuses the set-up is a
// permanent error with a hint, reported at once (not "unreachable after 5
// attempts").
func TestSetupRejections(t *testing.T) {
	t.Parallel()
	s := servertest.Standalone(t)
	for name, tc := range map[string]struct {
		cfg  keyvalue.Config
		hint string
	}{
		"db out of range": {keyvalue.Config{Addrs: []string{s.Addr()}, DB: 99}, "the server has no database 99"},
		"sentinel URL at a data node": {keyvalue.Config{Mode: keyvalue.ModeSentinel, Addrs: []string{s.Addr()},
			Sentinel: keyvalue.SentinelConfig{Master: "m"}}, "is not a sentinel"},
		"cluster URL at a standalone server": {keyvalue.Config{Mode: keyvalue.ModeCluster, Addrs: []string{s.Addr()}}, "not in cluster mode"},
	} {
		start := time.Now()
		err := open(t, tc.cfg).Connect(ctxT(t, 20*time.Second))
		t.Logf("%s: %v (%s)", name, err, time.Since(start).Round(time.Millisecond))
		var ce *keyvalue.ConnectError
		if !errors.As(err, &ce) || !errors.Is(err, keyvalue.ErrRejected) || ce.Attempts != 1 || !strings.Contains(err.Error(), tc.hint) {
			t.Errorf("%s: %v; want ErrRejected after one attempt with a hint containing %q", name, err, tc.hint)
		}
	}
}

func TestConfigLimits(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{"redis://h:1:2", "redis://[::1", "redis://[::1]]:6379", "redis://h]:6379"} {
		if _, err := parseURL(raw); !errors.Is(err, keyvalue.ErrInvalidConfig) {
			t.Errorf("LoadURL(%q) = %v, want a config error", raw, err)
		} else {
			t.Logf("%s: %v", raw, err)
		}
	}
	if cfg, err := parseURL("redis://[::1]/0"); err != nil || cfg.Addrs[0] != "[::1]:6379" {
		t.Errorf("an IPv6 literal without a port: %v, %v", cfg.Addrs, err)
	}
	for key, cfg := range map[string]keyvalue.Config{
		"io_timeout":   {IOTimeout: time.Nanosecond},
		"dial_timeout": {DialTimeout: time.Microsecond},
		"retry.base":   {Retry: keyvalue.RetryConfig{Base: 1000 * time.Hour}},
		"retry.cap":    {Retry: keyvalue.RetryConfig{Cap: 146 * 365 * 24 * time.Hour}},
	} {
		_, err := cfg.Normalize()
		var ce *keyvalue.ConfigError
		if !errors.As(err, &ce) || ce.Key != key {
			t.Errorf("%s: %v", key, err)
		}
		t.Logf("%v", err)
	}
	// Delay never panics or goes negative, whatever the configuration.
	r := keyvalue.RetryConfig{Base: time.Millisecond, Cap: time.Duration(1<<63 - 1)}
	for _, j := range []keyvalue.Jitter{keyvalue.JitterEqual, keyvalue.JitterDecorrelated} {
		r.Jitter = j
		for attempt := 1; attempt < 80; attempt++ {
			if d := r.Delay(attempt, time.Duration(1<<62), nil); d < 0 {
				t.Fatalf("%s attempt %d: delay %s", j, attempt, d)
			}
		}
	}
}

func TestPasswordFile(t *testing.T) {
	t.Parallel()
	s := servertest.Standalone(t, servertest.WithArgs("--requirepass", "s3cret"))
	file := t.TempDir() + "/password"
	if err := os.WriteFile(file, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var cfg keyvalue.Config
	found, err := keyvalue.LoadEnv([]string{"KEYVALUE_URL=redis://" + s.Addr(), "KEYVALUE_PASSWORD_FILE=" + file}, &cfg)
	if err != nil || !found {
		t.Fatal(err)
	}
	roundTrip(t, open(t, cfg))
	_, err = keyvalue.Config{Password: "x", PasswordFile: file}.Normalize()
	t.Logf("both: %v", err)
	if !errors.Is(err, keyvalue.ErrInvalidConfig) {
		t.Errorf("password and password_file together: %v", err)
	}
	_, err = keyvalue.Config{PasswordFile: file + ".missing"}.Normalize()
	t.Logf("missing file: %v", err)
	if !errors.Is(err, keyvalue.ErrInvalidConfig) || !strings.Contains(err.Error(), "password_file") {
		t.Errorf("missing password file: %v", err)
	}
}

func TestUnixSocket(t *testing.T) {
	t.Parallel()
	sock := t.TempDir() + "/valkey.sock"
	servertest.Standalone(t, servertest.WithArgs("--unixsocket", sock, "--unixsocketperm", "700"))
	cfg, err := parseURL("unix://" + sock + "?db=3&client_name=sock")
	if err != nil || cfg.Addrs[0] != sock || cfg.DB != 3 {
		t.Fatalf("LoadURL = %+v, %v", cfg, err)
	}
	roundTrip(t, open(t, cfg))
	for raw, want := range map[string]string{
		"unix://":                              "names no socket",
		"redis+cluster://x:1?tls_enabled=true": "", // not a socket: unaffected
		"unix://" + sock + "?tls_enabled=true": "sockets serve standalone mode without TLS",
	} {
		cfg, err := parseURL(raw)
		if err == nil {
			_, err = cfg.Normalize()
		}
		if want == "" {
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", raw, err, want)
		}
	}
}

// parseURL is keyvalue.LoadURL into a plain Config.
func parseURL(raw string) (keyvalue.Config, error) {
	var c keyvalue.Config
	err := keyvalue.LoadURL(raw, &c)
	return c, err
}
