package cache

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/keyvalue-go/keyvalue"
)

// Set is an application's named caches, declared in one place: the
// caches section of a keyvalue.Config (file, URL or environment). Caches on
// the same server and database share one client.
type Set struct {
	backends map[string]*Backend
	codecs   map[string]Codec
	clients  []*keyvalue.Client
}

// Open opens every cache declared in cfg.Caches. It does no network I/O.
// Errors name the offending key, e.g. "caches.pages.compression".
func Open(cfg keyvalue.Config) (*Set, error) {
	if _, err := cfg.Normalize(); err != nil {
		return nil, err
	}
	s := &Set{backends: map[string]*Backend{}, codecs: map[string]Codec{}}
	for _, name := range slices.Sorted(maps.Keys(cfg.Caches)) {
		spec := cfg.Caches[name]
		opts, codec, err := OptionsFromSpec(name, spec)
		if err != nil {
			s.Close()
			return nil, err
		}
		opts.Logger = cfg.Logger
		conn := cfg
		conn.Caches = nil
		if spec.DB != nil {
			conn.DB = *spec.DB
		}
		client, err := keyvalue.Open(conn)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.clients = append(s.clients, client)
		b, err := New(client, name, opts)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.backends[name], s.codecs[name] = b, codec
	}
	return s, nil
}

// OptionsFromSpec validates a declared cache and returns its Options and
// the codec typed values are written with (JSON if none is named).
func OptionsFromSpec(name string, spec keyvalue.CacheSpec) (Options, Codec, error) {
	bad := func(key, format string, args ...any) error {
		return &keyvalue.ConfigError{Key: "caches." + name + "." + key, Msg: fmt.Sprintf(format, args...)}
	}
	if err := checkName(name); err != nil {
		return Options{}, nil, &keyvalue.ConfigError{Key: "caches." + name, Msg: err.Error()}
	}
	opts := Options{
		Compression:          Compression(spec.Compression),
		CompressionThreshold: spec.CompressionThreshold,
		MaxValueBytes:        spec.MaxValueBytes,
		LocalCacheTTL:        spec.LocalCacheTTL,
		BatchSize:            spec.BatchSize,
		Sharded:              spec.Sharded,
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

// Backend returns the declared cache called name.
func (s *Set) Backend(name string) (*Backend, error) {
	b, ok := s.backends[name]
	if !ok {
		return nil, fmt.Errorf("cache: no cache named %q is declared (declared: %v)", name, s.Names())
	}
	return b, nil
}

// Names lists the declared caches, sorted.
func (s *Set) Names() []string { return slices.Sorted(maps.Keys(s.backends)) }

// Codec returns the codec declared for name (JSON by default).
func (s *Set) Codec(name string) Codec { return s.codecs[name] }

// Close releases the caches' client handles.
func (s *Set) Close() {
	for _, c := range s.clients {
		c.Close()
	}
	s.clients = nil
}

// TypedFrom returns a typed view of the declared cache name, writing with
// its declared codec.
func TypedFrom[T any](s *Set, name string) (*Typed[T], error) {
	b, err := s.Backend(name)
	if err != nil {
		return nil, err
	}
	return NewTyped[T](b, s.codecs[name]), nil
}
