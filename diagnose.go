package keyvalue

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"syscall"
	"time"
)

// Probe results that replace a dial error whose text does not say what is
// wrong (a reset, an EOF, a timeout).
var (
	errServerPlaintext = errors.New("the server answered a plaintext PING: it does not speak TLS on this port")
	errServerWantsTLS  = errors.New("the server accepted a TLS handshake: it expects TLS on this port")
)

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
