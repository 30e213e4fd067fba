package cache

import (
	"fmt"
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
// caches under caches:), one URL or one environment. It is a
// keyvalue.Document: load it with keyvalue.LoadFile, LoadBytes, LoadURL
// or LoadEnv, and open its caches with Open.
//
//	var cfg cache.Config
//	if _, err := keyvalue.LoadEnv(os.Environ(), &cfg); err != nil { ... } // KEYVALUE_CACHES_PAGES_COMPRESSION=zstd
//	group, err := cache.Open(cfg)
type Config struct {
	keyvalue.Config `yaml:",inline"`
	// Caches declares the named caches, by name.
	Caches map[string]Spec `yaml:"caches,omitempty" json:"caches,omitempty"`
}

var specFields = conf.Fields(reflect.TypeFor[Spec]())

// SetKey sets a connection key (see keyvalue.Config.SetKey) or a cache's
// key, caches_NAME_KEY (NAME may contain '_'), from its text form: the
// keyvalue loaders call it for URL query parameters and environment
// variables.
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

// options turns a declared cache into its Options and the codec typed
// values are written with (JSON if none is named). It converts what only
// a Spec has (a lifetime and a codec written as text); New checks the
// values, and Open names the key of a value New refuses.
func (spec Spec) options(name string) (Options, Codec, error) {
	bad := func(key, format string, args ...any) error {
		return &keyvalue.ConfigError{Key: "caches." + name + "." + key, Msg: fmt.Sprintf(format, args...)}
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

// specKeys maps an Options field to the key of the Spec field of the same
// name (Compression -> compression), to name the key of a value New refuses.
var specKeys = func() map[string]string {
	m := map[string]string{}
	t := reflect.TypeFor[Spec]()
	for i := range t.NumField() {
		key, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		m[t.Field(i).Name] = key
	}
	return m
}()
