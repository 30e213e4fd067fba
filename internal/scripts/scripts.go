// Package scripts holds keyvalue's Lua scripts, one .lua file per script,
// embedded at build time, and runs them: EVALSHA first, the source only
// where a server answers NOSCRIPT (after a restart or failover), so no
// SCRIPT LOAD step is needed.
//
// Every key a script touches is passed in KEYS, and all of one call's keys
// share one hash tag, so on a Cluster they live in one slot and a slot
// migration refuses the call before it runs (TRYAGAIN) instead of failing
// it half-way. Calls refused that way did not run: they are sent again,
// with backoff, until they run or the context ends. Scripts that may stop
// half-way (a server error in a later command) order their writes so that
// every prefix keeps their package's promises.
//
// Files named lib_*.lua hold Lua shared by several scripts; a script that
// uses one has it prepended when it is loaded (the server sees one script).
package scripts

import (
	"context"
	"crypto/sha1" //nolint:gosec // the server names scripts by SHA1
	"embed"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/valkey-io/valkey-go"
)

//go:embed *.lua
var files embed.FS

// Script is one embedded Lua script and the SHA1 the server knows it by.
// Its methods run it on any valkey.Client.
type Script struct {
	name     string
	src, sha string
}

// all lists every script, for Preload.
var all []*Script

// load reads a script, after the shared files it uses.
func load(name string, libs ...string) *Script {
	var src strings.Builder
	for _, f := range append(libs, name) {
		b, err := files.ReadFile(f)
		if err != nil {
			panic("scripts: missing embedded " + f) // a build defect at init, caught by every test
		}
		src.Write(b)
		src.WriteString("\n")
	}
	s := &Script{name: name, src: src.String(), sha: sha1hex(src.String())}
	all = append(all, s)
	return s
}

// Preload loads every script into the server's script cache, so that the
// first EVALSHA of each does not pay for a NOSCRIPT round trip (benchmarks
// use it to measure the steady state; production code needs nothing: the
// fallback loads scripts on first use).
func Preload(ctx context.Context, c valkey.Client) error {
	for _, s := range all {
		if err := s.loadEverywhere(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

// Exec runs the script once: ExecMulti of one call, sent with Do (fewer
// allocations than a pipeline of one).
func (s *Script) Exec(ctx context.Context, c valkey.Client, keys, args []string) valkey.ValkeyResult {
	for attempt := 1; ; attempt++ {
		r := c.Do(ctx, s.evalsha(c, keys, args))
		switch again, err := s.resend(ctx, c, []error{r.Error()}, attempt); {
		case err != nil:
			return valkey.NewErrorResult(err)
		case len(again) == 0:
			return r
		}
	}
}

// ExecMulti runs the script once per exec in one pipeline (valkey-go
// routes each to its slot's node) and returns the results in order. It
// sends EVALSHA straight away (valkey-go's own Lua.ExecMulti sends SCRIPT
// LOAD to every node before each call, one more round trip every time) and
// loads the script only where a server answers NOSCRIPT; calls answered
// NOSCRIPT or TRYAGAIN did not run and are sent again.
func (s *Script) ExecMulti(ctx context.Context, c valkey.Client, execs ...valkey.LuaExec) []valkey.ValkeyResult {
	return run(ctx, c, s, len(execs), func(i int) valkey.Completed {
		return s.evalsha(c, execs[i].Keys, execs[i].Args)
	})
}

// Pipelined runs the script in one pipeline with extra commands, so that
// all of them go over the same connection (WAIT, for one, only covers its
// own connection's writes). extra builds the other commands (valkey-go
// recycles commands once sent, so a retry needs fresh ones). The results
// are the script's, then the extras'. If the script did not run (NOSCRIPT,
// TRYAGAIN), the whole pipeline is sent again.
func (s *Script) Pipelined(ctx context.Context, c valkey.Client, keys, args []string, extra func() valkey.Commands) []valkey.ValkeyResult {
	for attempt := 1; ; attempt++ {
		rs := c.DoMulti(ctx, append(valkey.Commands{s.evalsha(c, keys, args)}, extra()...)...)
		switch again, err := s.resend(ctx, c, []error{rs[0].Error()}, attempt); {
		case err != nil:
			rs[0] = valkey.NewErrorResult(err)
			return rs
		case len(again) == 0:
			return rs
		}
	}
}

// DoMulti sends n commands in one pipeline, sending again (with backoff)
// those a Cluster refused during a slot migration (TRYAGAIN), which did not
// run. build(i) builds command i afresh for every send.
func DoMulti(ctx context.Context, c valkey.Client, n int, build func(i int) valkey.Completed) []valkey.ValkeyResult {
	return run(ctx, c, nil, n, build)
}

// maxAttempts bounds the sends of a command that keeps being refused;
// with the backoff below that is about 5 s (or less, by the context).
const maxAttempts = 30

// run sends the commands and sends again the ones that did not run; s, if
// not nil, is the script they evaluate (loaded on NOSCRIPT).
func run(ctx context.Context, c valkey.Client, s *Script, n int, build func(i int) valkey.Completed) []valkey.ValkeyResult {
	results := make([]valkey.ValkeyResult, n)
	pending := make([]int, n)
	for i := range pending {
		pending[i] = i
	}
	for attempt := 1; len(pending) > 0; attempt++ {
		cmds := make(valkey.Commands, len(pending))
		for k, i := range pending {
			cmds[k] = build(i)
		}
		errs := make([]error, len(pending))
		for k, r := range c.DoMulti(ctx, cmds...) {
			results[pending[k]] = r
			errs[k] = r.Error()
		}
		again, err := s.resend(ctx, c, errs, attempt)
		if err != nil {
			for _, k := range again {
				results[pending[k]] = valkey.NewErrorResult(err)
			}
			return results
		}
		next := make([]int, len(again))
		for j, k := range again {
			next[j] = pending[k]
		}
		pending = next
	}
	return results
}

// resend returns the indexes of the replies saying that their command did
// not run and may be sent again: NOSCRIPT (after loading the script, if s
// is a script) or TRYAGAIN (after a pause). None when attempts or the
// context run out: those replies then stand. An error means the script
// could not be loaded; it applies to the returned indexes.
func (s *Script) resend(ctx context.Context, c valkey.Client, errs []error, attempt int) ([]int, error) {
	if ctx.Err() != nil || attempt >= maxAttempts {
		return nil, nil
	}
	var again []int
	var noScript, tryAgain bool
	for i, err := range errs {
		ve, ok := valkey.IsValkeyErr(err)
		switch {
		case !ok:
		case s != nil && ve.IsNoScript():
			noScript = true
			again = append(again, i)
		case ve.IsTryAgain():
			tryAgain = true
			again = append(again, i)
		}
	}
	if noScript {
		if err := s.loadEverywhere(ctx, c); err != nil {
			return again, err
		}
	}
	if tryAgain {
		t := time.NewTimer(time.Duration(min(attempt, 10)) * 20 * time.Millisecond)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil, nil
		}
	}
	return again, nil
}

func (s *Script) evalsha(c valkey.Client, keys, args []string) valkey.Completed {
	return c.B().Evalsha().Sha1(s.sha).Numkeys(int64(len(keys))).Key(keys...).Arg(args...).Build()
}

func sha1hex(src string) string {
	sum := sha1.Sum([]byte(src)) //nolint:gosec // the server names scripts by SHA1
	return hex.EncodeToString(sum[:])
}

// loadEverywhere loads the script on the client's node, or on every node
// of a Cluster.
func (s *Script) loadEverywhere(ctx context.Context, c valkey.Client) error {
	nodes := map[string]valkey.Client{"": c}
	if c.Mode() == valkey.ClientModeCluster {
		nodes = c.Nodes()
	}
	for addr, n := range nodes {
		if err := n.Do(ctx, n.B().ScriptLoad().Script(s.src).Build()).Error(); err != nil {
			return fmt.Errorf("SCRIPT LOAD %s on %s: %w", s.name, addr, err)
		}
	}
	return nil
}

// The scripts.
var (
	// CacheSet adds an entry to its tags' indexes, then writes its value.
	CacheSet = load("cache_set.lua", "lib_cache_tags.lua")
	// CachePrune removes ids from a tag's index unless live with the tag.
	CachePrune = load("cache_prune.lua", "lib_cache_tags.lua")
	// CacheRemove removes values, then their flushed tags' memberships.
	CacheRemove = load("cache_remove.lua")
	// CacheTags reads an entry's tags.
	CacheTags = load("cache_tags.lua", "lib_cache_tags.lua")
	// CacheLease returns an entry, or takes or waits for its computing lease.
	CacheLease = load("cache_lease.lua", "lib_cache_tags.lua")
	// CacheLeaseExtend extends a computing lease its holder still holds.
	CacheLeaseExtend = load("cache_lease_extend.lua")
	// CacheLeaseRelease ends a computing lease and wakes its waiters.
	CacheLeaseRelease = load("cache_lease_release.lua", "lib_cache_tags.lua")
	// CacheFlushStamp stamps a flush of tags (or of the whole cache).
	CacheFlushStamp = load("cache_flush_stamp.lua", "lib_cache_tags.lua")
	// CacheFlushIndexes unlinks a flush's indexes if nothing was written
	// during the flush.
	CacheFlushIndexes = load("cache_flush_indexes.lua")

	// Sharded caches (values under {ID}, indexes under {TAG}).

	// CacheTagAdd adds an id to a tag's index, pending, with a rising score.
	CacheTagAdd = load("cache_tag_add.lua", "lib_cache_tags.lua")
	// CacheSetSharded writes a value unless step 1's deadline passed.
	CacheSetSharded = load("cache_set_sharded.lua", "lib_cache_tags.lua")
	// CacheTagCommit clears a pending mark once the value is written.
	CacheTagCommit = load("cache_tag_commit.lua")
	// CacheTagRemove removes ids unless tagged again or pending.
	CacheTagRemove = load("cache_tag_remove.lua")
	// CacheTagPending reads a tag's pending marks and the server's time.
	CacheTagPending = load("cache_tag_pending.lua", "lib_cache_tags.lua")
	// CacheTagGC drops expired members and settles stale pending marks.
	CacheTagGC = load("cache_tag_gc.lua", "lib_cache_tags.lua")

	// LockAcquire takes a lock (exclusive or shared) or registers a waiter.
	LockAcquire = load("lock_acquire.lua", "lib_expire.lua", "lib_lock.lua")
	// LockRelease releases a lease and makes the next waiter the holder.
	LockRelease = load("lock_release.lua", "lib_expire.lua", "lib_lock.lua")
	// LockTransfer hands an exclusive lock to another caller of the same
	// process in one call, unless a waiter elsewhere is owed it.
	LockTransfer = load("lock_transfer.lua", "lib_expire.lua", "lib_lock.lua")
	// LockGrant delivers grants to the waiters' lists.
	LockGrant = load("lock_grant.lua")
	// LockRefresh extends a lease still held, or checks it.
	LockRefresh = load("lock_refresh.lua", "lib_expire.lua", "lib_lock.lua")

	// SessionWrite writes a session record with an optimistic check.
	SessionWrite = load("session_write.lua", "lib_expire.lua")
	// SessionRenew moves a session to a new id, leaving a read-only stub.
	SessionRenew = load("session_renew.lua")
	// SessionRemove removes session records and their index entries.
	SessionRemove = load("session_remove.lua")
	// SessionIndex drops expired index members (a ZRANGE follows it).
	SessionIndex = load("session_index.lua")
)
