package keyvalue

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/valkey-io/valkey-go"
)

// Errors callers branch on with errors.Is. Connection failures are reported
// as *ConnectError, which matches exactly one of ErrUnreachable, ErrTLS,
// ErrAuth or ErrUnknownMaster.
var (
	// ErrClosed is returned by a Client used after Close.
	ErrClosed = errors.New("keyvalue: client is closed")
	// ErrInvalidConfig matches every configuration error (see ConfigError).
	ErrInvalidConfig = errors.New("keyvalue: invalid configuration")
	// ErrUnreachable: nothing answered at the address, or the connection broke during the handshake.
	ErrUnreachable = errors.New("server unreachable")
	// ErrTLS: the TLS handshake failed (untrusted or mismatched certificate, client certificate rejected, server not speaking TLS).
	ErrTLS = errors.New("TLS handshake failed")
	// ErrAuth: the server rejected the credentials.
	ErrAuth = errors.New("authentication failed")
	// ErrUnknownMaster: the sentinels do not monitor the configured master name.
	ErrUnknownMaster = errors.New("sentinel does not know the master name")
	// ErrRejected: the server answered but refused the connection's set-up
	// (a database number it does not have, a sentinel URL pointed at a
	// data node, a cluster URL pointed at a server without cluster mode).
	ErrRejected = errors.New("server rejected the connection's set-up")
)

// ConnectError reports a connection that could not be established. Its
// Kind is one of ErrUnreachable, ErrTLS, ErrAuth, ErrUnknownMaster or
// ErrRejected.
type ConnectError struct {
	Mode     Mode
	Addrs    []string
	Attempts int
	// Kind is ErrUnreachable, ErrTLS, ErrAuth or ErrUnknownMaster.
	Kind error
	// Err is the underlying error from the network, TLS stack or server.
	Err error
	// Hint says what to check or change.
	Hint string
}

// Error names the endpoint, the kind of failure, the attempts, the cause and the hint.
func (e *ConnectError) Error() string {
	s := fmt.Sprintf("keyvalue: connect to %s %s: %v", e.Mode, strings.Join(e.Addrs, ","), e.Kind)
	if e.Attempts > 1 {
		s += fmt.Sprintf(" after %d attempts", e.Attempts)
	}
	s += fmt.Sprintf(": %v", e.Err)
	if e.Hint != "" {
		s += " — " + e.Hint
	}
	return s
}

// Unwrap exposes both Kind and the underlying error to errors.Is/As.
func (e *ConnectError) Unwrap() []error { return []error{e.Kind, e.Err} }

// Permanent reports whether retrying cannot help (bad credentials, TLS
// verification, unknown master): the configuration must change.
func (e *ConnectError) Permanent() bool { return e.Kind != ErrUnreachable }

// classify turns a dial error into a ConnectError with a hint.
func classify(cfg *Config, err error) *ConnectError {
	ce := &ConnectError{Mode: cfg.Mode, Addrs: cfg.Addrs, Attempts: 1, Err: err, Kind: ErrUnreachable}
	msg := err.Error()
	var (
		verr     *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostErr  x509.HostnameError
		invalid  x509.CertificateInvalidError
		recErr   tls.RecordHeaderError
		alertErr tls.AlertError
		vkErr    *valkey.ValkeyError
	)
	switch {
	case errors.As(err, &vkErr) && (strings.HasPrefix(msg, "WRONGPASS") || strings.HasPrefix(msg, "NOAUTH") || strings.Contains(msg, "invalid username-password")):
		ce.Kind, ce.Hint = ErrAuth, "check username and password (an ACL user needs both; password alone authenticates the default user)"
	case strings.Contains(msg, "DB index is out of range"), strings.Contains(msg, "invalid DB index"):
		ce.Kind, ce.Hint = ErrRejected, fmt.Sprintf("the server has no database %d: its 'databases' setting (default 16) limits db to 0..databases-1", cfg.DB)
	case cfg.Mode == ModeSentinel && containsAny(strings.ToLower(msg), "unknown command 'sentinel'", "unknown command `sentinel`", "unknown subcommand"):
		ce.Kind, ce.Hint = ErrRejected, "addrs answers but is not a sentinel: sentinel mode takes the sentinels' addresses (port 26379 by default), not the data nodes'"
	case errors.Is(err, errNotCluster):
		ce.Kind, ce.Hint = ErrRejected, "the server is not in cluster mode: use redis:// (mode standalone) or point addrs at cluster nodes"
	case cfg.Mode == ModeSentinel && (valkey.IsValkeyNil(err) || strings.Contains(msg, "No such master")):
		ce.Kind, ce.Hint = ErrUnknownMaster, fmt.Sprintf("the sentinels do not monitor a master named %q: check sentinel.master against 'SENTINEL MASTERS'", cfg.Sentinel.Master)
	case errors.Is(err, errServerPlaintext):
		ce.Kind, ce.Hint = ErrTLS, "use redis:// (tls.enabled: false) or the server's TLS port"
	case errors.Is(err, errServerWantsTLS):
		ce.Kind, ce.Hint = ErrTLS, "use rediss:// (tls.enabled: true) with tls.ca_file set to the CA that signed the server certificate"
	case errors.As(err, &hostErr):
		ce.Kind, ce.Hint = ErrTLS, "the server certificate does not name the host dialled: set tls.server_name to a name in the certificate"
	case errors.As(err, &invalid) && (invalid.Reason == x509.Expired), strings.Contains(msg, "certificate has expired"):
		ce.Kind, ce.Hint = ErrTLS, "the server certificate has expired or is not valid yet: renew it on the server (and check the clocks)"
	case strings.Contains(msg, "protocol version"):
		ce.Kind, ce.Hint = ErrTLS, "client and server share no TLS version: check tls.min_version against the server's tls-protocols"
	case errors.As(err, &unknown), errors.As(err, &verr), errors.As(err, &invalid), strings.Contains(msg, "x509:"):
		ce.Kind, ce.Hint = ErrTLS, "the server certificate is not trusted: set tls.ca_file to the CA that signed it"
	case errors.As(err, &recErr), strings.Contains(msg, "first record does not look like a TLS handshake"):
		ce.Kind, ce.Hint = ErrTLS, "the server does not speak TLS on this port: use redis:// (tls.enabled: false) or the server's TLS port"
	case errors.As(err, &alertErr), strings.Contains(msg, "remote error: tls:"):
		ce.Kind, ce.Hint = ErrTLS, "the server rejected the TLS handshake, usually the client certificate: set tls.cert_file and tls.key_file to a certificate signed by a CA the server trusts"
	case errors.Is(err, syscall.ECONNREFUSED):
		ce.Hint = "nothing listens there: is the server running, and are host and port right?"
	case isTimeout(err) && cfg.IOTimeout < cfg.DialTimeout && cfg.IOTimeout < 100*time.Millisecond:
		ce.Hint = fmt.Sprintf("no answer within io_timeout (%s), which is shorter than a round trip may take: raise io_timeout", cfg.IOTimeout)
	case isTimeout(err):
		ce.Hint = "no answer within dial_timeout: check the address, firewalls, and that the server is up"
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, net.ErrClosed):
		if cfg.Mode == ModeSentinel && !cfg.Sentinel.TLS.Enabled {
			ce.Hint = "the connection was closed during the handshake; if the sentinels expect TLS, set sentinel.tls.enabled (sentinel TLS is configured separately from tls)"
			break
		}
		if cfg.TLS.Enabled {
			ce.Hint = "the server closed the connection during the handshake"
		} else {
			ce.Hint = "the server closed the connection during the handshake; if it expects TLS, use rediss:// (tls.enabled: true)"
		}
	}
	return ce
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// ConfigError reports an invalid configuration value and names its key.
// It matches ErrInvalidConfig with errors.Is.
type ConfigError struct {
	Key string // the key as written in files, e.g. "tls.ca_file"
	Msg string
}

// Error names the key and what is wrong with its value.
func (e *ConfigError) Error() string {
	return fmt.Sprintf("keyvalue: config %s: %s", e.Key, e.Msg)
}

// Is makes errors.Is(err, ErrInvalidConfig) true.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

func cfgErr(key, format string, args ...any) error {
	return &ConfigError{Key: key, Msg: fmt.Sprintf(format, args...)}
}
