package keyvalue

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"time"

	"github.com/valkey-io/valkey-go"
)

// clientOption translates a normalized Config into valkey-go options.
func clientOption(n Config, log *slog.Logger) (valkey.ClientOption, error) {
	dataTLS, err := newTLSSource(n.TLS, "tls", log)
	if err != nil {
		return valkey.ClientOption{}, err
	}
	var sentinelTLS *tlsSource
	if n.Mode == ModeSentinel {
		if sentinelTLS, err = newTLSSource(n.Sentinel.TLS, "sentinel.tls", log); err != nil {
			return valkey.ClientOption{}, err
		}
	}
	roles := &connRoles{}
	opt := valkey.ClientOption{
		InitAddress:       n.Addrs,
		Username:          n.Username,
		Password:          n.Password,
		ClientName:        n.ClientName,
		SelectDB:          n.DB,
		TLSConfig:         dataTLS.config(),
		Dialer:            net.Dialer{Timeout: n.DialTimeout, KeepAlive: n.HealthCheckInterval},
		ConnWriteTimeout:  n.IOTimeout,
		ConnLifetime:      n.ConnLifetime,
		PipelineMultiplex: n.PipelineMultiplex,
		BlockingPoolSize:  n.BlockingPoolSize,
		MaxFlushDelay:     n.MaxFlushDelay,
		DisableCache:      n.ClientCache.Disable,
		CacheSizeEachConn: n.ClientCache.SizePerConn,
		DisableRetry:      n.Retry.DisableCommandRetry,
	}
	if n.ReadFromReplicas {
		opt.SendToReplicas = func(cmd valkey.Completed) bool { return cmd.IsReadOnly() }
	}
	retry := n.Retry
	opt.RetryDelay = func(attempts int, _ valkey.Completed, err error) time.Duration {
		// attempts counts the tries made so far, starting at 1. A command
		// that got no reply at all (a cut or frozen network) is tried once
		// more, on a new connection, not MaxAttempts times: each try costs
		// up to dial_timeout + io_timeout.
		if attempts >= retry.MaxAttempts || attempts >= 2 && isTimeout(err) {
			return -1 // give up: the error reaches the caller
		}
		return retry.Delay(attempts, 0, nil)
	}
	// Every dial goes through one function: it takes the TLS configuration
	// from the files as they are now (rotated certificates), dials Unix
	// sockets, and tells the credentials function which connections go
	// to sentinels.
	socket := n.Mode == ModeStandalone && isSocketPath(n.Addrs[0])
	opt.DialCtxFn = func(ctx context.Context, addr string, d *net.Dialer, _ *tls.Config) (net.Conn, error) {
		toSentinel := n.Mode == ModeSentinel && d.FallbackDelay == sentinelDialMark
		src := dataTLS
		if toSentinel {
			src = sentinelTLS
		}
		var conn net.Conn
		var err error
		switch conf := src.config(); {
		case socket:
			conn, err = d.DialContext(ctx, "unix", addr)
		case conf != nil:
			conn, err = (&tls.Dialer{NetDialer: d, Config: conf}).DialContext(ctx, "tcp", addr)
		default:
			conn, err = d.DialContext(ctx, "tcp", addr)
		}
		if err == nil && toSentinel {
			roles.markSentinel(conn.RemoteAddr())
		}
		return conn, err
	}
	opt.AuthCredentialsFn = authFunc(n, roles)
	switch n.Mode {
	case ModeStandalone:
		opt.ForceSingleClient = true
		opt.Standalone.EnableRedirect = n.FollowRedirects
	case ModeSentinel:
		opt.Sentinel = valkey.SentinelOption{
			MasterSet:  n.Sentinel.Master,
			Username:   n.Sentinel.Username,
			Password:   n.Sentinel.Password,
			ClientName: n.ClientName,
			TLSConfig:  sentinelTLS.config(),
			Dialer:     net.Dialer{Timeout: n.DialTimeout, KeepAlive: n.HealthCheckInterval, FallbackDelay: sentinelDialMark},
			// Never valkey-go's own periodic refresh: see sentinel.go.
			TopologyRefreshInterval: 0,
		}
	case ModeCluster:
		opt.ClusterOption.ShardsRefreshInterval = 0 // refreshed on MOVED/ASK and node loss
	}
	return opt, nil
}
