// Package keyvaluetest starts throwaway Redis or Valkey servers for the
// tests of code that uses keyvalue: a real server per test, on a free
// 127.0.0.1 port, without persistence, stopped when the test ends. Test
// against a real server rather than a mock: the cache's scripts, the
// session store's indexes and the lock's queues are server behaviour.
//
//	func TestCheckout(t *testing.T) {
//		client := keyvaluetest.Start(t).Client(t)
//		carts, err := cache.New(client, "carts", cache.Options{})
//		...
//	}
//
// The server is valkey-server, or else redis-server, found on PATH
// (Debian: apt-get install redis-server); KV_SERVER_BIN names
// another binary. When there is none, the test is skipped with one line
// saying what to install; with KEYVALUETEST_REQUIRE_SERVER=1 (for CI,
// where a skipped test would hide a broken set-up) it fails instead.
//
// This package is for tests: it starts processes and belongs in _test.go
// files, never in a program's own code path.
package keyvaluetest

import (
	"errors"
	"os"
	"testing"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/internal/localserver"
)

// RequireEnv names the environment variable that turns a missing server
// binary from a skip into a failure ("1").
const RequireEnv = "KEYVALUETEST_REQUIRE_SERVER"

// Server is a server started for one test.
type Server struct {
	s *localserver.Server
}

// Start starts a server for tb and stops it when tb ends; a failing test
// logs the tail of the server's log. Without a server binary it skips tb
// (see the package doc).
func Start(tb testing.TB) *Server {
	tb.Helper()
	s, err := localserver.Start(localserver.Options{Dir: tb.TempDir(), Name: "keyvaluetest"})
	if errors.Is(err, localserver.ErrMissingBinary) {
		missing := "no valkey-server or redis-server on PATH (Debian: apt-get install redis-server)"
		if bin := os.Getenv("KV_SERVER_BIN"); bin != "" {
			missing = "KV_SERVER_BIN=" + bin + " does not exist"
		}
		if os.Getenv(RequireEnv) == "1" {
			tb.Fatalf("keyvaluetest: %s, and %s=1 requires a server", missing, RequireEnv)
		}
		tb.Skipf("keyvaluetest: skipped: %s", missing)
	}
	if err != nil {
		tb.Fatalf("keyvaluetest: start a server: %v", err)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("keyvaluetest: log tail of the server at %s:\n%s", s.Addr(), s.LogTail(30))
		}
		s.Stop()
	})
	return &Server{s: s}
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.s.Addr() }

// URL is the server's address as a keyvalue URL (redis://127.0.0.1:PORT),
// for keyvalue.OpenURL or a KEYVALUE_URL variable.
func (s *Server) URL() string { return "redis://" + s.s.Addr() }

// Config is the configuration of a client of this server, to adjust
// before keyvalue.Open.
func (s *Server) Config() keyvalue.Config {
	return keyvalue.Config{Addrs: []string{s.s.Addr()}}
}

// Client opens a client of the server and closes it when tb ends.
func (s *Server) Client(tb testing.TB) *keyvalue.Client {
	tb.Helper()
	return Open(tb, s.Config())
}

// Open opens a client with cfg (another server's, or one adjusted from
// Server.Config) and closes it when tb ends.
func Open(tb testing.TB, cfg keyvalue.Config) *keyvalue.Client {
	tb.Helper()
	c, err := keyvalue.Open(cfg)
	if err != nil {
		tb.Fatalf("keyvaluetest: open a client: %v", err)
	}
	tb.Cleanup(c.Close)
	return c
}

// Stop stops the server now, for a test of what happens when it goes away.
func (s *Server) Stop() { s.s.Stop() }

// Restart starts a stopped server again on the same address, empty.
func (s *Server) Restart() error { return s.s.Restart() }
