package cli

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/keyvalue-go/keyvalue/internal/testsupport/servertest"
)

func itoa(n int) string { return strconv.Itoa(n) }

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "keyvalue.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// startWithKey starts a server holding one unrelated key and returns its address.
func startWithKey(t *testing.T) string {
	t.Helper()
	s := servertest.Standalone(t)
	if _, err := s.Do("SET", "someone-elses", "data"); err != nil {
		t.Fatal(err)
	}
	return s.Addr()
}
