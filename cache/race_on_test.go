//go:build race

package cache_test

// raceBuild is true under the race detector, which makes the fault tests
// about ten times slower. They then run a reduced set (stopped steps only,
// smaller fills); make test runs them a second time without the race
// detector at full size, including killed connections. Killed connections
// are left out here because valkey-go v1.0.79 recycles a read-only command
// it retried on a new connection while the dead connection's writer may
// still be reading it: a data race inside valkey-go on a connection that
// is already gone, which the race detector reports.
const raceBuild = true
