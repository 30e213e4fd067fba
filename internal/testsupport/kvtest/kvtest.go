// Package kvtest holds the small helpers every package's tests need on top
// of servertest: a quiet client that is closed with the test, a bounded
// context, and a server for runnable examples.
package kvtest

import (
	"context"
	"log"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/internal/localserver"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/servertest"
)

// Quiet discards log output.
var Quiet = slog.New(slog.DiscardHandler)

// Open opens cfg (with a quiet logger unless one is set) and closes the
// handle when the test ends. Under make test-acl (servertest.ACLEnv) a
// configuration without credentials connects as the least-privilege user.
func Open(t testing.TB, cfg keyvalue.Config) *keyvalue.Client {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = Quiet
	}
	if servertest.ACLRules() != "" && cfg.Username == "" && cfg.Password == "" && cfg.PasswordFile == "" && cfg.Credentials == nil {
		cfg.Username, cfg.Password = servertest.ACLUser, servertest.ACLPassword
	}
	c, err := keyvalue.Open(cfg)
	if err != nil {
		t.Fatalf("keyvalue.Open: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// Admin opens a client of c's servers as the default user, for a test's
// own inspection and set-up (DBSIZE, KEYS, SCRIPT FLUSH, foreign keys):
// under make test-acl, c is the least-privilege user, which may do only
// what keyvalue needs. It is closed when the test ends.
func Admin(t testing.TB, c *keyvalue.Client) *keyvalue.Client {
	t.Helper()
	cfg := c.Config()
	if cfg.Username == servertest.ACLUser {
		cfg.Username, cfg.Password = "", ""
	}
	cfg.Logger = Quiet
	a, err := keyvalue.Open(cfg)
	if err != nil {
		t.Fatalf("keyvalue.Open: %v", err)
	}
	t.Cleanup(a.Close)
	return a
}

// Ctx is the test's context bounded to d (30s if d is 0).
func Ctx(t testing.TB, d time.Duration) context.Context {
	if d == 0 {
		d = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// RunWithExampleServer is a TestMain for packages with runnable examples:
// the examples read their server from KEYVALUE_URL with the public API (as
// users' programs do), and this starts a throwaway server for them, points
// KEYVALUE_URL at it, runs the tests and stops it.
func RunWithExampleServer(m *testing.M) {
	dir, err := os.MkdirTemp("", "keyvalue-example-")
	if err != nil {
		log.Fatal(err)
	}
	s, err := localserver.Start(localserver.Options{Dir: dir, Name: "example", Args: servertest.UserArgs()})
	if err != nil {
		os.RemoveAll(dir)
		log.Fatal(err)
	}
	url := "redis://" + s.Addr()
	if servertest.ACLRules() != "" {
		url = "redis://" + servertest.ACLUser + ":" + servertest.ACLPassword + "@" + s.Addr()
	}
	os.Setenv("KEYVALUE_URL", url)
	code := m.Run()
	s.Stop()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Output collects what a logger or a command running in another
// goroutine writes, for a test to read while it runs.
type Output struct {
	mu sync.Mutex
	b  strings.Builder
}

// Write appends p.
func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

// String returns everything written so far.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// Logger is a text logger writing to o.
func (o *Output) Logger() *slog.Logger { return slog.New(slog.NewTextHandler(o, nil)) }
