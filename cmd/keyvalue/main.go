// Command keyvalue checks and exercises Redis/Valkey deployments with the
// keyvalue library:
//
//	keyvalue bench     side-by-side benchmark: baseline, keyvalue and peer libraries
//	keyvalue doctor    diagnose a connection
//	keyvalue cache     flush, gc, stats of a named cache
//	keyvalue lock      list, show, release locks
//	keyvalue session   list, revoke, gc sessions
//
// It is its own module (cmd/keyvalue/go.mod), so that the CLI's framework
// and the peer libraries its benchmark compares with never enter the
// library's dependency list. Build it from a checkout with make build.
package main

import (
	"github.com/keyvalue-go/keyvalue/cmd/keyvalue/internal/cli"
	"github.com/keyvalue-go/keyvalue/cmd/keyvalue/internal/peers"
)

func main() { cli.Main(peers.All()...) }
