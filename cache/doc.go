// Package cache is a tag-aware cache backend on Redis or Valkey: entries
// with lifetimes and tags, flush by tag, full flush and garbage collection
// that never block the server, and self-describing payloads.
//
// # Key layout
//
// A cache NAME owns every key under "kv:{c:NAME}:"; the braces are a hash
// tag, so all of one cache's keys live in one Cluster slot and every script
// is atomic on Standalone, Sentinel and Cluster alike:
//
//	kv:{c:NAME}:d:ID    string  header byte + payload, with the entry's lifetime
//	kv:{c:NAME}:t:ID    set     the entry's tags, with the entry's lifetime
//	kv:{c:NAME}:g:TAG   set     ids tagged TAG (no expiry; CollectGarbage
//	                            removes ids of expired entries)
//
// Caches too large for one Cluster node can use sharded mode
// (Options.Sharded): entries hash by id, tag sets by tag, under
// "kv:c:NAME:"; writes then follow a two-step protocol that never
// under-invalidates (see Options.Sharded and sharded.go).
//
// # Operations and their cost
//
//	Set            one Lua script (EVALSHA): data, id→tags, tag→ids diff, expiry; 1 round trip
//	Get, Has       GET / EXISTS; 1 round trip
//	Remove         one script: data, id→tags and the id's tag memberships
//	FlushByTags    one pipeline of SMEMBERS (one per tag), then one pipeline
//	               of removal scripts in batches; 2 round trips for any
//	               number of tags
//	Flush          SCAN MATCH kv:{c:NAME}:* + UNLINK per batch, on every
//	               primary; never KEYS, FLUSHDB or another cache's keys
//	CollectGarbage SCAN over tag sets, SSCAN over each, one check-and-remove
//	               script per batch
//
// # Payloads
//
// Each stored value starts with one header byte naming the codec (raw,
// JSON, msgpack, gob, or an application codec registered with
// RegisterCodec) and the compression (none, zstd, s2). Readers decode by
// the header, so a cache can change codec or compression without a flush.
// A payload that cannot be decoded is an error matching ErrCorrupt (a miss
// for Typed.GetOrSet), never a panic; decompression is bounded by
// Options.MaxValueBytes.
//
// # Input rules
//
// Ids and tags are 1 to 250 bytes of valid UTF-8 with no whitespace or
// control characters; an entry has at most 1000 tags. Cache names are 1 to
// 64 bytes of ASCII letters, digits, '_', '-' and '.'. Refused input is an
// *InputError naming the problem, and nothing is written.
//
// # Consistency
//
// Set and Remove are atomic. FlushByTags removes the entries that carried
// the tags when it started; entries tagged afterwards survive (they are
// newer than the flush), and an entry is never left in a tag's set without
// being found by a later flush of that tag. The scripts touch the tag sets
// of an entry's previous tags by name derived from the cache prefix (they
// are only known on the server); those keys carry the same hash tag as the
// keys passed in KEYS, so they are in the same slot.
package cache
