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
	return l.info(name, l.c.DoMulti(ctx, l.inspectCmds(k, now)...))
}

// inspectCmds are the reads Inspect pipelines for one lock.
func (l *Locker) inspectCmds(k keys, now string) valkey.Commands {
	b := l.c.B()
	return valkey.Commands{
		b.Get().Key(k.all[0]).Build(),
		b.Pttl().Key(k.all[0]).Build(),
		b.Zcount().Key(k.all[1]).Min(now).Max("+inf").Build(),
		b.Get().Key(k.all[2]).Build(),
		b.Zcard().Key(k.all[3]).Build(), // waiters that stopped renewing their place count until a script prunes them (2 s at most)
		b.Zcard().Key(k.all[4]).Build(),
	}
}

// info reads the replies to inspectCmds.
func (l *Locker) info(name string, rs []valkey.ValkeyResult) (Info, error) {
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
	names, _, err := l.names(ctx, 0)
	return names, err
}

// names lists lock names from a SCAN of at most maxKeys keys (0: all), and
// whether the walk saw every key.
func (l *Locker) names(ctx context.Context, maxKeys int) ([]string, bool, error) {
	names := map[string]bool{}
	count, walked := 1000, 0
	if maxKeys > 0 {
		count = min(count, maxKeys)
	}
	for page, err := range scan.Keys(ctx, l.c, "kv:{l:*", count) {
		if err != nil {
			return nil, false, fmt.Errorf("lock: list: %w", err)
		}
		for _, key := range page {
			if name, _, ok := strings.Cut(strings.TrimPrefix(key, "kv:{l:"), "}"); ok {
				names[name] = true
			}
		}
		if walked += len(page); maxKeys > 0 && walked >= maxKeys {
			return slices.Sorted(maps.Keys(names)), false, nil
		}
	}
	return slices.Sorted(maps.Keys(names)), true, nil
}

// List returns the state of the locks that a walk of at most maxKeys keys
// finds (SCAN, then every lock's Inspect pipelined together: two round
// trips per primary and one more), held ones first, and whether the walk
// saw every key: a bounded look at a server with many locks. maxKeys 0
// walks every key.
func (l *Locker) List(ctx context.Context, maxKeys int) (infos []Info, complete bool, err error) {
	names, complete, err := l.names(ctx, maxKeys)
	if err != nil || len(names) == 0 {
		return nil, complete, err
	}
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	var cmds valkey.Commands
	per := 0
	for _, name := range names {
		k, err := l.keysFor(name)
		if err != nil {
			return nil, false, err
		}
		c := l.inspectCmds(k, now)
		per = len(c)
		cmds = append(cmds, c...)
	}
	rs := l.c.DoMulti(ctx, cmds...)
	infos = make([]Info, 0, len(names))
	for i, name := range names {
		info, err := l.info(name, rs[i*per:(i+1)*per])
		if err != nil {
			return nil, false, err
		}
		infos = append(infos, info)
	}
	slices.SortStableFunc(infos, func(a, b Info) int {
		switch {
		case a.Held() == b.Held():
			return 0
		case a.Held():
			return -1
		}
		return 1
	})
	return infos, complete, nil
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
