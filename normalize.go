package keyvalue

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Normalize returns a copy with defaults filled in and validated; the error
// names the first invalid key.
func (c Config) Normalize() (Config, error) {
	if c.Mode == "" {
		c.Mode = ModeStandalone
	}
	if c.Mode == ModeStandalone && len(c.Addrs) == 0 {
		c.Addrs = []string{DefaultAddr}
	}
	c.Addrs = slices.Clone(c.Addrs)
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.IOTimeout == 0 {
		c.IOTimeout = DefaultIOTimeout
	}
	if c.HealthCheckInterval == 0 {
		c.HealthCheckInterval = DefaultHealthCheckInterval
	}
	if c.Mode == ModeSentinel && c.Sentinel.RefreshInterval == 0 {
		c.Sentinel.RefreshInterval = DefaultSentinelRefreshInterval
	}
	if c.TLS.Enabled && c.TLS.MinVersion == "" {
		c.TLS.MinVersion = DefaultTLSMinVersion
	}
	if c.Sentinel.TLS.Enabled && c.Sentinel.TLS.MinVersion == "" {
		c.Sentinel.TLS.MinVersion = DefaultTLSMinVersion
	}
	if c.Retry.Jitter == "" {
		c.Retry.Jitter = JitterEqual
	}
	if c.Retry.Base == 0 {
		c.Retry.Base = DefaultRetryBase
	}
	if c.Retry.Cap == 0 {
		c.Retry.Cap = max(DefaultRetryCap, c.Retry.Base)
	}
	if c.Retry.MaxAttempts == 0 {
		c.Retry.MaxAttempts = DefaultRetryMaxAttempts
	}
	if c.PasswordFile != "" {
		if c.Password != "" {
			return c, cfgErr("password_file", "is set together with password: use one of them")
		}
		// Read here to fail at Open; every new connection reads it again.
		if _, err := readPasswordFile(c.PasswordFile); err != nil {
			return c, cfgErr("password_file", "%v", err)
		}
	}
	if c.Credentials != nil && (c.Username != "" || c.Password != "" || c.PasswordFile != "") {
		return c, cfgErr("password", "is set together with a credentials provider (Config.Credentials), which returns the username and password: use one of them")
	}
	if c.Sentinel.Credentials != nil && (c.Sentinel.Username != "" || c.Sentinel.Password != "") {
		return c, cfgErr("sentinel.password", "is set together with a sentinel credentials provider (SentinelConfig.Credentials): use one of them")
	}
	return c, c.validate()
}

func (c *Config) validate() error {
	switch c.Mode {
	case ModeStandalone, ModeSentinel, ModeCluster:
	default:
		return cfgErr("mode", "%q is not a mode: use standalone, sentinel or cluster", c.Mode)
	}
	if len(c.Addrs) == 0 {
		return cfgErr("addrs", "at least one host:port is required in %s mode", c.Mode)
	}
	if c.Mode == ModeStandalone && len(c.Addrs) > 1 {
		return cfgErr("addrs", "standalone mode takes exactly one address, got %d (use mode sentinel or cluster for several)", len(c.Addrs))
	}
	for i, a := range c.Addrs {
		if isSocketPath(a) {
			if c.Mode != ModeStandalone || c.TLS.Enabled {
				return cfgErr(fmt.Sprintf("addrs[%d]", i), "%q is a Unix socket: sockets serve standalone mode without TLS", a)
			}
			continue
		}
		if err := checkAddr(a); err != nil {
			return cfgErr(fmt.Sprintf("addrs[%d]", i), "%v", err)
		}
	}
	if c.DB < 0 {
		return cfgErr("db", "must not be negative, got %d", c.DB)
	}
	if c.Mode == ModeCluster && c.DB != 0 {
		return cfgErr("db", "must be 0 in cluster mode (a cluster has only database 0), got %d", c.DB)
	}
	if strings.ContainsAny(c.ClientName, " \t\r\n") {
		return cfgErr("client_name", "must not contain spaces (CLIENT SETNAME rejects them): %q", c.ClientName)
	}
	if c.Mode == ModeSentinel && c.Sentinel.Master == "" {
		return cfgErr("sentinel.master", "is required in sentinel mode: the name the sentinels monitor")
	}
	if c.Mode != ModeSentinel && !c.Sentinel.isZero() {
		return cfgErr("sentinel", "is set but mode is %s: set mode: sentinel or remove the sentinel section", c.Mode)
	}
	if err := c.TLS.validate("tls"); err != nil {
		return err
	}
	if err := c.Sentinel.TLS.validate("sentinel.tls"); err != nil {
		return err
	}
	if c.Sentinel.RefreshInterval < 0 {
		return cfgErr("sentinel.refresh_interval", "must not be negative")
	}
	for key, d := range map[string]time.Duration{"dial_timeout": c.DialTimeout, "io_timeout": c.IOTimeout, "health_check_interval": c.HealthCheckInterval, "conn_lifetime": c.ConnLifetime, "max_flush_delay": c.MaxFlushDelay} {
		if d < 0 {
			return cfgErr(key, "must not be negative, got %s", d)
		}
	}
	for key, d := range map[string]time.Duration{"dial_timeout": c.DialTimeout, "io_timeout": c.IOTimeout, "health_check_interval": c.HealthCheckInterval} {
		if d < time.Millisecond {
			return cfgErr(key, "is %s: use at least 1ms (a dial or a reply takes longer than that)", d)
		}
	}
	if c.FollowRedirects && c.Mode != ModeStandalone {
		return cfgErr("follow_redirects", "needs mode standalone (Sentinel and Cluster clients follow failovers themselves)")
	}
	if c.ReadFromReplicas && c.Mode == ModeStandalone {
		return cfgErr("read_from_replicas", "needs mode sentinel or cluster (a standalone address is one server)")
	}
	if c.PipelineMultiplex < 0 || c.PipelineMultiplex > 8 {
		return cfgErr("pipeline_multiplex", "must be between 0 and 8 (2^n connections), got %d", c.PipelineMultiplex)
	}
	if c.BlockingPoolSize < 0 {
		return cfgErr("blocking_pool_size", "must not be negative, got %d", c.BlockingPoolSize)
	}
	if c.ClientCache.SizePerConn < 0 {
		return cfgErr("client_cache.size_per_conn", "must not be negative, got %d", c.ClientCache.SizePerConn)
	}
	return c.Retry.validate()
}

func (r RetryConfig) validate() error {
	switch r.Jitter {
	case JitterEqual, JitterDecorrelated:
	default:
		return cfgErr("retry.jitter", "%q is not a jitter strategy: use equal or decorrelated", r.Jitter)
	}
	if r.Base < 0 {
		return cfgErr("retry.base", "must be positive, got %s", r.Base)
	}
	if r.Base > MaxRetryBase {
		return cfgErr("retry.base", "is %s: use at most %s (a first retry later than that looks like a typo)", r.Base, MaxRetryBase)
	}
	if r.Cap > MaxRetryCap {
		return cfgErr("retry.cap", "is %s: use at most %s", r.Cap, MaxRetryCap)
	}
	if r.Cap < r.Base {
		return cfgErr("retry.cap", "must be at least retry.base (%s), got %s", r.Base, r.Cap)
	}
	if r.MaxAttempts < 0 {
		return cfgErr("retry.max_attempts", "must be at least 1, got %d", r.MaxAttempts)
	}
	return nil
}

func checkAddr(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %v", a, err)
	}
	if host == "" {
		return fmt.Errorf("%q has no host", a)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("%q: port must be a number from 1 to 65535", a)
	}
	return nil
}

// isSocketPath reports whether an address is a Unix socket's path.
func isSocketPath(addr string) bool { return strings.HasPrefix(addr, "/") }
