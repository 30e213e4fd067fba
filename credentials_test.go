package keyvalue_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/kvtest"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/servertest"
)

// must runs a server command as the admin and fails the test on an error.
func mustDo(t *testing.T, s *servertest.Server, args ...string) {
	t.Helper()
	if _, err := s.Do(args...); err != nil {
		t.Fatalf("%s: %v", strings.Join(args, " "), err)
	}
}

// eventually runs a command through c until it succeeds (the first one
// after connections were killed may meet a dead connection) for up to 5s.
func eventually(t *testing.T, c *keyvalue.Client, what string) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err = c.Do(ctx, c.B().Set().Key("rotated").Value(what).Build()).Error()
		cancel()
		if err == nil {
			return
		}
	}
	t.Fatalf("%s: no command succeeded within 5s: %v", what, err)
}

// refused reports whether a new client with these credentials is refused.
func refused(t *testing.T, addr, user, password string) error {
	t.Helper()
	c, err := keyvalue.Open(keyvalue.Config{Addrs: []string{addr}, Username: user, Password: password, Logger: quiet,
		Retry: keyvalue.RetryConfig{MaxAttempts: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.Do(ctx, c.B().Ping().Build()).Error()
}

var quiet = kvtest.Quiet

// TestPasswordFileRotation: the password file is read for every new
// connection: after the server's password and the file change and the
// connections are killed, the same client works with the new password,
// without a restart; the old password is refused.
func TestPasswordFileRotation(t *testing.T) {
	t.Parallel()
	s := servertest.Standalone(t)
	mustDo(t, s, "ACL", "SETUSER", "app", "on", ">first-secret", "~*", "+@all")
	file := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(file, []byte("first-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := open(t, keyvalue.Config{Addrs: []string{s.Addr()}, Username: "app", PasswordFile: file})
	eventually(t, c, "before the rotation")

	// Rotate: the server first, then the file (as a secret manager does).
	mustDo(t, s, "ACL", "SETUSER", "app", "resetpass", ">second-secret")
	if err := os.WriteFile(file+".new", []byte("second-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(file+".new", file); err != nil {
		t.Fatal(err)
	}
	mustDo(t, s, "CLIENT", "KILL", "USER", "app")
	eventually(t, c, "after the rotation")
	err := refused(t, s.Addr(), "app", "first-secret")
	t.Logf("the old password: %v", err)
	if err == nil {
		t.Error("the old password is still accepted")
	}
}

// TestCredentialsProvider: the provider is asked for every new connection
// (a rotated password is used without a restart), and again at the
// credentials' ReauthAt, on the open connection.
func TestCredentialsProvider(t *testing.T) {
	t.Parallel()
	s := servertest.Standalone(t)
	mustDo(t, s, "ACL", "SETUSER", "svc", "on", ">token-1", "~*", "+@all")
	var current atomic.Value
	current.Store("token-1")
	var calls atomic.Int32
	var reauth atomic.Bool
	c := open(t, keyvalue.Config{Addrs: []string{s.Addr()}, Credentials: func(ctx context.Context) (keyvalue.Credentials, error) {
		calls.Add(1)
		if _, ok := ctx.Deadline(); !ok {
			return keyvalue.Credentials{}, errors.New("the provider's context has no deadline")
		}
		cr := keyvalue.Credentials{Username: "svc", Password: current.Load().(string)}
		if reauth.Load() {
			cr.ReauthAt = time.Now().Add(100 * time.Millisecond)
		}
		return cr, nil
	}})
	eventually(t, c, "first token")
	first := calls.Load()
	if first == 0 {
		t.Fatal("the provider was not called")
	}

	// A new token for new connections.
	mustDo(t, s, "ACL", "SETUSER", "svc", "resetpass", ">token-2")
	current.Store("token-2")
	mustDo(t, s, "CLIENT", "KILL", "USER", "svc")
	eventually(t, c, "second token")
	if calls.Load() <= first {
		t.Errorf("the provider was not called for the new connections (%d calls)", calls.Load())
	}

	// Short-lived tokens: re-authentication on the open connections.
	reauth.Store(true)
	mustDo(t, s, "CLIENT", "KILL", "USER", "svc")
	eventually(t, c, "token with an expiry")
	before := calls.Load()
	time.Sleep(400 * time.Millisecond)
	if calls.Load() <= before {
		t.Errorf("no re-authentication at ReauthAt: %d calls before, %d after", before, calls.Load())
	}
	eventually(t, c, "after re-authentication")
}

// TestCredentialsExclusive: a provider and fixed credentials are one or
// the other, with an error that says so.
func TestCredentialsExclusive(t *testing.T) {
	t.Parallel()
	provider := func(context.Context) (keyvalue.Credentials, error) { return keyvalue.Credentials{}, nil }
	_, err := keyvalue.Open(keyvalue.Config{Password: "x", Credentials: provider})
	t.Logf("password and provider: %v", err)
	if !errors.Is(err, keyvalue.ErrInvalidConfig) || !strings.Contains(err.Error(), "credentials provider") {
		t.Errorf("Open with a password and a provider = %v", err)
	}
	_, err = keyvalue.Open(keyvalue.Config{PasswordFile: filepath.Join(t.TempDir(), "missing")})
	t.Logf("a missing password file: %v", err)
	if !errors.Is(err, keyvalue.ErrInvalidConfig) || !strings.Contains(err.Error(), "password_file") {
		t.Errorf("Open with a missing password file = %v", err)
	}
}

// TestSentinelCredentials: the data nodes and the sentinels each get their
// own credentials: the data provider's user does not exist on the
// sentinels, the sentinels' password does not exist on the data nodes.
func TestSentinelCredentials(t *testing.T) {
	t.Parallel()
	set := servertest.Sentinel(t)
	for _, n := range []*servertest.Server{set.Primary, set.Replica} {
		mustDo(t, n, "ACL", "SETUSER", "app", "on", ">data-secret", "~*", "+@all")
	}
	addrs := set.SentinelAddrs()
	for _, sn := range set.Sentinels {
		mustDo(t, sn, "ACL", "SETUSER", "watcher", "on", ">sentinel-secret", "+@all")
	}
	var dataCalls, sentinelCalls atomic.Int32
	c := open(t, keyvalue.Config{Mode: keyvalue.ModeSentinel, Addrs: addrs,
		Credentials: func(context.Context) (keyvalue.Credentials, error) {
			dataCalls.Add(1)
			return keyvalue.Credentials{Username: "app", Password: "data-secret"}, nil
		},
		Sentinel: keyvalue.SentinelConfig{Master: set.Master, Credentials: func(context.Context) (keyvalue.Credentials, error) {
			sentinelCalls.Add(1)
			return keyvalue.Credentials{Username: "watcher", Password: "sentinel-secret"}, nil
		}}})
	eventually(t, c, "through the sentinels")
	t.Logf("provider calls: data %d, sentinels %d", dataCalls.Load(), sentinelCalls.Load())
	if dataCalls.Load() == 0 || sentinelCalls.Load() == 0 {
		t.Errorf("provider calls: data %d, sentinels %d; want both", dataCalls.Load(), sentinelCalls.Load())
	}
}

// TestTLSFilesReloaded: the client certificate, its key and the CA are
// read again when they change: after the server moves to a new CA and
// the client's files are replaced, new connections use them, without a
// restart; files replaced half-way (a new certificate, the old key) keep
// the previous pair in use and are logged once.
func TestTLSFilesReloaded(t *testing.T) {
	t.Parallel()
	old, fresh := servertest.NewCerts(t), servertest.NewCerts(t)
	s := servertest.Standalone(t, servertest.WithTLS(old, true))
	dir := t.TempDir()
	files := map[string]string{"ca": filepath.Join(dir, "ca.pem"), "cert": filepath.Join(dir, "client.pem"), "key": filepath.Join(dir, "client.key")}
	install := func(what, from string) {
		t.Helper()
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		tmp := files[what] + ".new"
		if err := os.WriteFile(tmp, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, files[what]); err != nil {
			t.Fatal(err)
		}
	}
	install("ca", old.CAFile)
	install("cert", old.ClientCertFile)
	install("key", old.ClientKeyFile)
	logs := &lines{}
	c := open(t, keyvalue.Config{Addrs: []string{s.Addr()}, Logger: logs.logger(), TLS: keyvalue.TLSConfig{Enabled: true,
		CAFile: files["ca"], CertFile: files["cert"], KeyFile: files["key"]}})
	eventually(t, c, "the first certificates")

	// Half-way: the new client certificate without its key.
	install("cert", fresh.ClientCertFile)
	mustDo(t, s, "CLIENT", "KILL", "TYPE", "normal")
	eventually(t, c, "half-way through the rotation (the old pair)")
	eventually(t, c, "half-way, again")
	if n := logs.count("cannot be loaded"); n != 1 {
		t.Errorf("the half-written files were logged %d times; want once:\n%s", n, logs)
	}

	// The server moves to the new CA and certificate; the client's files follow.
	mustDo(t, s, "CONFIG", "SET", "tls-cert-file", fresh.ServerCertFile, "tls-key-file", fresh.ServerKeyFile, "tls-ca-cert-file", fresh.CAFile)
	install("key", fresh.ClientKeyFile)
	install("ca", fresh.CAFile)
	// The test's admin connection trusts the old CA: kill through a client
	// with the new certificates (not the client under test).
	admin := open(t, keyvalue.Config{Addrs: []string{s.Addr()}, TLS: keyvalue.TLSConfig{Enabled: true,
		CAFile: fresh.CAFile, CertFile: fresh.ClientCertFile, KeyFile: fresh.ClientKeyFile}})
	if err := admin.Do(ctxT(t, 5*time.Second), admin.B().ClientKill().TypeNormal().Build()).Error(); err != nil {
		t.Fatal(err)
	}
	eventually(t, c, "after the rotation")
	if logs.count("TLS files reloaded") == 0 {
		t.Errorf("no reload logged:\n%s", logs)
	}
}

// lines is a logger that keeps its lines.
type lines struct{ kvtest.Output }

func (l *lines) count(s string) int { return strings.Count(l.String(), s) }

func (l *lines) logger() *slog.Logger { return l.Logger() }
