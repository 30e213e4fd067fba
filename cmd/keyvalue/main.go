// Command keyvalue checks and exercises Redis/Valkey deployments with the
// keyvalue library:
//
//	keyvalue bench     side-by-side benchmark (keyvalue vs the naive baseline)
//	keyvalue doctor    diagnose a connection
//	keyvalue cache     flush, gc, stats of a named cache
//	keyvalue lock      list, show, release locks
//	keyvalue session   list, revoke, gc sessions
//
// The same command with the peer libraries in its benchmark is built from
// bench/cmd/keyvalue (make demo does that).
package main

import "github.com/keyvalue-go/keyvalue/internal/cli"

func main() { cli.Main() }
