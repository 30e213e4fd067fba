package cache_test

import (
	"os"
	"testing"

	"github.com/keyvalue-go/keyvalue/internal/testsupport/kvtest"
)

// TestMain starts the server the runnable examples find in KEYVALUE_URL,
// or, when the test binary is started as a helper process by a test
// (helperEnv), runs that helper instead.
func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(runHelper())
	}
	kvtest.RunWithExampleServer(m)
}
