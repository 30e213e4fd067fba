package cli

import (
	"strings"
	"testing"

	"github.com/keyvalue-go/keyvalue/internal/testsupport/servertest"
)

// TestACLLine: keyvalue acl prints one ACL SETUSER line for the named
// components (and the caches a configuration file declares); a user made
// with it can use them (doctor's ACL check passes), and without a component
// named it says what to name.
func TestACLLine(t *testing.T) {
	out, err := run(t, "acl", "--user", "app", "--cache", "pages", "--sessions", "fe", "--locks")
	if err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSpace(out)
	wantLines(t, line, "ACL SETUSER app on resetkeys resetchannels -@all", "~kv:{c:pages}:*", "~kv:{s:fe}:*", "~kv:{l:*", "+evalsha", "+blpop", "+client|tracking")
	if strings.Count(line, "\n") != 0 || strings.Count(line, "+zadd") != 1 {
		t.Errorf("want one line with each rule once: %q", line)
	}
	cfg := writeFile(t, "addrs: [\"127.0.0.1:6379\"]\ncaches:\n  pages: {}\n  big: {sharded: true}\n")
	out, err = run(t, "acl", "--user", "app", "--config", cfg)
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, out, "~kv:{c:pages}:*", "~kv:c:big:*")
	_, err = run(t, "acl", "--user", "app")
	if err == nil || !strings.Contains(err.Error(), "--cache NAME") {
		t.Errorf("acl without components = %v", err)
	}

	// The printed line works: a server user made with it passes doctor's check.
	s := servertest.Standalone(t)
	out, _ = run(t, "acl", "--user", "app", "--cache", "pages", "--sessions", "fe", "--locks")
	args := append([]string{"ACL"}, strings.Fields(strings.TrimSpace(out))[1:]...)
	args = append(args, ">app-secret")
	if _, err := s.Do(args...); err != nil {
		t.Fatalf("%s: %v", strings.Join(args, " "), err)
	}
	out, err = run(t, "doctor", "--url", "redis://"+s.Addr(), "--pings", "2", "--acl-user", "app", "--cache", "pages", "--sessions", "fe", "--locks")
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, out, `acl             user "app" may run all`)
}

// TestDoctorFindsMissingPermission: doctor, connected as an admin, checks
// another user with ACL DRYRUN and names what it lacks; connected as a user
// that may not run ACL DRYRUN, it says it could not check, and why.
func TestDoctorFindsMissingPermission(t *testing.T) {
	s := servertest.Standalone(t)
	out, _ := run(t, "acl", "--user", "app", "--cache", "pages")
	args := append([]string{"ACL"}, strings.Fields(strings.TrimSpace(out))[1:]...)
	args = append(args, ">app-secret", "-zadd", "~other:*")
	if _, err := s.Do(args...); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Do("ACL", "SETUSER", "app", "resetkeys", "~other:*"); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "doctor", "--url", "redis://"+s.Addr(), "--pings", "2", "--acl-user", "app", "--cache", "pages")
	if err == nil {
		t.Error("doctor passed a user without ZADD")
	}
	wantLines(t, out, `acl             FAILED: user "app" lacks 2 rules`, "~kv:{c:pages}:* (", "commands of cache pages, e.g. GET kv:{c:pages}:v:x)",
		"+zadd (cache pages: ZADD kv:{c:pages}:i:t 1 x)", "keyvalue acl prints for the same components")

	out, err = run(t, "doctor", "--url", "redis://app:app-secret@"+s.Addr(), "--pings", "2", "--cache", "pages")
	if err != nil {
		t.Fatal(err) // not checkable is not a failure of the deployment
	}
	wantLines(t, out, "acl             NOT CHECKED", "may not run ACL DRYRUN", "--acl-user app")
}
