// Package scripts holds keyvalue's Lua scripts, one .lua file per script,
// embedded at build time. valkey-go runs them with EVALSHA and falls back to
// EVAL when the server does not know the script yet (after a restart or
// failover), so no SCRIPT LOAD step is needed.
//
// Every script receives the keys it is asked about in KEYS, and all of them
// share one hash tag, so on a Cluster they live in one slot.
package scripts

import (
	"embed"

	"github.com/valkey-io/valkey-go"
)

//go:embed *.lua
var files embed.FS

func load(name string) *valkey.Lua {
	src, err := files.ReadFile(name)
	if err != nil {
		panic("scripts: missing embedded " + name) // a build defect, caught by tests
	}
	return valkey.NewLuaScript(string(src))
}

// Source returns the text of an embedded script, for documentation and tests.
func Source(name string) (string, error) {
	b, err := files.ReadFile(name)
	return string(b), err
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
)
