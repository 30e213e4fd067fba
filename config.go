package keyvalue

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
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
	DefaultSentinelRefreshInterval = 5 * time.Second
	DefaultRetryBase               = 10 * time.Millisecond
	DefaultRetryCap                = time.Second
	DefaultRetryMaxAttempts        = 5
	DefaultTLSMinVersion           = "1.2"
)

// Config is the one place a connection is configured. The zero value
// connects to a standalone server at 127.0.0.1:6379 without TLS.
//
// It loads from Go code, a URL (ParseURL), a YAML or JSON file
// (LoadConfigFile) and environment variables (ConfigFromEnv). Every field
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
	// ClientName is set with CLIENT SETNAME on every connection (no spaces).
	ClientName string `yaml:"client_name,omitempty" json:"client_name,omitempty"`

	// TLS secures connections to the data nodes.
	TLS TLSConfig `yaml:"tls,omitempty" json:"tls,omitempty"`
	// Sentinel configures Sentinel discovery (Mode sentinel).
	Sentinel SentinelConfig `yaml:"sentinel,omitempty" json:"sentinel,omitempty"`

	// DialTimeout bounds one TCP+TLS dial and handshake; default 5s.
	DialTimeout time.Duration `yaml:"dial_timeout,omitempty" json:"dial_timeout,omitempty"`
	// IOTimeout bounds how long a connection waits for replies before it is
	// considered dead (valkey-go's ConnWriteTimeout); default 10s.
	IOTimeout time.Duration `yaml:"io_timeout,omitempty" json:"io_timeout,omitempty"`
	// ConnLifetime recycles pipelined connections after this long; 0 keeps them.
	ConnLifetime time.Duration `yaml:"conn_lifetime,omitempty" json:"conn_lifetime,omitempty"`
	// PipelineMultiplex: 2^n pipelined connections per node (0..8); 0 keeps
	// valkey-go's default (4 connections standalone/sentinel, 1 cluster).
	PipelineMultiplex int `yaml:"pipeline_multiplex,omitempty" json:"pipeline_multiplex,omitempty"`
	// BlockingPoolSize caps connections for blocking commands (BLPOP, used by locks); 0 = valkey-go's default (1000).
	BlockingPoolSize int `yaml:"blocking_pool_size,omitempty" json:"blocking_pool_size,omitempty"`
	// MaxFlushDelay lets the pipeline collect more commands per write, trading latency for CPU; 0 = off.
	MaxFlushDelay time.Duration `yaml:"max_flush_delay,omitempty" json:"max_flush_delay,omitempty"`

	// ReadFromReplicas sends read-only commands to replicas (Sentinel and
	// Cluster modes), trading read-your-writes for load on the primary.
	// Off by default: reads go to the primary.
	ReadFromReplicas bool `yaml:"read_from_replicas,omitempty" json:"read_from_replicas,omitempty"`

	// ClientCache configures server-assisted client-side caching.
	ClientCache ClientCacheConfig `yaml:"client_cache,omitempty" json:"client_cache,omitempty"`
	// Retry configures exponential backoff with jitter for dials and idempotent commands.
	Retry RetryConfig `yaml:"retry,omitempty" json:"retry,omitempty"`

	// Caches declares an application's named caches next to the connection
	// they use (see the cache package's Open). It does not affect the
	// connection: handles differing only in Caches share one client.
	Caches map[string]CacheSpec `yaml:"caches,omitempty" json:"caches,omitempty"`

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
	// TLS secures connections to the sentinels; it is separate from the data
	// nodes' TLS and is not inherited from it.
	TLS TLSConfig `yaml:"tls,omitempty" json:"tls,omitempty"`
	// RefreshInterval re-reads the topology from the sentinels periodically in
	// addition to reacting to +switch-master events; default 5s.
	RefreshInterval time.Duration `yaml:"refresh_interval,omitempty" json:"refresh_interval,omitempty"`
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

// CacheSpec declares one named cache in a Config. Its keys in files are
// caches.NAME.KEY; in URLs caches_NAME_KEY; in the environment
// KEYVALUE_CACHES_NAME_KEY (NAME in lower case there). The cache package
// validates the values and turns them into cache.Options.
type CacheSpec struct {
	// DB uses another database of the same server for this cache (not on Cluster).
	DB *int `yaml:"db,omitempty" json:"db,omitempty"`
	// DefaultLifetime is a duration ("720h") or "unlimited"; empty means 1h.
	DefaultLifetime string `yaml:"default_lifetime,omitempty" json:"default_lifetime,omitempty"`
	// Codec is what typed values are written with: json, msgpack, gob or raw.
	Codec string `yaml:"codec,omitempty" json:"codec,omitempty"`
	// Compression is none, zstd or s2; CompressionThreshold is in bytes.
	Compression          string `yaml:"compression,omitempty" json:"compression,omitempty"`
	CompressionThreshold int    `yaml:"compression_threshold,omitempty" json:"compression_threshold,omitempty"`
	// MaxValueBytes bounds stored payloads.
	MaxValueBytes int `yaml:"max_value_bytes,omitempty" json:"max_value_bytes,omitempty"`
	// LocalCacheTTL enables the client-side read cache.
	LocalCacheTTL time.Duration `yaml:"local_cache_ttl,omitempty" json:"local_cache_ttl,omitempty"`
	// BatchSize is used by flush and garbage collection.
	BatchSize int `yaml:"batch_size,omitempty" json:"batch_size,omitempty"`
	// Sharded spreads the cache over a Cluster's slots (cache.Options.Sharded).
	Sharded bool `yaml:"sharded,omitempty" json:"sharded,omitempty"`
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
	if c.Mode != ModeSentinel && c.Sentinel != (SentinelConfig{}) {
		return cfgErr("sentinel", "is set but mode is %s: set mode: sentinel or remove the sentinel section", c.Mode)
	}
	for name, spec := range c.Caches {
		if spec.DB != nil && *spec.DB < 0 {
			return cfgErr("caches."+name+".db", "must not be negative, got %d", *spec.DB)
		}
		if spec.DB != nil && *spec.DB != 0 && c.Mode == ModeCluster {
			return cfgErr("caches."+name+".db", "must be 0 in cluster mode (a cluster has only database 0), got %d", *spec.DB)
		}
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
	for key, d := range map[string]time.Duration{"dial_timeout": c.DialTimeout, "io_timeout": c.IOTimeout, "conn_lifetime": c.ConnLifetime, "max_flush_delay": c.MaxFlushDelay} {
		if d < 0 {
			return cfgErr(key, "must not be negative, got %s", d)
		}
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

func (r RetryConfig) validate() error {
	switch r.Jitter {
	case JitterEqual, JitterDecorrelated:
	default:
		return cfgErr("retry.jitter", "%q is not a jitter strategy: use equal or decorrelated", r.Jitter)
	}
	if r.Base < 0 {
		return cfgErr("retry.base", "must be positive, got %s", r.Base)
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

// LoadConfigFile reads a YAML or JSON configuration file (JSON is read as
// YAML). Unknown keys are errors that name the key and line.
func LoadConfigFile(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("keyvalue: read config: %w", err)
	}
	cfg, err := DecodeConfig(b)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// DecodeConfig decodes a YAML or JSON document into a Config, rejecting
// unknown keys. It does not validate: call Normalize (Open does).
func DecodeConfig(doc []byte) (Config, error) {
	var cfg Config
	if err := decodeStrict(doc, &cfg); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// decodeStrict decodes YAML or JSON into v with unknown keys rejected.
// Errors carry the line and the dotted key, e.g.
// "line 3 (retry.base): cannot unmarshal !!str `soon` into time.Duration".
func decodeStrict(doc []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(doc))
	dec.KnownFields(true)
	err := dec.Decode(v)
	if err == nil || errors.Is(err, io.EOF) {
		return nil // an empty document means all defaults
	}
	msg := strings.TrimPrefix(strings.ReplaceAll(err.Error(), "\n ", ""), "yaml: ")
	var root yaml.Node
	if yaml.Unmarshal(doc, &root) == nil {
		keys := map[int]string{}
		keyLines(&root, "", keys)
		msg = lineRef.ReplaceAllStringFunc(msg, func(m string) string {
			n, _ := strconv.Atoi(strings.TrimPrefix(m, "line "))
			if k, ok := keys[n]; ok {
				return fmt.Sprintf("%s (%s)", m, k)
			}
			return m
		})
	}
	return fmt.Errorf("%w: %s", ErrInvalidConfig, msg)
}

var lineRef = regexp.MustCompile(`line [0-9]+`)

// keyLines maps each line holding a mapping key to its dotted path.
func keyLines(n *yaml.Node, prefix string, out map[int]string) {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			keyLines(c, prefix, out)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := prefix + n.Content[i].Value
			out[n.Content[i].Line] = k
			keyLines(n.Content[i+1], k+".", out)
		}
	}
}

// EnvPrefix starts every environment variable ConfigFromEnv reads.
const EnvPrefix = "KEYVALUE_"

// ConfigFromEnv builds a Config from the environment: KEYVALUE_CONFIG (a
// file) or KEYVALUE_URL (not both) as the base, then one variable per key,
// e.g. KEYVALUE_PASSWORD, KEYVALUE_TLS_CA_FILE, KEYVALUE_RETRY_MAX_ATTEMPTS
// (lists are comma-separated). An unknown KEYVALUE_ variable is an error, so
// typos do not go unnoticed. found is false when no KEYVALUE_ variable is set.
func ConfigFromEnv() (cfg Config, found bool, err error) {
	return configFromEnv(os.Environ())
}

func configFromEnv(environ []string) (cfg Config, found bool, err error) {
	vars := map[string]string{}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, EnvPrefix) {
			vars[k] = v
		}
	}
	if len(vars) == 0 {
		return Config{}, false, nil
	}
	file, url := vars[EnvPrefix+"CONFIG"], vars[EnvPrefix+"URL"]
	delete(vars, EnvPrefix+"CONFIG")
	delete(vars, EnvPrefix+"URL")
	switch {
	case file != "" && url != "":
		return Config{}, true, cfgErr("KEYVALUE_URL", "set together with KEYVALUE_CONFIG: use one of them")
	case file != "":
		if cfg, err = LoadConfigFile(file); err != nil {
			return Config{}, true, err
		}
	case url != "":
		if cfg, err = ParseURL(url); err != nil {
			return Config{}, true, err
		}
	}
	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		flat := strings.ToLower(strings.TrimPrefix(k, EnvPrefix))
		if err := setFlat(&cfg, flat, vars[k]); err != nil {
			if ce, ok := err.(*ConfigError); ok {
				ce.Key = k
			}
			return Config{}, true, err
		}
	}
	return cfg, true, nil
}

// flatField locates a Config leaf by its flat key (tls_ca_file).
type flatField struct {
	key   string // dotted key as in files: tls.ca_file
	index []int
}

var flatFields = flatFieldsOf(reflect.TypeFor[Config]())

// cacheSpecFields are CacheSpec's flat keys (caches_NAME_<key>).
var cacheSpecFields = flatFieldsOf(reflect.TypeFor[CacheSpec]())

func flatFieldsOf(root reflect.Type) map[string]flatField {
	m := map[string]flatField{}
	var walk func(t reflect.Type, prefixFlat, prefixDot string, index []int)
	walk = func(t reflect.Type, prefixFlat, prefixDot string, index []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			idx := append(slices.Clone(index), i)
			if f.Type.Kind() == reflect.Map {
				continue // caches: handled by setFlat
			}
			if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[time.Duration]() {
				walk(f.Type, prefixFlat+name+"_", prefixDot+name+".", idx)
				continue
			}
			m[prefixFlat+name] = flatField{key: prefixDot + name, index: idx}
		}
	}
	walk(root, "", "", nil)
	return m
}

// FlatKeys lists every key accepted as a URL query parameter (and, upper-cased
// behind KEYVALUE_, as an environment variable), sorted.
func FlatKeys() []string {
	keys := make([]string, 0, len(flatFields))
	for k := range flatFields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// setFlat sets the field named by a flat key from its text form.
func setFlat(cfg *Config, flat, value string) error {
	if rest, ok := strings.CutPrefix(flat, "caches_"); ok {
		return setCacheFlat(cfg, rest, value)
	}
	ff, ok := flatFields[flat]
	if !ok {
		return cfgErr(flat, "unknown key (known keys: %s, caches_NAME_KEY)", strings.Join(FlatKeys(), ", "))
	}
	return setField(reflect.ValueOf(cfg).Elem().FieldByIndex(ff.index), ff.key, value)
}

// setCacheFlat sets caches.NAME.KEY from "NAME_KEY" (NAME may contain '_').
func setCacheFlat(cfg *Config, rest, value string) error {
	keys := make([]string, 0, len(cacheSpecFields))
	for k := range cacheSpecFields {
		keys = append(keys, k)
	}
	// Longest key first, so a key that ends another one's name cannot match in its place.
	slices.SortFunc(keys, func(a, b string) int { return len(b) - len(a) })
	for _, key := range keys {
		ff := cacheSpecFields[key]
		name, ok := strings.CutSuffix(rest, "_"+key)
		if !ok || name == "" {
			continue
		}
		spec := cfg.Caches[name]
		if err := setField(reflect.ValueOf(&spec).Elem().FieldByIndex(ff.index), "caches."+name+"."+ff.key, value); err != nil {
			return err
		}
		if cfg.Caches == nil {
			cfg.Caches = map[string]CacheSpec{}
		}
		cfg.Caches[name] = spec
		return nil
	}
	slices.Sort(keys)
	return cfgErr("caches_"+rest, "unknown key: use caches_NAME_KEY with KEY one of %s", strings.Join(keys, ", "))
}

// setField parses value into v; key names the field in errors.
func setField(v reflect.Value, key, value string) error {
	if v.Kind() == reflect.Pointer {
		p := reflect.New(v.Type().Elem())
		if err := setField(p.Elem(), key, value); err != nil {
			return err
		}
		v.Set(p)
		return nil
	}
	ff := flatField{key: key}
	switch {
	case v.Type() == reflect.TypeFor[time.Duration]():
		d, err := time.ParseDuration(value)
		if err != nil {
			return cfgErr(ff.key, "%q is not a duration (examples: 250ms, 5s)", value)
		}
		v.SetInt(int64(d))
	case v.Kind() == reflect.String:
		v.SetString(value)
	case v.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(value)
		if err != nil {
			return cfgErr(ff.key, "%q is not a boolean (true or false)", value)
		}
		v.SetBool(b)
	case v.Kind() == reflect.Int:
		n, err := strconv.Atoi(value)
		if err != nil {
			return cfgErr(ff.key, "%q is not a whole number", value)
		}
		v.SetInt(int64(n))
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.String:
		var parts []string
		for p := range strings.SplitSeq(value, ",") {
			if p = strings.TrimSpace(p); p != "" {
				parts = append(parts, p)
			}
		}
		v.Set(reflect.ValueOf(parts))
	default:
		return cfgErr(ff.key, "cannot be set from text")
	}
	return nil
}
