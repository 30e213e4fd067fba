package cache

import "github.com/keyvalue-go/keyvalue"

// Permissions returns what the cache called name needs from the server's
// ACL (see keyvalue.Permissions): its keys (kv:{c:NAME}:*, or kv:c:NAME:*
// in sharded mode) and the commands it and its scripts send. name may be a
// glob ("*": every cache). The httpcache middleware needs its backend's.
func Permissions(name string, sharded bool) keyvalue.Permissions {
	l := newLayout(nil, name, sharded)
	pattern := l.prefix() + "*"
	v, i, lease, wake := l.valueKey("x"), l.indexKey("t"), l.leaseKey("x"), l.wakeKey("x")
	c := keyvalue.Cmd
	return keyvalue.Permissions{
		Component:   "cache " + name,
		KeyPatterns: []string{pattern},
		Commands: []keyvalue.Command{
			// Values (Get, GetMany, Has, Set, Remove, Flush, Stats).
			c("get", v), c("mget", v), c("getrange", v, "0", "0"), c("set", v, "x", "PX", "1000"),
			c("exists", v), c("unlink", v), c("del", v), c("memory|usage", v),
			// Tag indexes and flush stamps (scripts, FlushByTags, GC).
			c("zadd", i, "1", "x"), c("zrem", i, "x"), c("zscore", i, "x"), c("zrange", i, "0", "-1"),
			c("zrangebyscore", i, "-inf", "+inf"), c("zremrangebyscore", i, "-inf", "0"), c("zscan", i, "0"),
			c("pexpire", i, "1000"), c("time"),
			// Operators' views (Inspect, IndexSizes, TagIndexes).
			c("zcard", i), c("pttl", v),
			// GetOrSet's leases and wake-ups.
			c("hset", lease, "o", "x"), c("hget", lease, "o"), c("hincrby", lease, "w", "1"), c("pttl", lease),
			c("rpush", wake, "1"), c("blpop", wake, "1"),
			// Flush and GC walk the keyspace; the eviction check reads INFO.
			c("scan", "0", "MATCH", pattern), c("role"), c("cluster|nodes"), c("info", "memory"),
		},
	}
}
