package servertest

import (
	"testing"

	"github.com/keyvalue-go/keyvalue/internal/localserver"
)

// Certs are the PEM files of localserver.GenerateCerts.
type Certs = localserver.Certs

// NewCerts generates the certificate set in a temporary directory.
func NewCerts(t testing.TB) *Certs {
	t.Helper()
	c, err := localserver.GenerateCerts(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return c
}
