package lock

import "github.com/keyvalue-go/keyvalue"

// Permissions returns what locks need from the server's ACL (see
// keyvalue.Permissions): the keys of the named locks (kv:{l:NAME} and
// kv:{l:NAME}:*; every lock when no name is given) and the commands the
// locker and its scripts send. Options.WaitReplicas uses WAIT.
func Permissions(names ...string) keyvalue.Permissions {
	patterns := []string{"kv:{l:*"}
	name := "x"
	if len(names) > 0 {
		patterns = patterns[:0]
		for _, n := range names {
			patterns = append(patterns, "kv:{l:"+n+"}", "kv:{l:"+n+"}:*")
		}
		name = names[0]
	}
	k := "kv:{l:" + name + "}"
	c := keyvalue.Cmd
	return keyvalue.Permissions{
		Component:   "locks",
		KeyPatterns: patterns,
		Commands: []keyvalue.Command{
			c("get", k), c("set", k, "x", "PX", "1000"), c("del", k), c("exists", k), c("pexpire", k, "1000"),
			c("pexpireat", k+":r", "1"), c("pttl", k), c("incr", k+":f"),
			c("hset", k+":g", "t", "1"), c("hget", k+":g", "t"), c("hdel", k+":g", "t"),
			c("zadd", k+":qx", "1", "t"), c("zrem", k+":qx", "t"), c("zscore", k+":qx", "t"), c("zcard", k+":qx"),
			c("zcount", k+":r", "0", "+inf"), c("zrange", k+":qx", "0", "-1"), c("zrangebyscore", k+":qd", "-inf", "+inf"),
			c("zremrangebyscore", k+":r", "-inf", "0"),
			c("rpush", k+":w:t", "1"), c("lpop", k+":w:t"), c("blpop", k+":w:t", "1"),
			c("time"), c("wait", "1", "100"),
			// Names and List walk the keyspace.
			c("scan", "0", "MATCH", "kv:{l:*"),
		},
	}
}
