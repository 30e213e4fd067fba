package keyvalue_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/servertest"
)

// TestServerVersionChecked: the first command on a server older than the
// minimum fails with a *ConnectError matching ErrServerVersion that names
// the server's version and the minimum, at once (not retried); a
// supported server (the Redis 7.0 or Valkey 8 this machine runs) works.
// No older server can run here, so the test raises the minimum above the
// running server's version.
func TestServerVersionChecked(t *testing.T) {
	t.Parallel()
	s := servertest.Standalone(t)
	roundTrip(t, open(t, keyvalue.Config{Addrs: []string{s.Addr()}}))

	c := open(t, keyvalue.Config{Addrs: []string{s.Addr()}})
	keyvalue.RequireServerVersions(c, "99.0", "99.1")
	err := c.Do(ctxT(t, 0), c.B().Ping().Build()).Error()
	t.Logf("too old: %v", err)
	var ce *keyvalue.ConnectError
	if !errors.As(err, &ce) || !errors.Is(err, keyvalue.ErrServerVersion) || ce.Attempts != 1 {
		t.Fatalf("err = %v, want a *ConnectError matching ErrServerVersion after one attempt", err)
	}
	for _, want := range []string{"server version not supported: ", "; keyvalue needs Redis 99.0 or later, or Valkey 99.1 or later", "upgrade the server"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q", want)
		}
	}
	if !strings.Contains(err.Error(), "Redis 7.") && !strings.Contains(err.Error(), "Valkey ") {
		t.Errorf("error does not name the server's version: %v", err)
	}
}
