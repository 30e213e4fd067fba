package cli

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/kvtest"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/servertest"
	"github.com/keyvalue-go/keyvalue/lock"
)

func TestLockCommands(t *testing.T) {
	t.Parallel()
	s := servertest.Standalone(t)
	c := kvtest.Open(t, keyvalue.Config{Addrs: []string{s.Addr()}})
	l := lock.New(c, lock.Options{TTL: time.Minute})
	m, _ := l.Mutex("nightly-import")
	lease, err := m.Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	url := "--url=redis://" + s.Addr()

	out, err := run(t, "lock", "list", url)
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, out, "nightly-import", "exclusive")
	out, err = run(t, "lock", "show", "nightly-import", url)
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, out, "state           exclusive", "fence           1", "waiting         0 writers, 0 readers")

	if _, err := run(t, "lock", "release", "nightly-import", url); err == nil || !strings.Contains(err.Error(), "add --force") {
		t.Errorf("release without --force: %v", err)
	}
	if out, err := runIn(t, "n\n", "lock", "release", "nightly-import", "--force", url); err == nil || !strings.Contains(out, "Release it? [y/N]") {
		t.Errorf("release answered no: %v", err)
	}
	if err := lease.Refresh(context.Background()); err != nil {
		t.Fatalf("lock released although the operator said no: %v", err)
	}
	out, err = runIn(t, "y\n", "lock", "release", "nightly-import", "--force", url)
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, out, "lock nightly-import released")
	if err := lease.Refresh(context.Background()); err == nil {
		t.Error("holder still holds the lock after release --force")
	}
	out, _ = run(t, "lock", "release", "nightly-import", "--force", "--yes", url)
	wantLines(t, out, "lock nightly-import is not held")
}
