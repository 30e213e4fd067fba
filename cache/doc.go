// Package cache is a tag-aware cache backend on Redis or Valkey: entries
// with lifetimes and tags, flush by tag, full flush and garbage collection
// that never block the server, and self-describing payloads.
//
// # The promise
//
// A live entry is a member of the index of each of its tags, at every
// instant: after any prefix of any operation — a script that errors
// half-way, a process killed between two round trips, a cancelled
// context, a failover, a slot migration. So a flush by a tag never misses
// an entry that has the tag. Indexes may hold surplus members (entries
// that expired, were removed, or left the tag); those cost at most an
// extra miss and are pruned later. Every operation is ordered to keep
// this: memberships are added before a value is written, values are
// deleted before memberships are removed, a flush deletes values before
// indexes and unlinks an index without checking its members only when no
// Set ran since the flush began (each Set first removes the flush's write
// mark; the check and the unlink are one script). Every key a script
// touches is passed to it (KEYS), so a Cluster migrating the cache's slot
// refuses a call before it runs (TRYAGAIN; it is sent again until the
// context ends) instead of failing it half-way.
// The tests check this with an independent reader of the keyspace after
// stopping each operation at every step.
//
// # Key layout
//
// A cache NAME owns every key under "kv:{c:NAME}:"; the braces are a hash
// tag, so all of one cache's keys live in one Cluster slot:
//
//	kv:{c:NAME}:v:ID    string  the value: header, the entry's tags, payload; with the entry's lifetime
//	kv:{c:NAME}:i:TAG   zset    ids tagged TAG, scored by their entry's expiry (ms, server clock;
//	                            1e15 without expiry; +2e15 when the entry has several tags); no expiry
//	kv:{c:NAME}:f       zset    flush stamps: tag -> when it was last flushed (µs, server clock),
//	                            "" for Flush; entries older than Options.MaxLoadTime are dropped,
//	                            and the key expires when no flush happened for that long. Also
//	                            " w", a Flush's write mark: set to its stamp, removed by every Set
//	kv:{c:NAME}:l:ID    hash    GetOrSet's computing lease of ID: owner token, waiter count; with
//	                            the lease TTL (LoadOptions.Lease)
//	kv:{c:NAME}:n:ID    list    wake-ups for the callers waiting on that lease (one element per
//	                            registered waiter, never cleared by a new lease); expires 10s
//	                            after the last release
//
// The tags live inside the value, so an entry and the list of its tags are
// written and deleted together. About one write in eight to an index also
// drops the expired members of its band (entries with one tag, or with
// several: each band is pruned by the writes that fill it), so indexes
// stay close to their live members without garbage collection (the tests
// hold them within 1.2× under churn; measured 1.01–1.04×); an index no
// longer written to keeps its expired members until CollectGarbage.
//
// Caches too large for one Cluster node use sharded mode (Options.Sharded):
// values hash by id ("kv:c:NAME:{ID}:v") and indexes by tag
// ("kv:c:NAME:i:{TAG}", with pending marks "kv:c:NAME:p:{TAG}"); writes
// then follow a protocol that keeps the same promise across slots (see
// sharded.go).
//
// # Operations and their cost (standalone layout)
//
//	Set            one script (EVALSHA): memberships, then the value; 1 round trip,
//	               plus 1 when the entry left tags it had (their indexes are only known then)
//	Get, Has       GET / GETRANGE of the header; 1 round trip (Get may be served locally, see below)
//	GetMany        one MGET per Options.BatchSize ids, pipelined: 1 round trip for any number of ids
//	               (sharded mode: one GET per id, pipelined to each node, the nodes in parallel;
//	               with the local read cache, one cacheable GET per id)
//	SetMany        one Set script per entry, pipelined: 1 round trip for any number of entries,
//	               plus 1 when some left tags they had (sharded mode: each step of Set's protocol
//	               is one pipeline for every entry: 3 round trips)
//	Remove         one script deleting the value, then one removing its memberships; 2 round trips
//	FlushByTags    the tags' indexes (two plain ranges each), one pipeline of removal scripts in
//	               batches of Options.BatchSize (values, then their memberships in the flushed
//	               tags), one pipeline cleaning the other tags of multi-tagged entries;
//	               3 round trips for any number of tags and entries
//	Flush          the stamp (1 round trip), SCAN MATCH kv:{c:NAME}:* + UNLINK of every key but
//	               the indexes, per batch, on every primary (repeated on a Cluster until a pass
//	               ran with no slot moving), then the indexes the walk found: when nothing was
//	               written since the stamp, one script per BatchSize indexes, pipelined, that
//	               checks the write mark and unlinks them unread (1 round trip); else garbage
//	               collection of those indexes (each member checked); never KEYS or FLUSHDB.
//	               SCAN visits the whole database: its COUNT (BatchSize) doubles, up to 8x,
//	               while pages come back nearly empty, so a small cache in a large database
//	               costs one round trip per BatchSize of its keys plus one per 8·BatchSize
//	               others (server time still grows with the database: on Redis 7.0 a SCAN
//	               MATCH costs about 7x a KEYS per key visited; less on Valkey 8)
//	CollectGarbage SCAN over the indexes, each read in pages by rank, one check-and-remove script per
//	               page, a few indexes pipelined at a time
//	Inspect        GET and PTTL pipelined: 1 round trip (the value is read and not returned)
//	IndexSizes     one ZCARD per tag, pipelined: 1 round trip; TagMembers: one ZRANGE by rank
//	TagIndexes     SCAN of at most maxKeys keys over the indexes, then their ZCARDs pipelined
//
//	GetOrSet       a hit: GET (+ a background refresh when stale or picked early); a miss: GET,
//	               the lease script, the computation, the Set script (which checks the flush
//	               stamps and wakes the waiters): 3 round trips; a waiter: GET, the lease
//	               script, BLPOP until woken, the lease script again (returns the value): 4
//	GetOrSetMany   hits: as GetMany; misses: one pipeline of lease scripts, one call of the
//	               loader, one pipeline of Set scripts: 3 round trips for any number of ids
//	               (plus BLPOP and one round trip per wake-up for ids another caller computes)
//	GetOrFill      the bytes-level GetOrSet for callers that run the computation themselves
//	               (see Fill): the lease script (returns the value, or the Fill), then the
//	               caller's Store (the Set script): 2 round trips on a miss, 1 on a hit
//
// Sharded mode: Set 3 round trips (tag, value, commit); Remove and
// FlushByTags 4–5 (read tags and scores before deleting values).
//
// # Computing missing entries
//
// Typed.GetOrSet computes a missing entry once for the whole fleet. On a
// miss, one caller takes a lease on the entry (a key with
// LoadOptions.Lease, 2s by default, as its TTL), which it renews every
// third of the lease while it computes (up to Options.MaxLoadTime); the
// callers in other processes register as waiters and block in BLPOP on
// the entry's wake-up list, on valkey-go's blocking pool and bounded by
// their context, until the Set that stores the value (one script) pushes
// one wake-up per waiter; they then read the value. A wake-up pushed
// between a waiter's registration and its BLPOP stays on the list even
// when the next computation takes the lease, so a waiter waits for the
// write it registered for plus about one round trip, never for a lease
// (tested under flushes racing the computations). If the computation
// fails, the lease is released and a waiter computes. If the computing
// process dies, its lease is no longer renewed and a waiter takes over
// within one lease (tested by killing a process in the middle of a
// computation); a computation of any length up to MaxLoadTime is done
// once. Callers in one process share one call (singleflight).
//
// The promise against the set-after-invalidate race: a value computed by
// GetOrSet is not stored if the whole cache (Flush) or one of its tags
// (FlushByTags) was flushed after its computation began. A flush stamps
// the flushed tags with the server's clock before it reads or removes
// anything (in the same round trip as its first reads); the lease hands
// the computing caller the server's clock when the computation begins;
// the Set script compares the two and refuses the write. The value is
// still returned to the callers of that computation (their requests began
// before the flush); the next read computes again. A computation that
// takes longer than Options.MaxLoadTime is refused too (older stamps are
// dropped). Plain Set and Typed.Set are not checked: they store what the
// caller gives them. In sharded mode the stamps are not kept (a tag's
// index and an entry's value live on different nodes): there GetOrSet
// computes once across the fleet but is not protected from this race.
//
// Backend.GetOrFill, Refill and TryFill hand out the same lease as a
// Fill, for callers that must run the computation themselves (the
// httpcache middleware streams the response it captures): Fill.Store
// writes under the same check, Fill.StoreOther writes a second entry
// computed from the same reads under it, and Fill.Abandon hands the
// computation to a waiter.
//
// Typed.GetOrSetMany does the same for many ids at once: the leases of
// the missing ids are claimed in one pipeline, the loader runs once with
// the ids this caller was granted (their leases renewed together), and
// the results are stored together, each under its own lease's check; ids
// another caller computes are waited for, and taken over if it dies.
//
// LoadOptions.NotFoundLifetime remembers a loader's "not found"
// (negative caching): the answer is stored as an entry whose header says
// "absent" (codec id 7, no body), with the tags the loader returned and
// that lifetime, so a flush of those tags forgets it; until then GetOrSet
// returns an error matching LoadOptions.NotFound (and ErrNotFound)
// without loading, and Get, Has and GetMany treat it as no entry. A flood
// of requests for a missing id costs one load across the fleet.
//
// # Deleting by prefix
//
// There is no "delete every key starting with ..." (a KEYS or SCAN over
// the keyspace, which blocks or walks the whole server and misses keys
// written meanwhile). Tags cover it: give every entry the tags of the
// groups it belongs to ("user:42", "product:7", "lang:de") and
// FlushByTags removes a group in three round trips, however large, with
// no entry of the group missed. Groups that are whole namespaces are
// caches of their own (one Backend per name, cache.Open's "caches"),
// emptied with Flush. See ExampleBackend_FlushByTags.
//
// LoadOptions.Grace (stale-while-revalidate) keeps an entry Grace longer
// than its lifetime: a read in that time returns the stale value at once
// and starts a background refresh, one across the fleet (the lease, in a
// mode that never waits). LoadOptions.Beta refreshes fresh entries early
// with a probability that rises near the end of their lifetime and with
// their computation time (XFetch). Both store, in the value's header, when
// the entry turns stale (the writing process's clock: a fleet's clocks
// should agree within a small part of the lifetime) and how long it took.
//
// # Degraded mode
//
// With Options.Degraded, a server that cannot be reached costs the
// application nothing but the cache: reads are misses (GetOrSet computes
// the value and returns it without storing it), writes are dropped with a
// warning in the log (at most one line per 10 seconds, with the count),
// and a circuit breaker (sony/gobreaker) opens after
// Options.BreakerThreshold consecutive failures to reach the server: calls
// then fail at once (ErrUnavailable) for Options.BreakerCooldown, then one
// call probes the server. A server that answers that it cannot serve
// (LOADING, BUSY, MASTERDOWN, CLUSTERDOWN, READONLY, OOM) counts as
// unavailable; other replies (WRONGTYPE, ...) are answers: they stay
// errors and never open the breaker. Remove, FlushByTags and Flush keep
// their errors: an invalidation that did not happen must not look as if it
// did.
//
// # Faults, what holds, and how long callers wait
//
// Each row is a fault injected by the tests (cache's own, and
// internal/netfaults through Toxiproxy), what the cache promises under it,
// and what was measured (2-core machine, loopback; io_timeout 1s and
// health_check_interval 500ms where the network is cut):
//
//	fault                               what holds                                 measured
//	operation stopped after any step    every live entry in each of its tags'      checked by an independent
//	(killed connection, cancelled ctx,  indexes; calling again finishes the job    reader after every step
//	script error, crash)
//	slot migrating mid-operation        nothing half-done (TRYAGAIN before a       flush finishes once the
//	                                    script runs; sent again)                   slot settles
//	Cluster primary cut off, replica    the same invariant; writes fail, then      promoted after 4.0 s,
//	promoted                            resume on the new primary                  writes back after 5.0 s
//	network cut (packets dropped)       Set fails within io_timeout, Get within    1.01 s, 2.02 s, 1.45 s
//	                                    2·io_timeout + dial_timeout, FlushByTags
//	                                    with the same bound, errors match
//	                                    keyvalue.ErrUnreachable
//	network cut, local read cache       a local copy is served until the           served 1.79 s after the cut
//	                                    connection is found dead: within           (local TTL 1 min)
//	                                    2·health_check_interval + io_timeout
//	network cut, degraded mode          misses; the breaker opens after            3 misses of 2.0 s, then
//	                                    BreakerThreshold failures, then misses     instant; closed again after
//	                                    cost nothing; closes after the cooldown    the cooldown
//	a GetOrSet waiter, flushes racing   woken by the write it waits for (one       slowest of ~8,000 calls:
//	the computations                    round trip), never waits out a lease       0.16–0.25 s (lease 10 s)
//	the computing process dies          a waiter takes over within the lease       within the lease (1 s in
//	                                    (2s by default), renewed while alive       the tests)
//	a computation of 5 leases           done once across the fleet                 1 computation for 9 callers
//
// # Observability
//
// Options.MeterProvider and Options.TracerProvider (OpenTelemetry's
// global providers when nil) receive keyvalue.cache.operation.duration
// (a histogram per operation: get, get_many, has, set, set_many, remove,
// flush_by_tags, flush, collect_garbage, get_or_set, get_or_set_many,
// get_or_fill) and the counters keyvalue.cache.hits,
// .misses, .local_hits, .stale_served, .recomputes, .refused_writes and
// .dropped_writes, each with the attribute keyvalue.cache.name; and one
// span per operation, under a recording span in the caller's context,
// with OpenTelemetry's database attributes. Ids, tags
// and values are never attributes. A miss is not an error.
//
// # Payloads
//
// Each value starts with one header byte naming the codec (raw, JSON,
// msgpack, gob, or an application codec registered with RegisterCodec),
// the compression (none, zstd, s2) and whether tags follow. Readers decode
// by the header, so a cache can change codec or compression without a
// flush. A payload that cannot be decoded is an error matching ErrCorrupt
// (a miss for Typed.GetOrSet), never a panic; decompression is bounded by
// Options.MaxValueBytes.
//
// # Eviction
//
// An index must never be evicted while entries it lists stay. Under a
// maxmemory-policy of allkeys-lru, allkeys-lfu or allkeys-random the server
// may do exactly that, so Set refuses to write tagged entries there
// (ErrEvictionPolicy, naming the policy and the fix) unless
// Options.AllowEvictingPolicy is set. noeviction and the volatile-*
// policies are safe: indexes have no expiry, so volatile policies never
// evict them (losing a value is harmless). The policy is read from INFO
// (which works where CONFIG is disabled) on first use and once a minute;
// keyvalue doctor reports the same verdict.
//
// # Local read cache
//
// With Options.LocalCacheTTL, Get is served from valkey-go's client-side
// cache. The server sends invalidations when an entry changes, but they
// arrive asynchronously:
//
//   - The process that wrote reads its own writes: after it changed,
//     removed or flushed an entry (or flushed the cache), Get serves the
//     local copy only if it is what the process wrote (compared by a hash,
//     or "no value"), else reads the server, for up to LocalCacheTTL. Once
//     the local copy matches, local hits resume.
//   - Other processes may serve the old copy until the invalidation
//     message reaches them and is applied: keyvalue bench's
//     cache/local-staleness scenario measures that window (p99 and max;
//     1.5 ms p99 on the project's 2-core machine over loopback, polling
//     every 50µs). It grows when the reading process is starved of CPU
//     (a tight loop of local hits on two cores stretched it to 20 ms), and
//     LocalCacheTTL bounds it if a message is lost. Use the local cache
//     where that window is acceptable.
//
// # Upgrading from the earlier layout
//
// Entries written by versions before this layout ("kv:{c:NAME}:d:ID" with
// "t:" and "g:" keys) are not read: they are misses, expire on their own,
// and Flush removes them. Upgrade every process of a fleet together (or
// flush after), since an older process's flush would not see new entries.
//
// # Input rules
//
// Ids and tags are 1 to 250 bytes of valid UTF-8 with no whitespace or
// control characters; an entry has at most 1000 tags. Cache names are 1 to
// 64 bytes of ASCII letters, digits, '_', '-' and '.'. Refused input is an
// *InputError naming the problem, and nothing is written.
package cache
