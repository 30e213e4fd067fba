package keyvalue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/valkey-io/valkey-go"
)

// The oldest servers keyvalue supports. Redis 7.0 brought PEXPIRE's NX and
// GT options, which the lock scripts use (ZRANGE BYSCORE, used by the cache
// and the session store, came with 6.2); Valkey began at 7.2, a fork of
// Redis 7.2. Tested: Redis 7.0 and Valkey 8.0.
const (
	MinRedisVersion  = "7.0"
	MinValkeyVersion = "7.2"
)

// ErrServerVersion matches the *ConnectError of a connection to a server
// older than MinRedisVersion or MinValkeyVersion: its message names the
// server's version and the minimum. It is permanent: upgrade the server.
var ErrServerVersion = errors.New("server version not supported")

// serverVersion is a server's product and version, from INFO server.
type serverVersion struct {
	product string // "Redis" or "Valkey"
	version string // as the server reports it, e.g. 7.0.15
}

// parseServerVersion reads INFO server's text: valkey_version (Valkey
// 7.2.5 and later) or server_name:valkey, else redis_version.
func parseServerVersion(info string) serverVersion {
	f := map[string]string{}
	for line := range strings.SplitSeq(info, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			f[k] = v
		}
	}
	switch {
	case f["valkey_version"] != "":
		return serverVersion{"Valkey", f["valkey_version"]}
	case f["server_name"] == "valkey":
		return serverVersion{"Valkey", f["redis_version"]}
	}
	return serverVersion{"Redis", f["redis_version"]}
}

// minimums are the oldest versions a client accepts, major.minor.
type minimums struct{ redis, valkey string }

// supported are MinRedisVersion and MinValkeyVersion (tests raise them to
// see the refusal on the servers they have).
var supported = minimums{MinRedisVersion, MinValkeyVersion}

// check returns an error naming the version and the minimum when the
// server is older than min, nil otherwise — also when the version cannot
// be read.
func (v serverVersion) check(min minimums) error {
	floor := min.redis
	if v.product == "Valkey" {
		floor = min.valkey
	}
	have, ok := majorMinor(v.version)
	want, _ := majorMinor(floor)
	if !ok || have[0] > want[0] || have[0] == want[0] && have[1] >= want[1] {
		return nil
	}
	return fmt.Errorf("%s %s; keyvalue needs Redis %s or later, or Valkey %s or later (its lock scripts use PEXPIRE NX/GT, new in Redis 7.0): upgrade the server",
		v.product, v.version, min.redis, min.valkey)
}

// majorMinor parses the first two numbers of a version such as 7.0.15.
func majorMinor(s string) ([2]int, bool) {
	parts := strings.SplitN(s, ".", 3)
	if len(parts) < 2 {
		return [2]int{}, false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	return [2]int{major, minor}, err1 == nil && err2 == nil
}

// errServerTooOld wraps the check's finding for classify.
type errServerTooOld struct{ err error }

func (e errServerTooOld) Error() string { return e.err.Error() }

// checkServer reads INFO server on a new connection and refuses a server
// older than the minimum. A server that refuses INFO (an ACL user without
// it, a managed service that renamed it) is not checked; an error reaching
// it is returned (the dial is retried).
func checkServer(ctx context.Context, c valkey.Client, min minimums) error {
	info, err := c.Do(ctx, c.B().Info().Section("server").Build()).ToString()
	if _, isReply := valkey.IsValkeyErr(err); isReply {
		return nil
	}
	if err != nil {
		return err
	}
	if err := parseServerVersion(info).check(min); err != nil {
		return errServerTooOld{err}
	}
	return nil
}
