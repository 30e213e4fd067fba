package httpcache_test

import (
	"testing"

	"github.com/keyvalue-go/keyvalue/internal/testsupport/kvtest"
)

// TestMain starts the server the runnable examples find in KEYVALUE_URL.
func TestMain(m *testing.M) { kvtest.RunWithExampleServer(m) }
