// Package scripts holds keyvalue's Lua scripts, one .lua file per script,
// embedded at build time. valkey-go runs them with EVALSHA and falls back to
// EVAL when the server does not know the script yet (after a restart or
// failover), so no SCRIPT LOAD step is needed.
//
// Every script receives the keys it is asked about in KEYS, and all of them
// share one hash tag, so on a Cluster they live in one slot.
package scripts

import (
	"context"
	"crypto/sha1" //nolint:gosec // the server names scripts by SHA1
	"embed"
	"encoding/hex"
	"fmt"

	"github.com/valkey-io/valkey-go"
)

//go:embed *.lua
var files embed.FS

// Script is one embedded Lua script and the SHA1 the server knows it by.
// Its methods run it on any valkey.Client.
type Script struct {
	src, sha string
	lua      *valkey.Lua
}

// all lists every script, for Preload.
var all []*Script

func load(name string) *Script {
	src, err := files.ReadFile(name)
	if err != nil {
		panic("scripts: missing embedded " + name) // a build defect at init, caught by every test
	}
	s := &Script{src: string(src), sha: sha1hex(string(src)), lua: valkey.NewLuaScript(string(src))}
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

// Exec runs the script once with EVALSHA, falling back to EVAL when the
// server does not know it.
func (s *Script) Exec(ctx context.Context, c valkey.Client, keys, args []string) valkey.ValkeyResult {
	return s.lua.Exec(ctx, c, keys, args)
}

// ExecMulti runs the script once per exec in one pipeline (valkey-go
// routes each to its slot's node) and returns the results in order. Unlike
// valkey-go's Lua.ExecMulti, which sends SCRIPT LOAD to every node before
// each call (one more round trip every time), it sends EVALSHA straight
// away and loads the script only where the server answers NOSCRIPT (first
// use, or a node that restarted or was promoted), then retries those calls.
func (s *Script) ExecMulti(ctx context.Context, c valkey.Client, execs ...valkey.LuaExec) []valkey.ValkeyResult {
	build := func(idx []int) valkey.Commands {
		cmds := make(valkey.Commands, len(idx))
		for i, j := range idx {
			cmds[i] = s.evalsha(c, execs[j].Keys, execs[j].Args)
		}
		return cmds
	}
	every := make([]int, len(execs))
	for i := range every {
		every[i] = i
	}
	rs := c.DoMulti(ctx, build(every)...)
	var missing []int
	for i, r := range rs {
		if err, ok := valkey.IsValkeyErr(r.Error()); ok && err.IsNoScript() {
			missing = append(missing, i)
		}
	}
	if len(missing) == 0 {
		return rs
	}
	if err := s.loadEverywhere(ctx, c); err != nil {
		for _, i := range missing {
			rs[i] = valkey.NewErrorResult(err)
		}
		return rs
	}
	for k, r := range c.DoMulti(ctx, build(missing)...) {
		rs[missing[k]] = r
	}
	return rs
}

// Pipelined runs the script in one pipeline with extra commands, so that
// all of them go over the same connection (WAIT, for one, only covers its
// own connection's writes). It loads the script first if the server does
// not know it. extra builds the other commands (valkey-go recycles
// commands once sent, so a retry needs fresh ones). The results are the
// script's, then the extras'.
func (s *Script) Pipelined(ctx context.Context, c valkey.Client, keys, args []string, extra func() valkey.Commands) []valkey.ValkeyResult {
	build := func() valkey.Commands {
		return append(valkey.Commands{s.evalsha(c, keys, args)}, extra()...)
	}
	rs := c.DoMulti(ctx, build()...)
	if err, ok := valkey.IsValkeyErr(rs[0].Error()); ok && err.IsNoScript() {
		if err := s.loadEverywhere(ctx, c); err != nil {
			rs[0] = valkey.NewErrorResult(err)
			return rs
		}
		rs = c.DoMulti(ctx, build()...)
	}
	return rs
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
			return fmt.Errorf("SCRIPT LOAD on %s: %w", addr, err)
		}
	}
	return nil
}

// The scripts.
var (
	// CacheSet writes an entry, its tag list and the tag→id diff atomically.
	CacheSet = load("cache_set.lua")
	// CacheRemove removes entries with their tag memberships.
	CacheRemove = load("cache_remove.lua")
	// CacheGC removes ids whose entry no longer exists from one tag set.
	CacheGC = load("cache_gc.lua")

	// Sharded caches (data under {ID}, tag sets under {TAG}).

	// CacheTagAdd adds an id to a tag set with a rising expiry score.
	CacheTagAdd = load("cache_tag_add.lua")
	// CacheTagRemove removes ids from a tag set unless they were tagged again.
	CacheTagRemove = load("cache_tag_remove.lua")
	// CacheTagGC drops tag memberships of expired entries.
	CacheTagGC = load("cache_tag_gc.lua")
	// CacheSetSharded writes an entry and its tag list.
	CacheSetSharded = load("cache_set_sharded.lua")

	// LockAcquire takes a lock (exclusive or shared) or registers a waiter.
	LockAcquire = load("lock_acquire.lua")
	// LockRelease releases a lease and wakes one waiter.
	LockRelease = load("lock_release.lua")
	// LockRefresh extends a lease still held.
	LockRefresh = load("lock_refresh.lua")

	// SessionWrite writes a session record with an optimistic check.
	SessionWrite = load("session_write.lua")
	// SessionRenew moves a session to a new id, leaving a read-only stub.
	SessionRenew = load("session_renew.lua")
	// SessionRemove removes session records and their index entries.
	SessionRemove = load("session_remove.lua")
	// SessionIndex drops expired index members and lists the live ones.
	SessionIndex = load("session_index.lua")
)
