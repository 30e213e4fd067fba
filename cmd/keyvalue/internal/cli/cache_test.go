package cli

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/cache"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/kvtest"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/servertest"
)

func TestCacheCommands(t *testing.T) {
	t.Parallel()
	s := servertest.Standalone(t)
	c := kvtest.Open(t, keyvalue.Config{Addrs: []string{s.Addr()}})
	b, _ := cache.New(c, "pages", cache.Options{})
	other, _ := cache.New(c, "hash", cache.Options{})
	ctx := context.Background()
	for i := range 100 {
		if err := b.Set(ctx, fmt.Sprintf("p%d", i), []byte("html"), []string{fmt.Sprintf("t%d", i%4)}, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	_ = other.Set(ctx, "h", []byte("x"), nil, time.Hour)
	url := "--url=redis://" + s.Addr()

	out, err := run(t, "cache", "stats", "pages", url)
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, out, "entries         100", "tags            4", "keys            104", "memory          ~")

	out, err = run(t, "cache", "flush", "pages", "--tag", "t0,t1", url)
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, out, "cache pages: flushed 50 entries tagged [t0 t1]")

	out, err = run(t, "cache", "gc", "pages", url)
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, out, "cache pages: visited 2 tag indexes, removed 0 stale memberships, 0 indexes emptied")

	// A blank tag is an error, not a whole-cache flush; so is a whole-cache
	// flush without a terminal to confirm on and without --yes.
	for _, args := range [][]string{{"--tag", ""}, {"--tag="}, {}} {
		_, err := run(t, append([]string{"cache", "flush", "pages", url}, args...)...)
		t.Logf("flush %v: %v", args, err)
		if err == nil {
			t.Fatalf("flush %v: no error", args)
		}
	}
	if _, err := run(t, "cache", "flush", "pages", "--tag", " ", url); err == nil || !strings.Contains(err.Error(), "invalid tag") {
		t.Errorf("blank tag: %v", err)
	}
	if _, err := run(t, "cache", "flush", "pages", url); err == nil || !strings.Contains(err.Error(), "add --yes to confirm") {
		t.Errorf("whole flush without --yes: %v", err)
	}
	if st, _ := b.Stats(ctx, nil); st.Entries != 50 {
		t.Fatalf("refused flushes removed entries: %d left, want 50", st.Entries)
	}

	out, err = run(t, "cache", "flush", "pages", "--yes", url)
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, out, "cache pages: removed 52 keys")
	if ok, _ := other.Has(ctx, "h"); !ok {
		t.Error("flushing pages removed an entry of hash")
	}

	if _, err := run(t, "cache", "flush", "bad name", url); err == nil || !strings.Contains(err.Error(), `invalid cache name "bad name"`) {
		t.Errorf("bad name: %v", err)
	}
}
