// Package bench compares keyvalue with the Go libraries people use for the
// same jobs. It is its own module so that the peers (go-redis, redislock,
// redsync, go-redis/cache, scs) never enter keyvalue's dependency list.
//
// Run from the repository root:
//
//	make bench-peers
//
// Every benchmark starts its own throwaway server (internal/servertest) and
// runs all implementations against it in one run.
package bench
