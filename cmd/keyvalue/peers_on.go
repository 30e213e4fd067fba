//go:build peers

package main

import (
	"github.com/keyvalue-go/keyvalue/cmd/keyvalue/internal/benchrun"
	"github.com/keyvalue-go/keyvalue/cmd/keyvalue/internal/peers"
)

// peerLibraries are the peer libraries keyvalue bench compares with,
// linked in by the build tag peers.
func peerLibraries() []benchrun.Peer { return peers.All() }
