package keyvalue

import (
	"context"
	"errors"
	"net"
	"slices"
	"time"

	"github.com/valkey-io/valkey-go"
)

// Sentinel mode relies on valkey-go to follow a failover when the
// sentinels announce it (+switch-master). valkey-go's own periodic
// topology refresh is never turned on: in v1.0.79 it holds the client's
// lock while it sends ROLE, without a deadline, to the current primary; if
// that primary hangs (frozen, partitioned) instead of dying, the refresh
// blocks for as long as the primary does, and so does the handler of
// +switch-master and Close, so every command fails until the old primary
// resumes (and then acknowledges writes it will lose when it is demoted).
//
// Sentinel.RefreshInterval is implemented here instead: every interval a
// watcher asks the sentinels for the primary's address, with a deadline;
// if the client has not followed a change of primary one interval later,
// it dials a new client and replaces the stuck one (closed in the
// background, never waited for).

// watchSentinels runs until stop is closed.
func (s *lazy) watchSentinels(stop <-chan struct{}) {
	t := time.NewTicker(s.cfg.Sentinel.RefreshInterval)
	defer t.Stop()
	var behind int // consecutive checks that found the client on another primary
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		addr, err := s.askSentinels(stop)
		if err != nil {
			s.log.Debug("keyvalue: sentinel check failed", "error", err)
			continue
		}
		cp := s.client.Load()
		if cp == nil {
			continue
		}
		if _, on := (*cp).Nodes()[addr]; on {
			behind = 0
			continue
		}
		if behind++; behind < 2 {
			continue // give valkey-go one interval to follow +switch-master
		}
		behind = 0
		s.log.Warn("keyvalue: the client did not follow the sentinels to the new primary; reconnecting", "master", s.cfg.Sentinel.Master, "primary", addr)
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.DialTimeout)
		s.mu.Lock()
		opt := s.opt
		s.mu.Unlock()
		fresh, err := newClientCtx(ctx, opt)
		cancel()
		if err != nil {
			s.log.Warn("keyvalue: reconnecting to the new primary failed; will retry", "error", err)
			continue
		}
		s.mu.Lock()
		if s.closing.Err() != nil {
			s.mu.Unlock()
			go fresh.Close()
			return
		}
		old := s.client.Swap(&fresh)
		s.mu.Unlock()
		if old != nil {
			go (*old).Close() // may block on the hung server: never wait for it
		}
	}
}

// askSentinels returns the primary's address as the first sentinel that
// answers reports it, each asked with the dial timeout as deadline.
func (s *lazy) askSentinels(stop <-chan struct{}) (string, error) {
	var lastErr error
	for _, addr := range s.cfg.Addrs {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.DialTimeout)
		go func() {
			select {
			case <-stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		master, err := s.sentinelMaster(ctx, addr)
		cancel()
		if err == nil {
			return master, nil
		}
		lastErr = err
	}
	return "", lastErr
}

// sentinelMaster asks one sentinel for the primary's address.
func (s *lazy) sentinelMaster(ctx context.Context, addr string) (string, error) {
	s.mu.Lock()
	main := s.opt
	s.mu.Unlock()
	opt := valkey.ClientOption{
		InitAddress: []string{addr},
		Username:    s.cfg.Sentinel.Username,
		Password:    s.cfg.Sentinel.Password,
		// The client's own dial and credentials functions, for a sentinel
		// (the dialer's mark): the sentinels' TLS files as they are now,
		// SentinelConfig.Credentials.
		DialCtxFn:         main.DialCtxFn,
		AuthCredentialsFn: main.AuthCredentialsFn,
		TLSConfig:         main.Sentinel.TLSConfig,
		Dialer:            net.Dialer{Timeout: s.cfg.DialTimeout, FallbackDelay: sentinelDialMark},
		ConnWriteTimeout:  s.cfg.DialTimeout,
		ForceSingleClient: true,
		DisableCache:      true,
		DisableRetry:      true,
	}
	c, err := newClientCtx(ctx, opt)
	if err != nil {
		return "", err
	}
	defer c.Close()
	hp, err := c.Do(ctx, c.B().Arbitrary("SENTINEL", "GET-MASTER-ADDR-BY-NAME").Args(s.cfg.Sentinel.Master).Build()).AsStrSlice()
	if err != nil {
		return "", err
	}
	if len(hp) != 2 || slices.Contains(hp, "") {
		return "", errUnknownMasterReply
	}
	return net.JoinHostPort(hp[0], hp[1]), nil
}

// errUnknownMasterReply: a sentinel answered without an address.
var errUnknownMasterReply = errors.New("keyvalue: the sentinel does not know the master name")
