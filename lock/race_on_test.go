//go:build race

package lock_test

// raceBuild shortens the history test under the race detector.
const raceBuild = true
