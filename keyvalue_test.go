package keyvalue_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/kvtest"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/servertest"
	"github.com/valkey-io/valkey-go"
)

// open opens cfg and closes the handle at the end of the test.
func open(t *testing.T, cfg keyvalue.Config) *keyvalue.Client { return kvtest.Open(t, cfg) }

func ctxT(t *testing.T, d time.Duration) context.Context { return kvtest.Ctx(t, d) }

// roundTrip sets and reads back a key.
func roundTrip(t *testing.T, c valkey.Client) {
	t.Helper()
	ctx := ctxT(t, 10*time.Second)
	key := "kv:test:" + strings.ReplaceAll(t.Name(), "/", ":")
	if err := c.Do(ctx, c.B().Set().Key(key).Value("v1").Build()).Error(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	got, err := c.Do(ctx, c.B().Get().Key(key).Build()).ToString()
	if err != nil || got != "v1" {
		t.Fatalf("GET = %q, %v; want v1", got, err)
	}
}

func TestConnectEachMode(t *testing.T) {
	t.Parallel()
	t.Run("standalone", func(t *testing.T) {
		t.Parallel()
		s := servertest.Standalone(t)
		roundTrip(t, open(t, keyvalue.Config{Addrs: []string{s.Addr()}}))
	})
	t.Run("tls", func(t *testing.T) {
		t.Parallel()
		certs := servertest.NewCerts(t)
		s := servertest.Standalone(t, servertest.WithTLS(certs, false))
		roundTrip(t, open(t, keyvalue.Config{Addrs: []string{s.Addr()},
			TLS: keyvalue.TLSConfig{Enabled: true, CAFile: certs.CAFile}}))
	})
	t.Run("mtls", func(t *testing.T) {
		t.Parallel()
		certs := servertest.NewCerts(t)
		s := servertest.Standalone(t, servertest.WithTLS(certs, true))
		c := open(t, keyvalue.Config{Addrs: []string{s.Addr()}, TLS: keyvalue.TLSConfig{
			Enabled: true, CAFile: certs.CAFile, CertFile: certs.ClientCertFile, KeyFile: certs.ClientKeyFile, MinVersion: "1.3"}})
		roundTrip(t, c)
	})
	t.Run("sentinel", func(t *testing.T) {
		t.Parallel()
		set := servertest.Sentinel(t)
		c := open(t, keyvalue.Config{Mode: keyvalue.ModeSentinel, Addrs: set.SentinelAddrs(),
			Sentinel: keyvalue.SentinelConfig{Master: set.Master}})
		roundTrip(t, c)
		if c.Mode() != valkey.ClientModeSentinel {
			t.Errorf("Mode() = %v", c.Mode())
		}
	})
	t.Run("cluster", func(t *testing.T) {
		t.Parallel()
		cl := servertest.Cluster(t, 3)
		c := open(t, keyvalue.Config{Mode: keyvalue.ModeCluster, Addrs: cl.Addrs()[:1]})
		roundTrip(t, c)
		// Keys on every primary: the client follows the slot map.
		ctx := ctxT(t, 10*time.Second)
		for i := range 30 {
			k := "k" + strconv.Itoa(i)
			if err := c.Do(ctx, c.B().Set().Key(k).Value(k).Build()).Error(); err != nil {
				t.Fatalf("SET %s: %v", k, err)
			}
		}
		if n := len(c.Nodes()); n != 3 {
			t.Errorf("Nodes() has %d entries, want 3", n)
		}
	})
}

func TestTLSFailuresAreExplained(t *testing.T) {
	t.Parallel()
	certs := servertest.NewCerts(t)
	mtls := servertest.Standalone(t, servertest.WithTLS(certs, true))
	plain := servertest.Standalone(t)
	expired := servertest.Standalone(t, servertest.WithExpiredTLS(certs))
	tls12 := servertest.Standalone(t, servertest.WithTLS(certs, false), servertest.WithArgs("--tls-protocols", "TLSv1.2"))
	cases := []struct {
		name string
		cfg  keyvalue.Config
		want string
	}{
		{"mtls without client certificate",
			keyvalue.Config{Addrs: []string{mtls.Addr()}, TLS: keyvalue.TLSConfig{Enabled: true, CAFile: certs.CAFile}},
			"set tls.cert_file and tls.key_file"},
		{"mtls with certificate from another CA",
			keyvalue.Config{Addrs: []string{mtls.Addr()}, TLS: keyvalue.TLSConfig{Enabled: true, CAFile: certs.CAFile,
				CertFile: certs.OtherClientCertFile, KeyFile: certs.OtherClientKeyFile}},
			"set tls.cert_file and tls.key_file"},
		{"server certificate not trusted",
			keyvalue.Config{Addrs: []string{mtls.Addr()}, TLS: keyvalue.TLSConfig{Enabled: true, CAFile: certs.OtherCAFile,
				CertFile: certs.ClientCertFile, KeyFile: certs.ClientKeyFile}},
			"set tls.ca_file to the CA that signed it"},
		{"server name mismatch",
			keyvalue.Config{Addrs: []string{mtls.Addr()}, TLS: keyvalue.TLSConfig{Enabled: true, CAFile: certs.CAFile,
				CertFile: certs.ClientCertFile, KeyFile: certs.ClientKeyFile, ServerName: "cache.example.com"}},
			"set tls.server_name"},
		{"server certificate expired",
			keyvalue.Config{Addrs: []string{expired.Addr()}, TLS: keyvalue.TLSConfig{Enabled: true, CAFile: certs.CAFile}},
			"has expired or is not valid yet"},
		{"no TLS version in common",
			keyvalue.Config{Addrs: []string{tls12.Addr()}, TLS: keyvalue.TLSConfig{Enabled: true, CAFile: certs.CAFile, MinVersion: "1.3"}},
			"share no TLS version"},
		{"tls to a plaintext port",
			keyvalue.Config{Addrs: []string{plain.Addr()}, TLS: keyvalue.TLSConfig{Enabled: true, CAFile: certs.CAFile}},
			"does not speak TLS"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Retry.MaxAttempts = 3
			tc.cfg.DialTimeout = time.Second
			c := open(t, tc.cfg)
			err := c.Connect(ctxT(t, 10*time.Second))
			t.Logf("error a user sees: %v", err)
			var ce *keyvalue.ConnectError
			if !errors.As(err, &ce) || !errors.Is(err, keyvalue.ErrTLS) {
				t.Fatalf("err = %v, want a ConnectError matching ErrTLS", err)
			}
			if ce.Attempts != 1 {
				t.Errorf("a TLS failure was retried %d times; it cannot succeed without a config change", ce.Attempts)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

func TestPlaintextToTLSServer(t *testing.T) {
	t.Parallel()
	certs := servertest.NewCerts(t)
	s := servertest.Standalone(t, servertest.WithTLS(certs, false))
	c := open(t, keyvalue.Config{Addrs: []string{s.Addr()}, Retry: keyvalue.RetryConfig{MaxAttempts: 3}})
	err := c.Connect(ctxT(t, 10*time.Second))
	t.Logf("error a user sees: %v", err)
	if !errors.Is(err, keyvalue.ErrTLS) || !strings.Contains(err.Error(), "use rediss://") {
		t.Fatalf("err = %v; want ErrTLS suggesting rediss://", err)
	}
}

// clientCount counts connections named name on s.
func clientCount(t *testing.T, s *servertest.Server, name string) int {
	t.Helper()
	r, err := s.Do("CLIENT", "LIST")
	if err != nil {
		t.Fatalf("CLIENT LIST: %v", err)
	}
	return strings.Count(r, " name="+name+" ")
}

func TestLazyClientSharedByPassing(t *testing.T) {
	t.Parallel()
	s := servertest.Standalone(t)
	ctx := ctxT(t, 10*time.Second)

	// One client's worth: what a client opens for one command.
	ref := open(t, keyvalue.Config{Addrs: []string{s.Addr()}, ClientName: "ref"})
	if err := ref.Do(ctx, ref.B().Ping().Build()).Error(); err != nil {
		t.Fatal(err)
	}
	oneClient := clientCount(t, s, "ref")
	if oneClient == 0 {
		t.Fatal("reference client shows no connection in CLIENT LIST")
	}

	// Eleven users of one client (as eleven caches built on it are).
	c := open(t, keyvalue.Config{Addrs: []string{s.Addr()}, ClientName: "lazy"})
	users := make([]valkey.Client, 11)
	for i := range users {
		users[i] = c
	}
	if n := clientCount(t, s, "lazy"); n != 0 {
		t.Fatalf("after Open the server has %d connections; want 0", n)
	}
	if c.Connected() {
		t.Fatal("Connected() before any command")
	}
	// Concurrent first commands share one dial.
	var wg sync.WaitGroup
	errs := make(chan error, len(users)*5)
	for _, u := range users {
		for range 5 {
			wg.Go(func() { errs <- u.Do(ctx, u.B().Ping().Build()).Error() })
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := clientCount(t, s, "lazy"); n != oneClient {
		t.Fatalf("55 concurrent first commands opened %d connections; one client opens %d", n, oneClient)
	}
	t.Logf("11 users of one client: 0 connections after Open, %d after first commands (one client: %d)", oneClient, oneClient)

	c.Close()
	if err := c.Do(ctx, c.B().Ping().Build()).Error(); !errors.Is(err, keyvalue.ErrClosed) {
		t.Fatalf("closed client: err = %v, want ErrClosed", err)
	}
	servertest.WaitFor(t, 5*time.Second, "connections released", func() error {
		if n := clientCount(t, s, "lazy"); n != 0 {
			return fmt.Errorf("%d connections left", n)
		}
		return nil
	})
}

// TestOpenIsIndependent pins that Open keeps no process-wide state: two
// clients with equal configurations each use their own Logger, and closing
// one leaves the other working.
func TestOpenIsIndependent(t *testing.T) {
	t.Parallel()
	s := servertest.Standalone(t)
	ctx := ctxT(t, 10*time.Second)
	logs := [2]*countingHandler{{substr: "connect"}, {substr: "connect"}}
	var cs [2]*keyvalue.Client
	for i := range cs {
		// Port 1 first: the dial fails and is logged to this client's Logger.
		cs[i] = open(t, keyvalue.Config{Addrs: []string{"127.0.0.1:1"}, Retry: keyvalue.RetryConfig{MaxAttempts: 2, Base: time.Millisecond}, Logger: slog.New(logs[i])})
		_ = cs[i].Do(ctx, cs[i].B().Ping().Build()).Error()
	}
	for i, h := range logs {
		if h.n.Load() == 0 {
			t.Errorf("client %d: its Logger received nothing", i)
		}
	}
	a := open(t, keyvalue.Config{Addrs: []string{s.Addr()}})
	b := open(t, keyvalue.Config{Addrs: []string{s.Addr()}})
	a.Close()
	if err := b.Do(ctx, b.B().Ping().Build()).Error(); err != nil {
		t.Fatalf("closing one client broke another with an equal config: %v", err)
	}
}

func TestDifferentEndpointsDoNotShare(t *testing.T) {
	t.Parallel()
	s := servertest.Standalone(t)
	ctx := ctxT(t, 10*time.Second)
	a := open(t, keyvalue.Config{Addrs: []string{s.Addr()}, DB: 1})
	b := open(t, keyvalue.Config{Addrs: []string{s.Addr()}, DB: 2})
	if err := a.Do(ctx, a.B().Set().Key("k").Value("a").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	if err := b.Do(ctx, b.B().Get().Key("k").Build()).Error(); !valkey.IsValkeyNil(err) {
		t.Fatalf("db 2 sees db 1's key (err = %v): handles with different db must not share a client", err)
	}
}

// countingHandler counts log records whose message contains substr.
type countingHandler struct {
	substr string
	n      atomic.Int32
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, h.substr) {
		h.n.Add(1)
	}
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }

func TestDialRetriesUntilServerComesUp(t *testing.T) {
	t.Parallel()
	port := servertest.ReservePort(t)
	logs := &countingHandler{substr: "connect failed, retrying"}
	c := open(t, keyvalue.Config{Addrs: []string{"127.0.0.1:" + strconv.Itoa(port)}, Logger: slog.New(logs),
		Retry: keyvalue.RetryConfig{Base: 200 * time.Millisecond, Cap: 400 * time.Millisecond, MaxAttempts: 50}})
	done := make(chan error, 1)
	go func() { done <- c.Do(ctxT(t, 30*time.Second), c.B().Ping().Build()).Error() }()
	servertest.WaitFor(t, 10*time.Second, "two failed dials", func() error {
		if n := logs.n.Load(); n < 2 {
			return fmt.Errorf("%d failed dials so far", n)
		}
		return nil
	})
	servertest.Start(t, servertest.WithPort(port))
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("command after the server came up: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("command did not complete after the server came up")
	}
	t.Logf("reached the server after %d failed dials", logs.n.Load())
}

func TestDialBoundedByContextAndAttempts(t *testing.T) {
	t.Parallel()
	port := servertest.ReservePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)

	t.Run("attempts", func(t *testing.T) {
		c := open(t, keyvalue.Config{Addrs: []string{addr}, Retry: keyvalue.RetryConfig{Base: time.Millisecond, MaxAttempts: 3}})
		err := c.Connect(ctxT(t, 10*time.Second))
		t.Logf("error a user sees: %v", err)
		var ce *keyvalue.ConnectError
		if !errors.As(err, &ce) || !errors.Is(err, keyvalue.ErrUnreachable) || ce.Attempts != 3 {
			t.Fatalf("err = %v; want ErrUnreachable after 3 attempts", err)
		}
		if !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), "is the server running") {
			t.Errorf("error does not explain the refusal: %v", err)
		}
	})
	t.Run("context", func(t *testing.T) {
		c := open(t, keyvalue.Config{Addrs: []string{addr}, DB: 3,
			Retry: keyvalue.RetryConfig{Base: 50 * time.Millisecond, Cap: 100 * time.Millisecond, MaxAttempts: 1000}})
		start := time.Now()
		err := c.Connect(ctxT(t, 300*time.Millisecond))
		took := time.Since(start)
		t.Logf("error a user sees: %v", err)
		if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, keyvalue.ErrUnreachable) {
			t.Fatalf("err = %v; want DeadlineExceeded wrapping the last ErrUnreachable", err)
		}
		if took > 3*time.Second {
			t.Fatalf("Connect took %s with a 300ms context", took)
		}
	})
}

func TestAuthFailure(t *testing.T) {
	t.Parallel()
	s := servertest.Standalone(t, servertest.WithArgs("--requirepass", "right"))
	roundTrip(t, open(t, keyvalue.Config{Addrs: []string{s.Addr()}, Password: "right"}))
	for _, cfg := range []keyvalue.Config{
		{Addrs: []string{s.Addr()}, Password: "wrong"},
		{Addrs: []string{s.Addr()}, Username: "nobody", Password: "right"},
	} {
		c := open(t, cfg)
		err := c.Connect(ctxT(t, 10*time.Second))
		t.Logf("error a user sees: %v", err)
		var ce *keyvalue.ConnectError
		if !errors.As(err, &ce) || !errors.Is(err, keyvalue.ErrAuth) || ce.Attempts != 1 {
			t.Fatalf("err = %v; want ErrAuth on the first attempt", err)
		}
		if strings.Contains(err.Error(), "wrong") || strings.Contains(err.Error(), "right") {
			t.Errorf("error leaks the password: %v", err)
		}
	}
}

func TestServerWithoutClientTracking(t *testing.T) {
	t.Parallel()
	// An ACL user that may not run CLIENT TRACKING stands in for managed
	// services and proxies that do not offer it.
	s := servertest.Standalone(t)
	if _, err := s.Do("ACL", "SETUSER", "app", "on", ">pw", "~*", "&*", "+@all", "-client|tracking"); err != nil {
		t.Fatal(err)
	}
	logs := &countingHandler{substr: "client-side caching"}
	c := open(t, keyvalue.Config{Addrs: []string{s.Addr()}, Username: "app", Password: "pw", Logger: slog.New(logs)})
	if !c.ClientSideCaching() {
		t.Fatal("ClientSideCaching() false before connecting, with caching configured")
	}
	roundTrip(t, c)
	if c.ClientSideCaching() {
		t.Error("ClientSideCaching() still true after the server refused CLIENT TRACKING")
	}
	if logs.n.Load() != 1 {
		t.Errorf("fallback logged %d times, want once", logs.n.Load())
	}
	ctx := ctxT(t, 5*time.Second)
	if err := c.DoCache(ctx, c.B().Get().Key("x").Cache(), time.Minute).Error(); !valkey.IsValkeyNil(err) {
		t.Errorf("DoCache without tracking: %v", err)
	}
}

func TestSentinelUnknownMaster(t *testing.T) {
	t.Parallel()
	set := servertest.Sentinel(t)
	c := open(t, keyvalue.Config{Mode: keyvalue.ModeSentinel, Addrs: set.SentinelAddrs(),
		Sentinel: keyvalue.SentinelConfig{Master: "no-such-master"}, Retry: keyvalue.RetryConfig{MaxAttempts: 2, Base: time.Millisecond}})
	err := c.Connect(ctxT(t, 20*time.Second))
	t.Logf("error a user sees: %v", err)
	if !errors.Is(err, keyvalue.ErrUnknownMaster) || !strings.Contains(err.Error(), `"no-such-master"`) {
		t.Fatalf("err = %v; want ErrUnknownMaster naming the master", err)
	}
}

func TestSentinelFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("failover takes several seconds")
	}
	t.Parallel()
	set := servertest.Sentinel(t)
	c := open(t, keyvalue.Config{Mode: keyvalue.ModeSentinel, Addrs: set.SentinelAddrs(),
		Sentinel: keyvalue.SentinelConfig{Master: set.Master, RefreshInterval: time.Second}, IOTimeout: 2 * time.Second})
	roundTrip(t, c)
	before, err := set.MasterAddr()
	if err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	newAddr, promotion := set.KillPrimary(t)
	if newAddr == before {
		t.Fatal("master did not change")
	}
	// Write until a write succeeds on the new primary, bounded in time.
	deadline := time.Now().Add(30 * time.Second)
	var lastErr error
	for i := 0; time.Now().Before(deadline); i++ {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		lastErr = c.Do(ctx, c.B().Set().Key("after-failover").Value(strconv.Itoa(i)).Build()).Error()
		cancel()
		if lastErr == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if lastErr != nil {
		t.Fatalf("no successful write within 30s of the failover: %v", lastErr)
	}
	recovered := time.Since(killed)
	role, err := servertestRole(set, newAddr)
	if err != nil || role != "master" {
		t.Fatalf("new primary %s role = %q, %v", newAddr, role, err)
	}
	t.Logf("failover: sentinels promoted %s after %s; writes succeeded again %s after the kill (no reopen)",
		newAddr, promotion.Round(time.Millisecond), recovered.Round(time.Millisecond))
}

func servertestRole(set *servertest.SentinelSet, addr string) (string, error) {
	for _, s := range []*servertest.Server{set.Primary, set.Replica} {
		if s.Addr() == addr {
			r, err := s.Do("ROLE")
			if err != nil {
				return "", err
			}
			role, _, _ := strings.Cut(r, "\n")
			return role, nil
		}
	}
	return "", fmt.Errorf("%s is not in the set", addr)
}

func TestReadFromReplicas(t *testing.T) {
	t.Parallel()
	set := servertest.Sentinel(t)
	c := open(t, keyvalue.Config{Mode: keyvalue.ModeSentinel, Addrs: set.SentinelAddrs(), ReadFromReplicas: true,
		Sentinel: keyvalue.SentinelConfig{Master: set.Master}})
	ctx := ctxT(t, 10*time.Second)
	if err := c.Do(ctx, c.B().Set().Key("r").Value("1").Build()).Error(); err != nil {
		t.Fatalf("write with ReadFromReplicas: %v", err)
	}
	if _, err := set.Replica.Do("CONFIG", "RESETSTAT"); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if err := c.Do(ctx, c.B().Get().Key("r").Build()).Error(); err != nil && !valkey.IsValkeyNil(err) {
			t.Fatal(err)
		}
	}
	stats, err := set.Replica.Do("INFO", "commandstats")
	if err != nil || !strings.Contains(stats, "cmdstat_get:calls=20") {
		t.Errorf("the replica did not serve the 20 GETs:\n%s", stats)
	}
}

// TestSentinelWithTLS: sentinels and data nodes both speak TLS, configured
// separately; a client that forgets the sentinels' TLS gets a clear error.
func TestSentinelWithTLS(t *testing.T) {
	t.Parallel()
	certs := servertest.NewCerts(t)
	set := servertest.SentinelTLS(t, certs)
	tlsCfg := keyvalue.TLSConfig{Enabled: true, CAFile: certs.CAFile}
	c := open(t, keyvalue.Config{Mode: keyvalue.ModeSentinel, Addrs: set.SentinelAddrs(), TLS: tlsCfg,
		Sentinel: keyvalue.SentinelConfig{Master: set.Master, TLS: tlsCfg}})
	roundTrip(t, c)

	plainSentinels := open(t, keyvalue.Config{Mode: keyvalue.ModeSentinel, Addrs: set.SentinelAddrs(), TLS: tlsCfg, DialTimeout: time.Second,
		Sentinel: keyvalue.SentinelConfig{Master: set.Master}, Retry: keyvalue.RetryConfig{MaxAttempts: 1}})
	err := plainSentinels.Connect(ctxT(t, 20*time.Second))
	t.Logf("error a user sees: %v", err)
	if err == nil || !strings.Contains(err.Error(), "set sentinel.tls.enabled") {
		t.Fatalf("TLS sentinels without sentinel.tls: err = %v; want a hint about sentinel.tls", err)
	}
}
