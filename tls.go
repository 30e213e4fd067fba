package keyvalue

import (
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"os"
)

// ClientConfig loads the files named by t into a *tls.Config for a client,
// as Open does (nil when TLS is disabled). Use it to reach the same servers
// with another TLS client, or to inspect the handshake (keyvalue doctor).
// It logs nothing; Open warns about InsecureSkipVerify.
func (t TLSConfig) ClientConfig() (*tls.Config, error) {
	if t.Enabled && t.MinVersion == "" {
		t.MinVersion = DefaultTLSMinVersion
	}
	if err := t.validate("tls"); err != nil {
		return nil, err
	}
	return t.build("tls", nil)
}

// build loads the certificates named by t. Errors name the key whose file is
// missing or unusable. It returns nil when TLS is disabled.
func (t TLSConfig) build(key string, log *slog.Logger) (*tls.Config, error) {
	if !t.Enabled {
		return nil, nil
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.MinVersion == "1.3" {
		conf.MinVersion = tls.VersionTLS13
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, cfgErr(key+".ca_file", "cannot read: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, cfgErr(key+".ca_file", "%s contains no PEM certificate", t.CAFile)
		}
		conf.RootCAs = pool
	}
	if t.CertFile != "" {
		for _, kf := range [][2]string{{key + ".cert_file", t.CertFile}, {key + ".key_file", t.KeyFile}} {
			if _, err := os.Stat(kf[1]); err != nil {
				return nil, cfgErr(kf[0], "cannot read: %v", err)
			}
		}
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, cfgErr(key+".cert_file", "cannot load the client certificate with %s.key_file: %v", key, err)
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	if t.InsecureSkipVerify {
		conf.InsecureSkipVerify = true
		if log != nil {
			log.Warn("keyvalue: " + key + ".insecure_skip_verify is on: server certificates are not verified; never use this in production")
		}
	}
	return conf, nil
}

// validate checks the TLS keys under key (tls or sentinel.tls).
func (t TLSConfig) validate(key string) error {
	if !t.Enabled {
		if t != (TLSConfig{}) {
			return cfgErr(key+".enabled", "is false but other %s keys are set: set %s.enabled: true (or use rediss://)", key, key)
		}
		return nil
	}
	switch t.MinVersion {
	case "1.2", "1.3":
	default:
		return cfgErr(key+".min_version", "%q is not supported: use 1.2 or 1.3", t.MinVersion)
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return cfgErr(key+".cert_file", "cert_file and key_file go together for mTLS: set both or neither")
	}
	return nil
}
