package keyvalue

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keyvalue-go/keyvalue/internal/testsupport/servertest"
	"github.com/valkey-io/valkey-go"
)

func TestInvalidConfigNamesTheKey(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.pem")
	cases := []struct {
		key string
		cfg Config
	}{
		{"mode", Config{Mode: "replicated"}},
		{"addrs", Config{Mode: ModeCluster}},
		{"addrs", Config{Addrs: []string{"a:1", "b:2"}}},
		{"addrs[0]", Config{Addrs: []string{"localhost"}}},
		{"addrs[1]", Config{Mode: ModeCluster, Addrs: []string{"a:1", "b:99999"}}},
		{"db", Config{DB: -1}},
		{"db", Config{Mode: ModeCluster, Addrs: []string{"a:1"}, DB: 2}},
		{"client_name", Config{ClientName: "my app"}},
		{"sentinel.master", Config{Mode: ModeSentinel, Addrs: []string{"s:26379"}}},
		{"sentinel", Config{Sentinel: SentinelConfig{Master: "m"}}},
		{"tls.enabled", Config{TLS: TLSConfig{CAFile: "/ca.pem"}}},
		{"tls.min_version", Config{TLS: TLSConfig{Enabled: true, MinVersion: "1.1"}}},
		{"tls.cert_file", Config{TLS: TLSConfig{Enabled: true, KeyFile: "k.pem"}}},
		{"sentinel.tls.min_version", Config{Mode: ModeSentinel, Addrs: []string{"s:1"}, Sentinel: SentinelConfig{Master: "m", TLS: TLSConfig{Enabled: true, MinVersion: "2"}}}},
		{"sentinel.refresh_interval", Config{Mode: ModeSentinel, Addrs: []string{"s:1"}, Sentinel: SentinelConfig{Master: "m", RefreshInterval: -time.Second}}},
		{"dial_timeout", Config{DialTimeout: -1}},
		{"io_timeout", Config{IOTimeout: -1}},
		{"conn_lifetime", Config{ConnLifetime: -1}},
		{"max_flush_delay", Config{MaxFlushDelay: -1}},
		{"pipeline_multiplex", Config{PipelineMultiplex: 9}},
		{"read_from_replicas", Config{ReadFromReplicas: true}},
		{"blocking_pool_size", Config{BlockingPoolSize: -1}},
		{"client_cache.size_per_conn", Config{ClientCache: ClientCacheConfig{SizePerConn: -1}}},
		{"retry.jitter", Config{Retry: RetryConfig{Jitter: "full"}}},
		{"retry.base", Config{Retry: RetryConfig{Base: -1}}},
		{"retry.cap", Config{Retry: RetryConfig{Base: time.Second, Cap: time.Millisecond}}},
		{"retry.max_attempts", Config{Retry: RetryConfig{MaxAttempts: -2}}},
		{"tls.ca_file", Config{TLS: TLSConfig{Enabled: true, CAFile: missing}}},
		{"tls.cert_file", Config{TLS: TLSConfig{Enabled: true, CertFile: missing, KeyFile: missing}}},
	}
	for _, tc := range cases {
		_, err := Open(tc.cfg)
		var ce *ConfigError
		if !errors.As(err, &ce) || !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: Open err = %v; want a ConfigError", tc.key, err)
			continue
		}
		if ce.Key != tc.key || !strings.Contains(err.Error(), "config "+tc.key+":") {
			t.Errorf("error names %q, want %q: %v", ce.Key, tc.key, err)
		}
		t.Logf("%-26s %v", tc.key, err)
	}
}

func TestLoadURL(t *testing.T) {
	cases := []struct {
		url  string
		want Config
	}{
		{"redis://localhost", Config{Mode: ModeStandalone, Addrs: []string{"localhost:6379"}}},
		{"valkey://:p%40ss@10.0.0.1:6380/2", Config{Mode: ModeStandalone, Addrs: []string{"10.0.0.1:6380"}, Password: "p@ss", DB: 2}},
		{"rediss://app:pw@cache:6380?tls_ca_file=/ca.pem&dial_timeout=2s&client_name=web&retry_jitter=decorrelated",
			Config{Mode: ModeStandalone, Addrs: []string{"cache:6380"}, Username: "app", Password: "pw", ClientName: "web", DialTimeout: 2 * time.Second,
				TLS: TLSConfig{Enabled: true, CAFile: "/ca.pem"}, Retry: RetryConfig{Jitter: JitterDecorrelated}}},
		{"redis+sentinel://s1,s2:26380,[::1]/mymaster/1?sentinel_password=x",
			Config{Mode: ModeSentinel, Addrs: []string{"s1:26379", "s2:26380", "[::1]:26379"}, DB: 1, Sentinel: SentinelConfig{Master: "mymaster", Password: "x"}}},
		{"valkeys+cluster://n1:7000,n2:7001", Config{Mode: ModeCluster, Addrs: []string{"n1:7000", "n2:7001"}, TLS: TLSConfig{Enabled: true}}},
	}
	for _, tc := range cases {
		got, err := parseURL(tc.url)
		if err != nil {
			t.Errorf("%s: %v", tc.url, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.url, got, tc.want)
		}
	}
	bad := map[string]string{
		"localhost:6379":                         "config url: \"localhost:6379\" has no scheme",
		"http://x":                               "scheme \"http\" is not supported",
		"redis+ring://x":                         "unknown topology",
		"redis://x/abc":                          "config db: URL path \"abc\"",
		"redis+sentinel://s1":                    "name the master",
		"redis://x?tls_ca=/a":                    "config tls_ca: unknown key",
		"redis://x?dial_timeout=5":               "config dial_timeout: \"5\" is not a duration",
		"redis://x?mode=cluster":                 "config mode: is set by the URL's scheme",
		"redis://:secret@x?retry_max_attempts=z": "config retry.max_attempts",
	}
	for u, want := range bad {
		_, err := parseURL(u)
		if err == nil || !strings.Contains(err.Error(), want) || !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("LoadURL(%q) err = %v; want %q", u, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("error leaks the password: %v", err)
		}
	}
}

func TestLoadEnvAndFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "kv.yaml")
	if err := os.WriteFile(file, []byte("mode: sentinel\naddrs: [s1:26379, s2:26379]\nsentinel:\n  master: kv\n  tls:\n    enabled: true\nretry:\n  max_attempts: 7\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, found, err := configFromEnviron([]string{"KEYVALUE_CONFIG=" + file, "KEYVALUE_PASSWORD=pw", "KEYVALUE_RETRY_BASE=20ms", "PATH=/bin"})
	if err != nil || !found {
		t.Fatalf("configFromEnv: %v (found %v)", err, found)
	}
	want := Config{Mode: ModeSentinel, Addrs: []string{"s1:26379", "s2:26379"}, Password: "pw",
		Sentinel: SentinelConfig{Master: "kv", TLS: TLSConfig{Enabled: true}}, Retry: RetryConfig{MaxAttempts: 7, Base: 20 * time.Millisecond}}
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("got %+v\nwant %+v", cfg, want)
	}
	if _, found, err := configFromEnviron([]string{"HOME=/root"}); found || err != nil {
		t.Fatalf("no KEYVALUE_ variables: found=%v err=%v", found, err)
	}
	cfg, _, err = configFromEnviron([]string{"KEYVALUE_URL=redis://h:1/3", "KEYVALUE_ADDRS=a:1, b:2", "KEYVALUE_MODE=cluster"})
	if err != nil || cfg.DB != 3 || cfg.Mode != ModeCluster || !reflect.DeepEqual(cfg.Addrs, []string{"a:1", "b:2"}) {
		t.Fatalf("URL + overrides: %+v, %v", cfg, err)
	}
	for env, want := range map[string]string{
		"KEYVALUE_TLS_CAFILE=/x":       "config KEYVALUE_TLS_CAFILE: unknown key",
		"KEYVALUE_DB=one":              "config KEYVALUE_DB: \"one\" is not a whole number",
		"KEYVALUE_TLS_ENABLED=yes":     "config KEYVALUE_TLS_ENABLED: \"yes\" is not a boolean",
		"KEYVALUE_CONFIG=/nonexistent": "read config",
		"KEYVALUE_URL=ftp://x":         "scheme \"ftp\"",
	} {
		if _, _, err := configFromEnviron([]string{env}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v; want %q", env, err, want)
		}
	}
	if _, _, err := configFromEnviron([]string{"KEYVALUE_URL=redis://x", "KEYVALUE_CONFIG=" + file}); err == nil {
		t.Error("KEYVALUE_URL with KEYVALUE_CONFIG: no error")
	}

	for doc, want := range map[string]string{
		"addrs: [a:1]\ntls:\n  ca: /x\n": "line 3 (tls.ca): field ca not found",
		"mode: [x]\n":                    "line 1",
		"dial_timeout: soon\n":           "dial_timeout",
	} {
		_, err := decodeConfig([]byte(doc))
		if err == nil || !strings.Contains(err.Error(), want) || !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("LoadBytes(%q) err = %v; want %q", doc, err, want)
		}
	}
	if cfg, err := decodeConfig([]byte(`{"addrs": ["j:1"], "io_timeout": "3s", "client_cache": {"disable": true}}`)); err != nil ||
		cfg.IOTimeout != 3*time.Second || !cfg.ClientCache.Disable {
		t.Errorf("JSON config: %+v, %v", cfg, err)
	}
}

func TestConfigStringHidesSecrets(t *testing.T) {
	cfg, err := parseURL("rediss+sentinel://app:hunter2@s1/kv?sentinel_password=topsecret")
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.String()
	if strings.Contains(s, "hunter2") || strings.Contains(s, "topsecret") || !strings.Contains(s, "sentinel kv via s1:26379") {
		t.Errorf("String() = %q", s)
	}
}

func TestRetryDelay(t *testing.T) {
	r := RetryConfig{Base: 10 * time.Millisecond, Cap: 640 * time.Millisecond}
	for _, j := range []Jitter{JitterEqual, JitterDecorrelated} {
		r.Jitter = j
		seq := func(seed uint64) []time.Duration {
			rng := rand.New(rand.NewPCG(seed, 1))
			var out []time.Duration
			var prev time.Duration
			for a := 1; a <= 12; a++ {
				prev = r.Delay(a, prev, rng)
				out = append(out, prev)
			}
			return out
		}
		a, b, c := seq(1), seq(1), seq(2)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s: same seed, different delays: %v vs %v", j, a, b)
		}
		if reflect.DeepEqual(a, c) {
			t.Errorf("%s: no jitter: seeds 1 and 2 give %v", j, a)
		}
		for i, d := range a {
			if d < r.Base/2 || d > r.Cap {
				t.Errorf("%s: delay %d = %s outside [base/2, cap]", j, i+1, d)
			}
		}
		t.Logf("%s: %v", j, a)
	}
	// Equal jitter grows: attempt n waits within [e/2, e], e = min(cap, base·2^(n-1)).
	r.Jitter = JitterEqual
	rng := rand.New(rand.NewPCG(7, 7))
	for a := 1; a <= 10; a++ {
		e := min(r.Cap, r.Base<<(a-1))
		for range 50 {
			if d := r.Delay(a, 0, rng); d < e/2 || d > e {
				t.Fatalf("equal jitter attempt %d: %s outside [%s, %s]", a, d, e/2, e)
			}
		}
	}
	// Decorrelated: within [base, min(cap, 3·prev)].
	r.Jitter = JitterDecorrelated
	for _, prev := range []time.Duration{10 * time.Millisecond, 50 * time.Millisecond, time.Second} {
		for range 50 {
			if d := r.Delay(3, prev, rng); d < r.Base || d > min(r.Cap, 3*prev) {
				t.Fatalf("decorrelated after %s: %s", prev, d)
			}
		}
	}
}

// TestBuilderMatchesValkeyGo checks that the builder a lazy handle returns
// before dialling is the one valkey-go's own client uses in each mode.
func TestBuilderMatchesValkeyGo(t *testing.T) {
	s := servertest.Standalone(t)
	cl := servertest.Cluster(t, 3)
	for mode, opt := range map[Mode]valkey.ClientOption{
		ModeStandalone: {InitAddress: []string{s.Addr()}, ForceSingleClient: true},
		ModeCluster:    {InitAddress: cl.Addrs()},
	} {
		real, err := valkey.NewClient(opt)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(real.B(), mustBuilder(t, mode)) {
			t.Errorf("%s: builderFor differs from valkey-go's builder", mode)
		}
		real.Close()
	}
	// Cluster builders reject cross-slot keys; standalone ones do not.
	func() {
		defer func() {
			if recover() == nil {
				t.Error("cluster builder accepted a cross-slot MGET")
			}
		}()
		mustBuilder(t, ModeCluster).Mget().Key("a", "b").Build()
	}()
	mustBuilder(t, ModeStandalone).Mget().Key("a", "b").Build()
}

func mustBuilder(t *testing.T, m Mode) valkey.Builder {
	t.Helper()
	b, err := builderFor(m)
	if err != nil {
		t.Fatal(err) // valkey-go changed valkey.Builder: update builder.go
	}
	return b
}

// parseURL, configFromEnviron and decodeConfig call the loaders with a
// plain Config.
func parseURL(raw string) (Config, error) {
	var c Config
	err := LoadURL(raw, &c)
	return c, err
}

func configFromEnviron(environ []string) (Config, bool, error) {
	var c Config
	found, err := LoadEnv(environ, &c)
	return c, found, err
}

func decodeConfig(doc []byte) (Config, error) {
	var c Config
	err := LoadBytes(doc, &c)
	return c, err
}
