package keyvalue

import (
	"errors"
	"fmt"
	"strings"
)

// Errors callers branch on with errors.Is. Connection failures are reported
// as *ConnectError, which matches exactly one of ErrUnreachable, ErrTLS,
// ErrAuth, ErrUnknownMaster, ErrRejected or ErrServerVersion.
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
// Kind is one of ErrUnreachable, ErrTLS, ErrAuth, ErrUnknownMaster,
// ErrRejected or ErrServerVersion.
type ConnectError struct {
	Mode     Mode
	Addrs    []string
	Attempts int
	// Kind is ErrUnreachable, ErrTLS, ErrAuth, ErrUnknownMaster, ErrRejected or ErrServerVersion.
	Kind error
	// Err is the underlying error from the network, TLS stack or server.
	Err error
	// Hint says what to check or change.
	Hint string
	// lost: a command on an established connection got no reply or lost
	// its connection (rather than a dial failing).
	lost bool
}

// Error names the endpoint, the kind of failure, the attempts, the cause and the hint.
func (e *ConnectError) Error() string {
	verb := "connect to"
	if e.lost {
		verb = "no answer from"
	}
	s := fmt.Sprintf("keyvalue: %s %s %s: %v", verb, e.Mode, strings.Join(e.Addrs, ","), e.Kind)
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
