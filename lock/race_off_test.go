//go:build !race

package lock_test

const raceBuild = false
