package servertest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Certs are PEM files generated for one test: a CA, a server certificate for
// 127.0.0.1/localhost, a client certificate from the same CA, and a client
// certificate from an unrelated CA (for "wrong CA" tests).
type Certs struct {
	Dir string
	CAFile,
	ServerCertFile, ServerKeyFile,
	ClientCertFile, ClientKeyFile,
	OtherCAFile, OtherClientCertFile, OtherClientKeyFile string
	// ExpiredServerCertFile is a server certificate from the CA that
	// expired a day ago (with ExpiredServerKeyFile).
	ExpiredServerCertFile, ExpiredServerKeyFile string
}

// ClientTLS returns a client TLS configuration trusting the CA and presenting
// the client certificate.
func (c *Certs) ClientTLS(t testing.TB) *tls.Config {
	t.Helper()
	conf, err := c.clientTLS()
	if err != nil {
		t.Fatal(err)
	}
	return conf
}

func (c *Certs) clientTLS() (*tls.Config, error) {
	pool := x509.NewCertPool()
	ca, err := os.ReadFile(c.CAFile)
	if err != nil {
		return nil, err
	}
	pool.AppendCertsFromPEM(ca)
	cert, err := tls.LoadX509KeyPair(c.ClientCertFile, c.ClientKeyFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// NewCerts generates the certificate set in a temporary directory.
func NewCerts(t testing.TB) *Certs {
	t.Helper()
	dir := t.TempDir()
	c := &Certs{Dir: dir}
	caKey, caCert := mustCA(t, "keyvalue test CA")
	c.CAFile = writePEM(t, dir, "ca.crt", "CERTIFICATE", caCert.Raw)
	c.ServerCertFile, c.ServerKeyFile = mustLeaf(t, dir, "server", caCert, caKey, x509.ExtKeyUsageServerAuth)
	c.ExpiredServerCertFile, c.ExpiredServerKeyFile = mustLeafValid(t, dir, "expired-server", caCert, caKey, x509.ExtKeyUsageServerAuth,
		time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour))
	c.ClientCertFile, c.ClientKeyFile = mustLeaf(t, dir, "client", caCert, caKey, x509.ExtKeyUsageClientAuth)
	otherKey, otherCert := mustCA(t, "unrelated CA")
	c.OtherCAFile = writePEM(t, dir, "other-ca.crt", "CERTIFICATE", otherCert.Raw)
	c.OtherClientCertFile, c.OtherClientKeyFile = mustLeaf(t, dir, "other-client", otherCert, otherKey, x509.ExtKeyUsageClientAuth)
	return c
}

func mustCA(t testing.TB, cn string) (*ecdsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, cert
}

func mustLeaf(t testing.TB, dir, name string, ca *x509.Certificate, caKey *ecdsa.PrivateKey, usage x509.ExtKeyUsage) (certFile, keyFile string) {
	t.Helper()
	return mustLeafValid(t, dir, name, ca, caKey, usage, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
}

func mustLeafValid(t testing.TB, dir, name string, ca *x509.Certificate, caKey *ecdsa.PrivateKey, usage x509.ExtKeyUsage, notBefore, notAfter time.Time) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return writePEM(t, dir, name+".crt", "CERTIFICATE", der), writePEM(t, dir, name+".key", "EC PRIVATE KEY", kder)
}

func serial(t testing.TB) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func writePEM(t testing.TB, dir, name, typ string, der []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
