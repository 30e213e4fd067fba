package cache

import (
	"fmt"
	"maps"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/internal/conf"
)

// Spec declares one named cache in a configuration file, URL or the
// environment. Its keys in files are caches.NAME.KEY; in URLs
// caches_NAME_KEY; in the environment KEYVALUE_CACHES_NAME_KEY (NAME in
// lower case there). Open validates the values and turns them into Options.
type Spec struct {
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
	// Sharded spreads the cache over a Cluster's slots (Options.Sharded).
	Sharded bool `yaml:"sharded,omitempty" json:"sharded,omitempty"`
	// Degraded serves misses and drops writes while the server is down
	// (Options.Degraded).
	Degraded bool `yaml:"degraded,omitempty" json:"degraded,omitempty"`
	// MaxLoadTime bounds how long a GetOrSet computation may take and still
	// be stored (Options.MaxLoadTime).
	MaxLoadTime time.Duration `yaml:"max_load_time,omitempty" json:"max_load_time,omitempty"`
}

// Config is a connection and the named caches that use it: the document a
// service keeps in one file (the connection's keys at the top level, the
// caches under caches:), one URL or one environment.
type Config struct {
	keyvalue.Config `yaml:",inline"`
	// Caches declares the named caches, by name.
	Caches map[string]Spec `yaml:"caches,omitempty" json:"caches,omitempty"`
}

// LoadConfigFile reads a YAML or JSON file holding a connection and its
// caches. Unknown keys are errors that name the key and line.
func LoadConfigFile(path string) (Config, error) {
	return conf.LoadFile("cache", path, DecodeConfig)
}

// DecodeConfig decodes a YAML or JSON document into a Config, rejecting
// unknown keys. It does not validate: Open does.
func DecodeConfig(doc []byte) (Config, error) {
	var cfg Config
	if err := conf.DecodeStrict(doc, &cfg); err != nil {
		return Config{}, fmt.Errorf("%w: %s", keyvalue.ErrInvalidConfig, err)
	}
	return cfg, nil
}

// ParseURL is keyvalue.ParseURL with named caches as query parameters
// caches_NAME_KEY, e.g. redis://host/0?caches_pages_compression=zstd.
func ParseURL(raw string) (Config, error) {
	base, query, _ := strings.Cut(raw, "?")
	values, err := url.ParseQuery(query)
	if err != nil {
		return Config{}, fmt.Errorf("%w: URL query: %v", keyvalue.ErrInvalidConfig, err)
	}
	specs := url.Values{}
	for k, vs := range values {
		if strings.HasPrefix(k, "caches_") {
			specs[k] = vs
			values.Del(k)
		}
	}
	if len(values) > 0 {
		base += "?" + values.Encode()
	}
	var cfg Config
	if cfg.Config, err = keyvalue.ParseURL(base); err != nil {
		return Config{}, err
	}
	for _, k := range slices.Sorted(maps.Keys(specs)) {
		if err := cfg.SetKey(k, specs.Get(k)); err != nil {
			return Config{}, err
		}
	}
	return cfg, nil
}

// ConfigFromEnv is keyvalue.ConfigFromEnv with named caches:
// KEYVALUE_CONFIG may name a file with a caches section (read with
// LoadConfigFile), KEYVALUE_URL may carry caches_NAME_KEY parameters, and
// KEYVALUE_CACHES_NAME_KEY sets one key of one cache.
func ConfigFromEnv() (cfg Config, found bool, err error) {
	return ConfigFromEnviron(os.Environ())
}

// ConfigFromEnviron is ConfigFromEnv on a list of "KEY=value" strings.
func ConfigFromEnviron(environ []string) (cfg Config, found bool, err error) {
	env := conf.ReadEnv(environ, keyvalue.EnvPrefix)
	if !env.Found {
		return Config{}, false, nil
	}
	err = env.Apply(keyvalue.ErrBothBases,
		func(path string) (err error) { cfg, err = LoadConfigFile(path); return err },
		func(url string) (err error) { cfg, err = ParseURL(url); return err },
		func(v conf.Var) error { return keyvalue.RenameKey(cfg.SetKey(v.Flat, v.Value), v.Name) })
	if err != nil {
		return Config{}, true, err
	}
	return cfg, true, nil
}

var specFields = conf.Fields(reflect.TypeFor[Spec]())

// SetKey sets a connection key (see keyvalue.Config.SetKey) or a cache's
// key, caches_NAME_KEY (NAME may contain '_'), from its text form.
func (c *Config) SetKey(key, value string) error {
	rest, ok := strings.CutPrefix(key, "caches_")
	if !ok {
		return c.Config.SetKey(key, value)
	}
	keys := conf.Keys(specFields)
	// Longest key first, so a key that ends another one's name cannot match in its place.
	byLength := slices.Clone(keys)
	slices.SortStableFunc(byLength, func(a, b string) int { return len(b) - len(a) })
	for _, k := range byLength {
		name, ok := strings.CutSuffix(rest, "_"+k)
		if !ok || name == "" {
			continue
		}
		f := specFields[k]
		spec := c.Caches[name]
		if err := conf.SetText(reflect.ValueOf(&spec).Elem().FieldByIndex(f.Index), value); err != nil {
			return &keyvalue.ConfigError{Key: "caches." + name + "." + f.Key, Msg: err.Error()}
		}
		if c.Caches == nil {
			c.Caches = map[string]Spec{}
		}
		c.Caches[name] = spec
		return nil
	}
	return &keyvalue.ConfigError{Key: key, Msg: "unknown key: use caches_NAME_KEY with KEY one of " + strings.Join(keys, ", ")}
}

// OptionsFromSpec validates a declared cache and returns its Options and
// the codec typed values are written with (JSON if none is named). Errors
// are *keyvalue.ConfigError naming the key, e.g. caches.pages.compression.
func OptionsFromSpec(name string, spec Spec) (Options, Codec, error) {
	bad := func(key, format string, args ...any) error {
		return &keyvalue.ConfigError{Key: "caches." + name + "." + key, Msg: fmt.Sprintf(format, args...)}
	}
	if err := checkName(name); err != nil {
		return Options{}, nil, &keyvalue.ConfigError{Key: "caches." + name, Msg: err.Error()}
	}
	if spec.DB != nil && *spec.DB < 0 {
		return Options{}, nil, bad("db", "must not be negative, got %d", *spec.DB)
	}
	opts := Options{
		Compression:          Compression(spec.Compression),
		CompressionThreshold: spec.CompressionThreshold,
		MaxValueBytes:        spec.MaxValueBytes,
		LocalCacheTTL:        spec.LocalCacheTTL,
		BatchSize:            spec.BatchSize,
		Sharded:              spec.Sharded,
		Degraded:             spec.Degraded,
		MaxLoadTime:          spec.MaxLoadTime,
	}
	switch spec.DefaultLifetime {
	case "", "default":
	case "unlimited":
		opts.DefaultLifetime = Unlimited
	default:
		d, err := time.ParseDuration(spec.DefaultLifetime)
		if err != nil || d < time.Millisecond {
			return Options{}, nil, bad("default_lifetime", "%q is not a lifetime: use a duration such as 720h, or unlimited", spec.DefaultLifetime)
		}
		opts.DefaultLifetime = d
	}
	if opts.Compression == "" {
		opts.Compression = CompressionNone
	}
	if _, ok := compressionIDs[opts.Compression]; !ok {
		return Options{}, nil, bad("compression", "%q is not supported: use none, zstd or s2", spec.Compression)
	}
	for key, v := range map[string]int{"compression_threshold": spec.CompressionThreshold, "max_value_bytes": spec.MaxValueBytes, "batch_size": spec.BatchSize} {
		if v < 0 {
			return Options{}, nil, bad(key, "must not be negative, got %d", v)
		}
	}
	if spec.LocalCacheTTL < 0 {
		return Options{}, nil, bad("local_cache_ttl", "must not be negative, got %s", spec.LocalCacheTTL)
	}
	if spec.MaxLoadTime < 0 {
		return Options{}, nil, bad("max_load_time", "must not be negative, got %s", spec.MaxLoadTime)
	}
	codec := JSON
	if spec.Codec != "" {
		c, err := CodecByName(spec.Codec)
		if err != nil {
			return Options{}, nil, bad("codec", "%q is not a codec: use json, msgpack, gob, raw or one registered with RegisterCodec", spec.Codec)
		}
		codec = c
	}
	return opts, codec, nil
}
