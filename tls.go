package keyvalue

import (
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"os"
	"sync"
	"time"
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

// tlsSource is the TLS configuration new connections use: built from the
// files of a TLSConfig, and built again when one of them changes (checked
// with a stat of each on every new connection), so a rotated certificate,
// key or CA is used without a restart. Files that fail to load (a
// certificate written before its key, say) leave the last good
// configuration in use; each such state is logged once.
type tlsSource struct {
	t   TLSConfig
	key string // tls or sentinel.tls, for errors and logs
	log *slog.Logger

	mu     sync.Mutex
	conf   *tls.Config
	loaded fileStamps // of the files conf was built from
	failed fileStamps // of the files whose failure was logged last
}

// fileStamps identify the versions of a TLS configuration's files.
type fileStamps [3]fileStamp

type fileStamp struct {
	size    int64
	modTime time.Time
	ok      bool
}

// newTLSSource builds the configuration of t (nil when TLS is off).
func newTLSSource(t TLSConfig, key string, log *slog.Logger) (*tlsSource, error) {
	if !t.Enabled {
		return nil, nil
	}
	conf, err := t.build(key, log)
	if err != nil {
		return nil, err
	}
	return &tlsSource{t: t, key: key, log: log, conf: conf, loaded: t.stamps()}, nil
}

func (t TLSConfig) stamps() fileStamps {
	var s fileStamps
	for i, path := range []string{t.CAFile, t.CertFile, t.KeyFile} {
		if path == "" {
			continue
		}
		if fi, err := os.Stat(path); err == nil {
			s[i] = fileStamp{size: fi.Size(), modTime: fi.ModTime(), ok: true}
		}
	}
	return s
}

// config returns the configuration for a new connection: nil when TLS is
// off, else the one built from the files as they are now if they load,
// or the last good one.
func (s *tlsSource) config() *tls.Config {
	if s == nil {
		return nil
	}
	now := s.t.stamps()
	s.mu.Lock()
	defer s.mu.Unlock()
	if now == s.loaded || now == s.failed {
		return s.conf
	}
	conf, err := s.t.build(s.key, nil)
	if err != nil {
		s.failed = now
		s.log.Warn("keyvalue: the TLS files changed but cannot be loaded (still being written?); new connections keep the previous certificates until they load",
			"config", s.key, "error", err)
		return s.conf
	}
	s.conf, s.loaded, s.failed = conf, now, fileStamps{}
	s.log.Info("keyvalue: TLS files reloaded; new connections use them", "config", s.key)
	return s.conf
}
