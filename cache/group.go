package cache

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/keyvalue-go/keyvalue"
)

// Group is an application's named caches, declared in one place (a
// Config's caches section) and opened together. Caches on the same
// database share one client; a cache declared with another database gets
// one client per database. The Group owns those clients: Close closes them.
type Group struct {
	backends map[string]*Backend
	codecs   map[string]Codec
	clients  []*keyvalue.Client
}

// Open opens every cache declared in cfg.Caches, one client per database
// they use (each opened with keyvalue.Open, which validates the
// connection). It does no network I/O. Errors name the offending key,
// e.g. "caches.pages.compression".
func Open(cfg Config) (*Group, error) {
	g := &Group{backends: map[string]*Backend{}, codecs: map[string]Codec{}}
	byDB := map[int]*keyvalue.Client{}
	for _, name := range slices.Sorted(maps.Keys(cfg.Caches)) {
		b, codec, err := g.open(cfg, name, byDB)
		if err != nil {
			g.Close()
			return nil, err
		}
		g.backends[name], g.codecs[name] = b, codec
	}
	return g, nil
}

// open opens the declared cache name on the client of its database
// (opening that client when it is the first cache there).
func (g *Group) open(cfg Config, name string, byDB map[int]*keyvalue.Client) (*Backend, Codec, error) {
	spec := cfg.Caches[name]
	opts, codec, err := spec.options(name)
	if err != nil {
		return nil, nil, err
	}
	opts.Logger = cfg.Logger
	db := cfg.DB
	if spec.DB != nil {
		db = *spec.DB
	}
	switch {
	case db < 0:
		return nil, nil, &keyvalue.ConfigError{Key: "caches." + name + ".db", Msg: fmt.Sprintf("must not be negative, got %d", db)}
	case db != 0 && cfg.Mode == keyvalue.ModeCluster:
		return nil, nil, &keyvalue.ConfigError{Key: "caches." + name + ".db", Msg: fmt.Sprintf("must be 0 in cluster mode (a cluster has only database 0), got %d", db)}
	}
	client, ok := byDB[db]
	if !ok {
		c := cfg.Config
		c.DB = db
		if client, err = keyvalue.Open(c); err != nil {
			return nil, nil, err
		}
		byDB[db] = client
		g.clients = append(g.clients, client)
	}
	b, err := New(client, name, opts)
	var oe *optionError
	var ie *InputError
	switch {
	case errors.As(err, &oe):
		return nil, nil, &keyvalue.ConfigError{Key: "caches." + name + "." + specKeys[oe.field], Msg: oe.msg}
	case errors.As(err, &ie):
		return nil, nil, &keyvalue.ConfigError{Key: "caches." + name, Msg: err.Error()}
	}
	return b, codec, err
}

// Backend returns the declared cache called name.
func (g *Group) Backend(name string) (*Backend, error) {
	b, ok := g.backends[name]
	if !ok {
		return nil, fmt.Errorf("cache: no cache named %q is declared (declared: %v)", name, g.Names())
	}
	return b, nil
}

// Names lists the declared caches, sorted.
func (g *Group) Names() []string { return slices.Sorted(maps.Keys(g.backends)) }

// Codec returns the codec declared for name (JSON by default).
func (g *Group) Codec(name string) Codec { return g.codecs[name] }

// Close closes the group's clients.
func (g *Group) Close() {
	for _, c := range g.clients {
		c.Close()
	}
	g.clients = nil
}

// TypedFrom returns a typed view of the declared cache name, writing with
// its declared codec.
func TypedFrom[T any](g *Group, name string) (*Typed[T], error) {
	b, err := g.Backend(name)
	if err != nil {
		return nil, err
	}
	return NewTyped[T](b, g.codecs[name]), nil
}
