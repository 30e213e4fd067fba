package lock_test

import (
	"errors"
	"testing"
	"time"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/kvtest"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/servertest"
	"github.com/keyvalue-go/keyvalue/lock"
)

// TestWaitRefusedByACL: a waiter whose user may not block (no BLPOP)
// fails at once with an error matching keyvalue.ErrNoPermission, instead
// of retrying its wait until its context ends.
func TestWaitRefusedByACL(t *testing.T) {
	t.Parallel()
	s := servertest.Standalone(t)
	if _, err := s.Do("ACL", "SETUSER", "app", "on", ">pw", "~*", "+@all", "-blpop"); err != nil {
		t.Fatal(err)
	}
	holder, err := mutex(t, lock.New(connect(t, s, "holder"), lock.Options{TTL: 10 * time.Second, Logger: quiet}), "acl").Lock(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Unlock(ctx(t))
	c := kvtest.Open(t, keyvalue.Config{Addrs: []string{s.Addr()}, Username: "app", Password: "pw"})
	waiter := mutex(t, lock.New(c, lock.Options{TTL: 10 * time.Second, Logger: quiet}), "acl")
	start := time.Now()
	_, err = waiter.Lock(kvtest.Ctx(t, 10*time.Second))
	took := time.Since(start)
	t.Logf("Lock without BLPOP, after %s: %v", took.Round(time.Millisecond), err)
	if !errors.Is(err, keyvalue.ErrNoPermission) || took > 2*time.Second {
		t.Errorf("Lock = %v after %s; want ErrNoPermission at once", err, took)
	}
}
