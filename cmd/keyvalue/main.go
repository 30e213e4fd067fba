// Command keyvalue checks and operates Redis/Valkey deployments with the
// keyvalue library:
//
//	keyvalue bench     side-by-side benchmark: baseline, keyvalue, peer libraries and the limit
//	keyvalue doctor    diagnose a connection
//	keyvalue cache     flush, gc, stats of a named cache
//	keyvalue lock      list, show, release locks
//	keyvalue session   list, revoke, gc sessions
//	keyvalue version   the versions of keyvalue, Go and valkey-go in this binary
//
// Install it with
//
//	go install github.com/keyvalue-go/keyvalue/cmd/keyvalue@latest
//
// It is its own module (cmd/keyvalue/go.mod), so that the CLI's framework
// never enters the library's dependency list. The peer libraries that
// keyvalue bench compares with (go-redis/cache, scs's redisstore,
// redislock, redsync, valkeylock) are linked only with the build tag
// peers (go install -tags peers ..., or make build in a checkout); without
// it, bench compares keyvalue with the naive baseline and the limit.
package main

import "github.com/keyvalue-go/keyvalue/cmd/keyvalue/internal/cli"

func main() { cli.Main(peerLibraries()...) }
