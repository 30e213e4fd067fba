package lock_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/keyvalue-go/keyvalue/internal/scripts"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/servertest"
	"github.com/keyvalue-go/keyvalue/lock"
)

// TestHandoffForwardedWhenWaitersBlockOutOfOrder: waiter A queues first
// but never blocks (it stands for a waiter whose BLPOP has not arrived
// yet); waiter B queues second and blocks on the hand-off list. The
// release grants A, B pops A's grant from the hand-off list, forwards it
// to A's own grant list (read back independently) and keeps waiting: it
// does not take the lock. When A's lease is dropped, B gets the lock.
func TestHandoffForwardedWhenWaitersBlockOutOfOrder(t *testing.T) {
	t.Parallel()
	s := servertest.Standalone(t)
	c := connect(t, s, "fwd")
	l := lock.New(c, lock.Options{TTL: 20 * time.Second, Logger: quiet})
	m := mutex(t, l, "fwd")
	p := "kv:{l:fwd}"
	keys := func(token string) []string {
		return []string{p, p + ":r", p + ":f", p + ":qx", p + ":qs", p + ":g", p + ":w:" + token}
	}

	holder, err := m.Lock(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	// A: queued as a waiter through the acquire script, not blocked. The
	// queue is ordered by registration deadline: A's (30 s) comes before
	// B's (the Locker registers for 2 TTLs + 1 s).
	res, err := scripts.LockAcquire.Exec(ctx(t), c, keys("tokenA"), []string{"tokenA", "20000", "x", "30000"}).AsIntSlice()
	if err != nil || res[0] != 0 {
		t.Fatalf("A's registration = %v, %v; want queued", res, err)
	}
	got := make(chan error, 1)
	go func() {
		lease, err := m.Lock(ctx(t)) // B
		if err == nil {
			err = lease.Unlock(ctx(t))
		}
		got <- err
	}()
	servertest.WaitFor(t, 5*time.Second, "B queued behind A", func() error {
		n, err := c.Do(ctx(t), c.B().Zcard().Key(p+":qx").Build()).AsInt64()
		if err == nil && n != 2 {
			return strconv.ErrRange
		}
		return err
	})
	time.Sleep(50 * time.Millisecond) // B blocks in BLPOP
	if err := holder.Unlock(ctx(t)); err != nil {
		t.Fatal(err)
	}
	servertest.WaitFor(t, 5*time.Second, "A's grant forwarded to A's own list", func() error {
		v, err := c.Do(ctx(t), c.B().Lrange().Key(p+":w:tokenA").Start(0).Stop(-1).Build()).AsStrSlice()
		if err == nil && len(v) != 1 {
			return strconv.ErrSyntax
		}
		return err
	})
	owner, _ := c.Do(ctx(t), c.B().Get().Key(p).Build()).ToString()
	if owner != "tokenA" {
		t.Fatalf("the lock is held by %q; want A (granted first)", owner)
	}
	select {
	case err := <-got:
		t.Fatalf("B returned (%v) while A holds the lock", err)
	case <-time.After(100 * time.Millisecond):
	}
	if err := l.ForceRelease(ctx(t), "fwd"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("B did not get the lock after A's lease was dropped")
	}
}
