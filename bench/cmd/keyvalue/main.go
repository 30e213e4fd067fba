// Command keyvalue is the keyvalue CLI with the peer libraries compiled
// into its benchmark (keyvalue bench then shows go-redis/cache, scs
// redisstore, redislock, redsync and valkeylock next to keyvalue and the
// baseline). It is built from bench/ so that those libraries stay out of
// keyvalue's own go.mod; make demo builds and runs it.
package main

import (
	"github.com/keyvalue-go/keyvalue/bench/peers"
	"github.com/keyvalue-go/keyvalue/internal/cli"
)

func main() { cli.Main(peers.All()...) }
