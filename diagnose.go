package keyvalue

import (
	"bufio"
	"context"
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

// Probe results that replace a dial error whose text does not say what is
// wrong (a reset, an EOF, a timeout).
var (
	errServerPlaintext = errors.New("the server answered a plaintext PING: it does not speak TLS on this port")
	errServerWantsTLS  = errors.New("the server accepted a TLS handshake: it expects TLS on this port")
)

// Turning a failed dial into a *ConnectError: diagnose probes the address
// again where the error hides a TLS mismatch, and classify names the kind
// of failure and what to change.

// diagnose probes addr once more when a dial failed in a way that usually
// hides a TLS mismatch, and returns a more telling error, or err itself.
//
//   - TLS on, connection reset/EOF: with TLS 1.3 a server rejects the client
//     certificate after the client considers the handshake done, so the
//     first write may see only a reset. Reading a reply surfaces the alert.
//   - TLS on, timeout: a plaintext server waits forever for the end of the
//     ClientHello "command". A plaintext PING tells.
//   - TLS off, reset/EOF: a TLS-only port drops plaintext. A TLS handshake tells.
func diagnose(ctx context.Context, addr string, timeout time.Duration, tlsConf *tls.Config, err error) error {
	reset := errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
	switch {
	case tlsConf != nil && reset:
		if perr := probe(ctx, addr, timeout, tlsConf); perr != nil && isTLSAlert(perr) {
			return perr
		}
	case tlsConf != nil && isTimeout(err):
		if probe(ctx, addr, min(timeout, time.Second), nil) == nil {
			return errServerPlaintext
		}
	case tlsConf == nil && reset:
		d := tls.Dialer{NetDialer: &net.Dialer{Timeout: min(timeout, time.Second)}, Config: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // probe only: no data is exchanged
		if c, derr := d.DialContext(ctx, "tcp", addr); derr == nil {
			c.Close()
			return errServerWantsTLS
		}
	}
	return err
}

// probe dials addr. With TLS it completes the handshake and waits briefly
// for the server's verdict on the client certificate (a TLS 1.3 server
// sends its alert right after the handshake; silence means accepted).
// Without TLS it sends PING and expects a RESP reply.
func probe(ctx context.Context, addr string, timeout time.Duration, tlsConf *tls.Config) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if tlsConf != nil {
		c, err := (&tls.Dialer{Config: tlsConf}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(min(timeout, 500*time.Millisecond)))
		if _, err := c.Read(make([]byte, 1)); err != nil && !isTimeout(err) {
			return err
		}
		return nil
	}
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line[0] != '+' && line[0] != '-' {
		return errors.New("not a RESP reply")
	}
	return nil
}

func isTLSAlert(err error) bool {
	var alert tls.AlertError
	return errors.As(err, &alert) || (err != nil && containsAny(err.Error(), "remote error: tls:", "x509:"))
}

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
	var tooOld errServerTooOld
	switch {
	case errors.As(err, &tooOld):
		ce.Kind, ce.Err = ErrServerVersion, tooOld.err
	case errors.As(err, &vkErr) && (strings.HasPrefix(msg, "WRONGPASS") || strings.HasPrefix(msg, "NOAUTH") || strings.Contains(msg, "invalid username-password")):
		ce.Kind, ce.Hint = ErrAuth, "check username and password (an ACL user needs both; password alone authenticates the default user)"
	case errors.As(err, &vkErr) && isPermissionReply(msg):
		what := "a command the connection needs"
		if m := deniedCommand.FindStringSubmatch(msg); m != nil {
			what = strings.ToUpper(strings.ReplaceAll(m[1], "|", " "))
		}
		ce.Kind, ce.Hint = ErrRejected, fmt.Sprintf("the ACL user may not run %s while connecting: grant what every connection needs (keyvalue acl prints the rules; see \"Least privilege\" in the README)", what)
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
