package cache

import "time"

// SetShardedTestHooks installs the sharded-mode hooks and slack for one
// test and returns a function restoring the defaults.
func SetShardedTestHooks(set, flush func() error, slack time.Duration) (restore func()) {
	oldSet, oldFlush, oldSlack := shardedSetHook, shardedFlushHook, shardedSlack
	shardedSetHook, shardedFlushHook, shardedSlack = set, flush, slack
	return func() { shardedSetHook, shardedFlushHook, shardedSlack = oldSet, oldFlush, oldSlack }
}
