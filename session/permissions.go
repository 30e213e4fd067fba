package session

import "github.com/keyvalue-go/keyvalue"

// Permissions returns what the session store with prefix needs from the
// server's ACL (see keyvalue.Permissions): its keys (kv:{s:PREFIX}:*) and
// the commands it and its scripts send. prefix may be a glob ("*": every
// store). Options.WaitReplicas adds WAIT.
func Permissions(prefix string) keyvalue.Permissions {
	p := "kv:{s:" + prefix + "}:"
	rec, idx, user := p+"x", p+"idx", p+"u:x"
	c := keyvalue.Cmd
	return keyvalue.Permissions{
		Component:   "sessions " + prefix,
		KeyPatterns: []string{p + "*"},
		Commands: []keyvalue.Command{
			c("get", rec), c("mget", rec), c("set", rec, "x", "PX", "1000"), c("del", rec), c("exists", rec), c("pttl", rec),
			c("zadd", idx, "1", "x"), c("zrem", idx, "x"), c("zscore", idx, "x"), c("zrange", user, "0", "-1"),
			c("zremrangebyscore", idx, "-inf", "0"), c("zcard", idx), c("zscan", idx, "0"), c("pexpireat", idx, "1"),
			c("time"), c("scan", "0", "MATCH", p+"u:*"), c("wait", "1", "100"),
		},
	}
}
