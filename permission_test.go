package keyvalue_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/servertest"
	"github.com/valkey-io/valkey-go"
)

// TestPermissionError: a command the ACL user may not run, or a key it may
// not touch, fails with a *PermissionError that names the command, the
// key, what the user lacks and the fix; so does a command a script calls.
// It matches ErrNoPermission, still unwraps to the server's reply, and is
// not retried.
func TestPermissionError(t *testing.T) {
	t.Parallel()
	s := servertest.Standalone(t)
	mustDo(t, s, "ACL", "SETUSER", "app", "on", ">pw", "~kv:{c:pages}:*", "+@all", "-zadd")
	c := open(t, keyvalue.Config{Addrs: []string{s.Addr()}, Username: "app", Password: "pw"})
	ctx := ctxT(t, 10*time.Second)

	check := func(what string, err error, want ...string) *keyvalue.PermissionError {
		t.Helper()
		t.Logf("%s: %v", what, err)
		var pe *keyvalue.PermissionError
		if !errors.Is(err, keyvalue.ErrNoPermission) || !errors.As(err, &pe) {
			t.Fatalf("%s = %v; want a *PermissionError matching ErrNoPermission", what, err)
		}
		var reply *valkey.ValkeyError
		if !errors.As(err, &reply) {
			t.Errorf("%s does not unwrap to the server's reply", what)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: the message lacks %q", what, w)
			}
		}
		return pe
	}
	// A command the user lacks.
	err := c.Do(ctx, c.B().Zadd().Key("kv:{c:pages}:i:t").ScoreMember().ScoreMember(1, "x").Build()).Error()
	pe := check("ZADD", err, `ZADD on kv:{c:pages}:i:t to ACL user "app"`, "lacks +zadd", "keyvalue acl --cache pages")
	if pe.Rule != "+zadd" || pe.Key != "kv:{c:pages}:i:t" || pe.User != "app" {
		t.Errorf("PermissionError = %+v", pe)
	}
	// A key outside the user's patterns.
	err = c.Do(ctx, c.B().Get().Key("kv:{s:fe}:abc").Build()).Error()
	pe = check("GET of another component's key", err, "GET on kv:{s:fe}:abc", "lacks ~kv:{s:fe}:*", "keyvalue acl --sessions fe")
	if pe.Rule != "~kv:{s:fe}:*" {
		t.Errorf("Rule = %q", pe.Rule)
	}
	// A command a script calls, in a pipeline.
	rs := c.DoMulti(ctx,
		c.B().Set().Key("kv:{c:pages}:v:a").Value("1").Build(),
		c.B().Eval().Script("return redis.call('zadd', KEYS[1], 1, 'x')").Numkeys(1).Key("kv:{c:pages}:i:t").Build(),
	)
	if err := rs[0].Error(); err != nil {
		t.Errorf("the allowed command of the pipeline: %v", err)
	}
	check("a script's ZADD", rs[1].Error(), "EVAL", "on kv:{c:pages}:i:t")
	// Never retried: two refused ZADDs (the command, the script's), as the
	// server counts them.
	stats, err := s.Do("INFO", "commandstats")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(stats, "\n") {
		if strings.HasPrefix(line, "cmdstat_zadd:") && !strings.Contains(line, "rejected_calls=2,") {
			t.Errorf("ZADD was sent more than once: %s", line)
		}
	}
}

// TestPermissionRefusedAtConnect: a user that may not run what every
// connection needs fails to connect at once (not after retries), with a
// hint that names the command and the fix.
func TestPermissionRefusedAtConnect(t *testing.T) {
	t.Parallel()
	cl := servertest.Cluster(t, 3)
	for _, n := range cl.Nodes {
		mustDo(t, n, "ACL", "SETUSER", "app", "on", ">pw", "~*", "+@all", "-cluster|slots", "-cluster|shards")
	}
	c := open(t, keyvalue.Config{Addrs: cl.Addrs(), Username: "app", Password: "pw", Mode: keyvalue.ModeCluster})
	start := time.Now()
	err := c.Connect(ctxT(t, 30*time.Second))
	t.Logf("connect after %s: %v", time.Since(start).Round(time.Millisecond), err)
	var ce *keyvalue.ConnectError
	if !errors.As(err, &ce) || !errors.Is(err, keyvalue.ErrRejected) || ce.Attempts != 1 ||
		// valkey-go asks Valkey 8 for CLUSTER SHARDS, Redis 7.0 for CLUSTER SLOTS.
		!(strings.Contains(err.Error(), "may not run CLUSTER SLOTS") || strings.Contains(err.Error(), "may not run CLUSTER SHARDS")) ||
		!strings.Contains(err.Error(), "keyvalue acl") {
		t.Errorf("connect = %v; want ErrRejected after one attempt, naming CLUSTER SLOTS (or SHARDS) and keyvalue acl", err)
	}
}
