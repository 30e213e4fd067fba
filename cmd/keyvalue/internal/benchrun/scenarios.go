package benchrun

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/keyvalue-go/keyvalue"
)

var quiet = slog.New(slog.DiscardHandler)

// Sizes are the scenario sizes; Quick ones keep a run under a minute on
// two cores.
type sizes struct {
	setOps, getOps, renewOps, handoffs, lockOps, localHits int
}

func (e *Env) sizes() sizes {
	if e.Tiny {
		return sizes{setOps: 20, getOps: 200, renewOps: 10, handoffs: 3, lockOps: 20, localHits: 100}
	}
	if e.Quick {
		return sizes{setOps: 300, getOps: 10000, renewOps: 200, handoffs: 20, lockOps: 200, localHits: 20000}
	}
	return sizes{setOps: 2000, getOps: 100000, renewOps: 1000, handoffs: 200, lockOps: 2000, localHits: 200000}
}

// n scales a scenario's fixed size down in Tiny mode (tests).
func (e *Env) n(size int) int {
	if e.Tiny {
		return max(size/100, 10)
	}
	return size
}

// client opens a keyvalue handle on the environment's server.
func (e *Env) client(name string) (*keyvalue.Client, error) {
	cfg := e.Cfg
	cfg.Logger = quiet
	if name != "" {
		cfg.ClientName = name
	}
	return keyvalue.Open(cfg)
}

// name builds a cache/session/lock name inside the namespace.
func (e *Env) name(parts ...string) string {
	return e.NS + "-" + strings.Join(parts, "-")
}

// Scenarios returns every scenario, in report order.
func Scenarios() []Scenario {
	s := []Scenario{
		{Name: "bootstrap/11-caches", Unit: "µs", What: "open 11 named caches until ready for the first command",
			Baseline: naiveBootstrap, Keyvalue: kvBootstrap},
		{Name: "connect/backoff-2-failures", Unit: "ms", What: "reach a server that refuses the first two dials",
			Baseline: naiveBackoff, Keyvalue: kvBackoff},
	}
	for _, n := range []int{1, 5, 10, 20} {
		s = append(s, Scenario{Name: fmt.Sprintf("cache/set-%d-tag%s", n, plural(n)), Unit: "µs", What: fmt.Sprintf("one set with %d tag%s", n, plural(n)),
			Baseline: cacheSet(n, false), Keyvalue: cacheSet(n, true), Limit: setLimit(n)})
	}
	s = append(s,
		Scenario{Name: "cache/flush-by-tags-10", Unit: "ms", What: "flush 10 tags covering 1,000 entries", Baseline: flushByTagsN(1000, false), Keyvalue: flushByTagsN(1000, true), Limit: flushByTagsLimitN(1000)},
		Scenario{Name: "cache/flush-by-tags-100k", Unit: "ms", Large: true, What: "flush 10 tags covering 100,000 entries (linear growth from flush-by-tags-10?)",
			Baseline: flushByTagsN(100000, false), Keyvalue: flushByTagsN(100000, true), Limit: flushByTagsLimitN(100000)},
		Scenario{Name: "cache/flush-10k", Unit: "ms", What: "flush a cache of 10,000 entries", Baseline: flushAll(10000, false), Keyvalue: flushAll(10000, true), Limit: flushAllLimit(10000)},
		Scenario{Name: "cache/flush-stall-100k", Unit: "ms", What: "longest PING a second client sees while a 100,000-entry cache is flushed",
			Baseline: flushStall(false), Keyvalue: flushStall(true), LoopbackOnly: true, NoWarmUp: true},
		Scenario{Name: "cache/gc-5k", Unit: "ms", What: "garbage-collect 5,000 expired entries", Baseline: gc(false), Keyvalue: gc(true), QuickLoopbackOnly: true},
		Scenario{Name: "cache/get-parallel-64", Unit: "ops/s", Higher: true, What: "GET throughput with 64 goroutines", Baseline: getParallel(false), Keyvalue: getParallel(true), Limit: getParallelLimit},
		Scenario{Name: "cache/index-growth", Unit: "×", What: "tag index members per live entry after 5,000 short-lived entries expired, no GC",
			Baseline: indexGrowth(false), Keyvalue: indexGrowth(true), LoopbackOnly: true, NoWarmUp: true, Once: true},
		Scenario{Name: "cache/local-staleness", Unit: "µs", What: "another process serves a flushed entry from its local read cache for this long, p99 (max)",
			Keyvalue: localStaleness, NoBaseline: "the naive cache has no local read cache, so nothing can be stale in it"},
		Scenario{Name: "cache/stampede-64", Unit: "runs", What: "computations when 64 callers over 4 clients miss one key whose computation takes 50ms (callers' p99)",
			Baseline: stampede(false), Keyvalue: stampede(true)},
		Scenario{Name: "cache/swr-hit", Unit: "µs", What: "a read of a stale entry while it is revalidated in the background (baseline: a fresh hit, same API and background work)",
			Baseline: swrHit(false), Keyvalue: swrHit(true)},
		Scenario{Name: "cache/memory-per-entry", Unit: "B", What: "server memory per entry (INFO used_memory) for 20,000 entries of 200 bytes with 3 tags; limit: plain SET PX of the same payloads",
			Baseline: memoryPerEntry(false), Keyvalue: memoryPerEntry(true), Limit: memoryLimit, LoopbackOnly: true, NoWarmUp: true, Once: true},
		Scenario{Name: "cache/get-many-100", Unit: "µs", What: "read 100 entries of 512 bytes in one call (baseline: 100 GETs pipelined); limit: one MGET of 100 keys",
			Baseline: getMany(100, false), Keyvalue: getMany(100, true), Limit: getManyLimit(100)},
		Scenario{Name: "cache/get-local-hit", Unit: "ns", What: "GET served by the local read cache (baseline: a server GET)", Baseline: getLocal(false), Keyvalue: getLocal(true)},
		Scenario{Name: "session/getall-500", Unit: "ms", What: "list 500 sessions", Baseline: getAllN(500, false), Keyvalue: getAllN(500, true), Limit: getAllLimitN(500)},
		Scenario{Name: "session/getall-10k", Unit: "ms", Large: true, What: "list 10,000 sessions (linear growth from getall-500?)", Baseline: getAllN(10000, false), Keyvalue: getAllN(10000, true), Limit: getAllLimitN(10000)},
		Scenario{Name: "session/renew", Unit: "µs", What: "renew one session id", Baseline: renew(false), Keyvalue: renew(true), Limit: renewLimit},
		Scenario{Name: "lock/handoff", Unit: "µs", What: "release → a waiting process (its own client) acquires, p50 (p99)", Baseline: handoff(false), Keyvalue: handoff(true), Limit: pingLimit},
		Scenario{Name: "http/page-hit", Unit: "µs", What: "a 12 KB page through the httpcache middleware, a hit (baseline: the handler: one read + html/template), p50 (p99)",
			Baseline: pageHit(false), Keyvalue: pageHit(true), Limit: pageHitLimit},
		Scenario{Name: "http/purge-100", Unit: "ms", What: "purge a tag covering 100 cached pages (each then renders again: checked); limit: UNLINK of 100 keys",
			Keyvalue: purge100, Limit: purgeLimit, NoBaseline: "the naive page cache has no purge by tag (a page goes stale until its TTL ends)"},
		Scenario{Name: "lock/contended-8", Unit: "ops/s", Higher: true, What: "lock+unlock throughput, 8 contenders in one process (99th percentile of the wait)", Baseline: contended(false), Keyvalue: contended(true)},
		Scenario{Name: "lock/contended-2x4", Unit: "ops/s", Higher: true, What: "lock+unlock throughput, 4 contenders in each of two processes (99th percentile of the wait)", Baseline: contendedTwo(false), Keyvalue: contendedTwo(true)},
	)
	return s
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
