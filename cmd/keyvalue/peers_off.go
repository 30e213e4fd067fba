//go:build !peers

package main

import "github.com/keyvalue-go/keyvalue/cmd/keyvalue/internal/benchrun"

// peerLibraries is empty without the build tag peers: the installed CLI
// does not link the libraries keyvalue bench compares with.
func peerLibraries() []benchrun.Peer { return nil }
