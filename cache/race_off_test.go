//go:build !race

package cache_test

// raceBuild: see race_on_test.go.
const raceBuild = false
