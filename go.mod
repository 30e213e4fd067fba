module github.com/keyvalue-go/keyvalue

go 1.26.8

require (
	github.com/valkey-io/valkey-go v1.0.79 // indirect
	golang.org/x/sys v0.47.0 // indirect
)
