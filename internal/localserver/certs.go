package localserver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Certs are PEM files generated on the fly: a CA, a server certificate for
// 127.0.0.1/localhost, a client certificate from the same CA, a client
// certificate from an unrelated CA (for "wrong CA" tests) and an expired
// server certificate. They are valid for a day.
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

// ClientTLS returns a client TLS configuration trusting the CA and
// presenting the client certificate.
func (c *Certs) ClientTLS() (*tls.Config, error) {
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

// ServerFiles names the files a TLS server starts with; mutual requires
// clients to present a certificate of the CA.
func (c *Certs) ServerFiles(mutual bool) *TLSFiles {
	return &TLSFiles{CertFile: c.ServerCertFile, KeyFile: c.ServerKeyFile, CAFile: c.CAFile, AuthClients: mutual}
}

// GenerateCerts writes the certificate set into dir.
func GenerateCerts(dir string) (*Certs, error) {
	g := &certGen{dir: dir}
	c := &Certs{Dir: dir}
	caKey, caCert := g.ca("keyvalue test CA")
	c.CAFile = g.pem("ca.crt", "CERTIFICATE", caCert.Raw)
	now := time.Now()
	c.ServerCertFile, c.ServerKeyFile = g.leaf("server", caCert, caKey, x509.ExtKeyUsageServerAuth, now.Add(-time.Hour), now.Add(24*time.Hour))
	c.ExpiredServerCertFile, c.ExpiredServerKeyFile = g.leaf("expired-server", caCert, caKey, x509.ExtKeyUsageServerAuth, now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	c.ClientCertFile, c.ClientKeyFile = g.leaf("client", caCert, caKey, x509.ExtKeyUsageClientAuth, now.Add(-time.Hour), now.Add(24*time.Hour))
	otherKey, otherCert := g.ca("unrelated CA")
	c.OtherCAFile = g.pem("other-ca.crt", "CERTIFICATE", otherCert.Raw)
	c.OtherClientCertFile, c.OtherClientKeyFile = g.leaf("other-client", otherCert, otherKey, x509.ExtKeyUsageClientAuth, now.Add(-time.Hour), now.Add(24*time.Hour))
	if g.err != nil {
		return nil, fmt.Errorf("localserver: generate certificates: %w", g.err)
	}
	return c, nil
}

// certGen keeps the first error of a sequence of steps.
type certGen struct {
	dir string
	err error
}

func (g *certGen) ca(cn string) (*ecdsa.PrivateKey, *x509.Certificate) {
	if g.err != nil {
		return nil, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		g.err = err
		return nil, nil
	}
	tmpl := &x509.Certificate{
		SerialNumber:          g.serial(),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		g.err = err
		return nil, nil
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		g.err = err
		return nil, nil
	}
	return key, cert
}

func (g *certGen) leaf(name string, ca *x509.Certificate, caKey *ecdsa.PrivateKey, usage x509.ExtKeyUsage, notBefore, notAfter time.Time) (certFile, keyFile string) {
	if g.err != nil {
		return "", ""
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		g.err = err
		return "", ""
	}
	tmpl := &x509.Certificate{
		SerialNumber: g.serial(),
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
		g.err = err
		return "", ""
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		g.err = err
		return "", ""
	}
	return g.pem(name+".crt", "CERTIFICATE", der), g.pem(name+".key", "EC PRIVATE KEY", kder)
}

func (g *certGen) serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil && g.err == nil {
		g.err = err
	}
	return n
}

func (g *certGen) pem(name, typ string, der []byte) string {
	if g.err != nil {
		return ""
	}
	p := filepath.Join(g.dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		g.err = err
	}
	return p
}
