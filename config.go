package keyvalue

import (
	"log/slog"
	"reflect"
	"time"
)

// Mode is the server topology a Config connects to.
type Mode string

// The topologies.
const (
	// ModeStandalone is one server (a primary, or any node reached directly).
	ModeStandalone Mode = "standalone"
	// ModeSentinel discovers the primary of Sentinel.Master through the
	// sentinels listed in Addrs and follows failovers.
	ModeSentinel Mode = "sentinel"
	// ModeCluster is a Redis/Valkey Cluster; Addrs are seed nodes.
	ModeCluster Mode = "cluster"
)

// Jitter names a backoff jitter strategy.
type Jitter string

// The jitter strategies (see https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/).
const (
	// JitterEqual waits half the exponential delay plus a random part of the other half.
	JitterEqual Jitter = "equal"
	// JitterDecorrelated waits a random time between Base and three times the previous delay.
	JitterDecorrelated Jitter = "decorrelated"
)

// Defaults applied by Config.Normalize to zero fields.
const (
	DefaultAddr                    = "127.0.0.1:6379"
	DefaultDialTimeout             = 5 * time.Second
	DefaultIOTimeout               = 10 * time.Second
	DefaultHealthCheckInterval     = time.Second
	DefaultSentinelRefreshInterval = 5 * time.Second
	DefaultRetryBase               = 10 * time.Millisecond
	DefaultRetryCap                = time.Second
	DefaultRetryMaxAttempts        = 5
	DefaultTLSMinVersion           = "1.2"
)

// Limits on the retry delays: a first retry after more than MaxRetryBase,
// or a delay over MaxRetryCap, leaves a caller without a deadline stuck.
const (
	MaxRetryBase = time.Minute
	MaxRetryCap  = 10 * time.Minute
)

// Config is the one place a connection is configured. The zero value
// connects to a standalone server at 127.0.0.1:6379 without TLS.
//
// It loads from Go code, a URL (LoadURL), a YAML or JSON file or document
// (LoadFile, LoadBytes) and environment variables (LoadEnv). Every field
// has a key: the yaml/json name in files, the same path joined with "_" as a
// URL query parameter (tls_ca_file) and, upper-cased behind KEYVALUE_, as an
// environment variable (KEYVALUE_TLS_CA_FILE). Durations are Go durations
// ("250ms", "5s").
type Config struct {
	// Mode is standalone (default), sentinel or cluster.
	Mode Mode `yaml:"mode,omitempty" json:"mode,omitempty"`
	// Addrs are host:port addresses: the server (standalone, exactly one),
	// the sentinels (sentinel), or seed nodes (cluster).
	Addrs []string `yaml:"addrs,omitempty" json:"addrs,omitempty"`
	// DB is the database number; Cluster only has database 0.
	DB int `yaml:"db,omitempty" json:"db,omitempty"`
	// Username and Password are ACL credentials (Password alone uses the default user).
	Username string `yaml:"username,omitempty" json:"username,omitempty"`
	Password string `yaml:"password,omitempty" json:"password,omitempty"`
	// PasswordFile names a file holding the password (Docker and Kubernetes
	// secrets: KEYVALUE_PASSWORD_FILE=/run/secrets/valkey); one trailing
	// newline is ignored. Open checks it can be read; every new connection
	// reads it again, so a rotated secret is used without a restart. It
	// excludes Password.
	PasswordFile string `yaml:"password_file,omitempty" json:"password_file,omitempty"`
	// Credentials, when set, is called for every new connection to a data
	// node (and at the ReauthAt of the credentials it returned), for
	// rotating secrets and short-lived tokens (IAM); it excludes Username,
	// Password and PasswordFile. See "Credentials" in the package doc for
	// ElastiCache IAM and Entra ID recipes. Not loadable from files.
	Credentials CredentialsProvider `yaml:"-" json:"-"`
	// ClientName is set with CLIENT SETNAME on every connection (no spaces).
	ClientName string `yaml:"client_name,omitempty" json:"client_name,omitempty"`

	// TLS secures connections to the data nodes.
	TLS TLSConfig `yaml:"tls,omitempty" json:"tls,omitempty"`
	// Sentinel configures Sentinel discovery (Mode sentinel).
	Sentinel SentinelConfig `yaml:"sentinel,omitempty" json:"sentinel,omitempty"`

	// DialTimeout bounds one TCP+TLS dial and handshake; default 5s.
	DialTimeout time.Duration `yaml:"dial_timeout,omitempty" json:"dial_timeout,omitempty"`
	// IOTimeout bounds how long a connection waits for a reply before it
	// is considered dead (valkey-go's ConnWriteTimeout); default 10s. A
	// call that gets no reply fails after it; see "Bounds" in the package
	// doc for what a call costs at most when the network is cut.
	IOTimeout time.Duration `yaml:"io_timeout,omitempty" json:"io_timeout,omitempty"`
	// HealthCheckInterval is how long a connection may stay idle before it
	// is checked with a PING (answered within IOTimeout, else the
	// connection is closed, and with it the local copies it holds for
	// client-side caching); it is also the TCP keep-alive period. A
	// connection that went silent — the network dropping packets without
	// closing it — is found dead within HealthCheckInterval + IOTimeout.
	// Default 1s.
	HealthCheckInterval time.Duration `yaml:"health_check_interval,omitempty" json:"health_check_interval,omitempty"`
	// ConnLifetime recycles pipelined connections after this long; 0 keeps them.
	ConnLifetime time.Duration `yaml:"conn_lifetime,omitempty" json:"conn_lifetime,omitempty"`
	// PipelineMultiplex: 2^n pipelined connections per node (0..8); 0 keeps
	// valkey-go's default (4 connections standalone/sentinel, 1 cluster).
	PipelineMultiplex int `yaml:"pipeline_multiplex,omitempty" json:"pipeline_multiplex,omitempty"`
	// BlockingPoolSize caps connections for blocking commands (BLPOP, used by locks); 0 = valkey-go's default (1000).
	BlockingPoolSize int `yaml:"blocking_pool_size,omitempty" json:"blocking_pool_size,omitempty"`
	// MaxFlushDelay lets the pipeline collect more commands per write, trading latency for CPU; 0 = off.
	MaxFlushDelay time.Duration `yaml:"max_flush_delay,omitempty" json:"max_flush_delay,omitempty"`

	// FollowRedirects (standalone mode, Valkey 8 and later) declares CLIENT
	// CAPA redirect: when the server it talks to is demoted to a replica, it
	// answers writes with a redirect to the new primary, and the client
	// follows it instead of failing with READONLY. A server without the
	// capability (Redis) is detected at connect time and the client carries
	// on without it (logged once).
	FollowRedirects bool `yaml:"follow_redirects,omitempty" json:"follow_redirects,omitempty"`

	// ReadFromReplicas sends read-only commands to replicas (Sentinel and
	// Cluster modes), trading read-your-writes for load on the primary.
	// Off by default: reads go to the primary.
	ReadFromReplicas bool `yaml:"read_from_replicas,omitempty" json:"read_from_replicas,omitempty"`

	// ClientCache configures server-assisted client-side caching.
	ClientCache ClientCacheConfig `yaml:"client_cache,omitempty" json:"client_cache,omitempty"`
	// Retry configures exponential backoff with jitter for dials and idempotent commands.
	Retry RetryConfig `yaml:"retry,omitempty" json:"retry,omitempty"`

	// Logger receives connection events (dial retries, fallbacks, TLS
	// warnings). Nil uses slog.Default(). Not loadable from files.
	Logger *slog.Logger `yaml:"-" json:"-"`
}

// TLSConfig configures TLS and mutual TLS.
type TLSConfig struct {
	// Enabled turns TLS on; rediss:// and valkeys:// URLs set it.
	Enabled bool `yaml:"enabled,omitempty" json:"enabled,omitempty"`
	// CAFile is a PEM bundle of CAs that sign the server certificate; empty uses the system roots.
	CAFile string `yaml:"ca_file,omitempty" json:"ca_file,omitempty"`
	// CertFile and KeyFile are the client certificate and key for mTLS (both or neither).
	CertFile string `yaml:"cert_file,omitempty" json:"cert_file,omitempty"`
	KeyFile  string `yaml:"key_file,omitempty" json:"key_file,omitempty"`
	// ServerName overrides the name verified in the server certificate (default: the host dialled).
	ServerName string `yaml:"server_name,omitempty" json:"server_name,omitempty"`
	// MinVersion is "1.2" (default) or "1.3".
	MinVersion string `yaml:"min_version,omitempty" json:"min_version,omitempty"`
	// InsecureSkipVerify disables certificate verification. Never use it in
	// production: it is logged as a warning on every Open.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify,omitempty" json:"insecure_skip_verify,omitempty"`
}

// SentinelConfig configures Sentinel discovery.
type SentinelConfig struct {
	// Master is the name the sentinels monitor (sentinel monitor NAME ...).
	Master string `yaml:"master,omitempty" json:"master,omitempty"`
	// Username and Password authenticate to the sentinels (not the data nodes).
	Username string `yaml:"username,omitempty" json:"username,omitempty"`
	Password string `yaml:"password,omitempty" json:"password,omitempty"`
	// Credentials, when set, is called for every new connection to a
	// sentinel instead of Username and Password. Not loadable from files.
	Credentials CredentialsProvider `yaml:"-" json:"-"`
	// TLS secures connections to the sentinels; it is separate from the data
	// nodes' TLS and is not inherited from it.
	TLS TLSConfig `yaml:"tls,omitempty" json:"tls,omitempty"`
	// RefreshInterval asks the sentinels for the primary periodically, in
	// addition to reacting to +switch-master events; default 5s.
	RefreshInterval time.Duration `yaml:"refresh_interval,omitempty" json:"refresh_interval,omitempty"`
}

// isZero reports whether nothing of the sentinel section is set.
func (s SentinelConfig) isZero() bool {
	return s.Master == "" && s.Username == "" && s.Password == "" && s.Credentials == nil &&
		s.TLS == (TLSConfig{}) && s.RefreshInterval == 0
}

// ClientCacheConfig configures server-assisted client-side caching (RESP3
// CLIENT TRACKING). Servers without tracking are detected at connect time and
// the client falls back to plain commands instead of failing.
type ClientCacheConfig struct {
	// Disable turns client-side caching off even where the server supports it.
	Disable bool `yaml:"disable,omitempty" json:"disable,omitempty"`
	// SizePerConn is the cache size in bytes for each connection; 0 = valkey-go's default (128 MiB).
	SizePerConn int `yaml:"size_per_conn,omitempty" json:"size_per_conn,omitempty"`
}

// RetryConfig is exponential backoff with jitter. It applies to
// establishing the connection (every failed dial, bounded by MaxAttempts and
// the caller's context) and to idempotent (read-only) commands that fail on
// a network error.
type RetryConfig struct {
	// Jitter is "equal" (default) or "decorrelated".
	Jitter Jitter `yaml:"jitter,omitempty" json:"jitter,omitempty"`
	// Base is the first delay; default 10ms.
	Base time.Duration `yaml:"base,omitempty" json:"base,omitempty"`
	// Cap is the largest delay; default 1s.
	Cap time.Duration `yaml:"cap,omitempty" json:"cap,omitempty"`
	// MaxAttempts bounds attempts (1 = no retry); default 5.
	MaxAttempts int `yaml:"max_attempts,omitempty" json:"max_attempts,omitempty"`
	// DisableCommandRetry stops valkey-go from retrying read-only commands.
	DisableCommandRetry bool `yaml:"disable_command_retry,omitempty" json:"disable_command_retry,omitempty"`
}

// A Document is what the loaders fill: a *Config, or a pointer to a struct
// of your own that embeds Config inline (`yaml:",inline"`) and declares
// more keys beside the connection's, as cache.Config declares named caches.
// All four loaders (LoadFile, LoadBytes, LoadURL, LoadEnv) take any
// Document, so a service keeps one file, one URL or one environment for
// its connection and everything configured with it.
//
// SetKey sets one flat key from text (a URL query parameter, or an
// environment variable without the KEYVALUE_ prefix, lower-cased); a
// document with keys of its own handles those and hands the rest to the
// embedded Config's SetKey. A document without a SetKey of its own gets
// Config's through the embedding: its extra keys are then read from files
// only.
type Document interface {
	SetKey(key, value string) error
	connection() *Config
}

// connection makes *Config (and every struct embedding Config) a Document.
func (c *Config) connection() *Config { return c }

// reset sets the document to its zero value: every loader fills a document
// afresh.
func reset(doc Document) {
	v := reflect.ValueOf(doc)
	if v.Kind() == reflect.Pointer && !v.IsNil() {
		v.Elem().SetZero()
	}
}
