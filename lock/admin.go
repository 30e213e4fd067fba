package lock

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keyvalue-go/keyvalue/internal/scan"
	"github.com/valkey-io/valkey-go"
)

// Info is a snapshot of one lock's state.
type Info struct {
	Name           string
	Holder         string        // exclusive holder's lease token; empty if none
	TTL            time.Duration // exclusive holder's remaining TTL
	Readers        int           // shared holders
	WaitingWriters int
	WaitingReaders int
	Fence          int64 // last fencing token handed out
}

// Held reports whether anybody holds the lock.
func (i Info) Held() bool { return i.Holder != "" || i.Readers > 0 }

// Inspect reads a lock's state in one pipelined round trip.
func (l *Locker) Inspect(ctx context.Context, name string) (Info, error) {
	k, err := l.keysFor(name)
	if err != nil {
		return Info{}, err
	}
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	b := l.c.B()
	rs := l.c.DoMulti(ctx,
		b.Get().Key(k.all[0]).Build(),
		b.Pttl().Key(k.all[0]).Build(),
		b.Zcount().Key(k.all[1]).Min(now).Max("+inf").Build(),
		b.Get().Key(k.all[2]).Build(),
		b.Zcard().Key(k.all[3]).Build(), // waiters that stopped renewing their place count until a script prunes them (2 s at most)
		b.Zcard().Key(k.all[4]).Build(),
	)
	info := Info{Name: name}
	for i, r := range rs {
		if err := r.Error(); err != nil && !valkey.IsValkeyNil(err) {
			return Info{}, fmt.Errorf("lock %s: inspect: %w", name, err)
		}
		var n int64
		switch i {
		case 0:
			info.Holder, _ = r.ToString()
		case 1:
			if n, _ = r.AsInt64(); n > 0 {
				info.TTL = time.Duration(n) * time.Millisecond
			}
		case 2:
			n, _ = r.AsInt64()
			info.Readers = int(n)
		case 3:
			info.Fence, _ = r.AsInt64()
		case 4:
			n, _ = r.AsInt64()
			info.WaitingWriters = int(n)
		case 5:
			n, _ = r.AsInt64()
			info.WaitingReaders = int(n)
		}
	}
	return info, nil
}

// Names lists the locks that have keys on the server (every lock ever
// taken keeps its fencing counter), with SCAN on every primary.
func (l *Locker) Names(ctx context.Context) ([]string, error) {
	names := map[string]bool{}
	for page, err := range scan.Keys(ctx, l.c, "kv:{l:*", 1000) {
		if err != nil {
			return nil, fmt.Errorf("lock: list: %w", err)
		}
		for _, key := range page {
			if name, _, ok := strings.Cut(strings.TrimPrefix(key, "kv:{l:"), "}"); ok {
				names[name] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(names)), nil
}

// ForceRelease drops every holder of a lock and wakes a waiter: for an
// operator clearing a lock whose holder is known to be gone. Holders still
// alive keep working unaware until their next Refresh or Unlock fails;
// fencing tokens keep them from doing damage.
func (l *Locker) ForceRelease(ctx context.Context, name string) error {
	k, err := l.keysFor(name)
	if err != nil {
		return err
	}
	if _, err := l.release(ctx, k, "", "force", "", -1); err != nil {
		return fmt.Errorf("lock %s: force release: %w", name, err)
	}
	return nil
}
