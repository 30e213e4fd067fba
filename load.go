package keyvalue

import (
	"fmt"
	"os"
	"reflect"
	"strings"

	"github.com/keyvalue-go/keyvalue/internal/conf"
)

// LoadFile reads a YAML or JSON file (JSON is read as YAML) into doc,
// which it fills afresh. Unknown keys are errors that name the key and
// line. It does not validate values: Open does.
//
//	var cfg keyvalue.Config   // or cache.Config, for a file with a caches: section
//	err := keyvalue.LoadFile("keyvalue.yaml", &cfg)
func LoadFile(path string, doc Document) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("keyvalue: read config: %w", err)
	}
	reset(doc)
	if err := conf.DecodeStrict(b, doc); err != nil {
		return fmt.Errorf("%w: %s: %s", ErrInvalidConfig, path, err)
	}
	return nil
}

// LoadBytes decodes a YAML or JSON document into doc, which it fills
// afresh, rejecting unknown keys. It does not validate values: Open does.
func LoadBytes(b []byte, doc Document) error {
	reset(doc)
	if err := conf.DecodeStrict(b, doc); err != nil {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, err)
	}
	return nil
}

// envPrefix starts every environment variable LoadEnv reads.
const envPrefix = "KEYVALUE_"

// LoadEnv fills doc afresh from environ ("KEY=value" strings; pass
// os.Environ()): KEYVALUE_CONFIG (a file, read with LoadFile) or
// KEYVALUE_URL (read with LoadURL; not both) as the base, then one
// variable per key, e.g. KEYVALUE_PASSWORD, KEYVALUE_TLS_CA_FILE,
// KEYVALUE_RETRY_MAX_ATTEMPTS (lists are comma-separated), each set with
// doc's SetKey: KEYVALUE_CACHES_PAGES_COMPRESSION sets a key of
// cache.Config. An unknown KEYVALUE_ variable is an error naming it, so
// typos do not go unnoticed. found is false, and doc is left as it was,
// when no KEYVALUE_ variable is set.
func LoadEnv(environ []string, doc Document) (found bool, err error) {
	env := conf.ReadEnv(environ, envPrefix)
	if !env.Found {
		return false, nil
	}
	reset(doc)
	err = env.Apply(errBothBases,
		func(path string) error { return LoadFile(path, doc) },
		func(url string) error { return LoadURL(url, doc) },
		func(v conf.Var) error { return renameKey(doc.SetKey(v.Flat, v.Value), v.Name) })
	return true, err
}

// errBothBases is the error for KEYVALUE_CONFIG and KEYVALUE_URL set
// together.
var errBothBases error = &ConfigError{Key: "KEYVALUE_URL", Msg: "set together with KEYVALUE_CONFIG: use one of them"}

// renameKey returns err with the key of a *ConfigError replaced by key
// (the environment variable the value came from); other errors, and nil,
// are returned as they are.
func renameKey(err error, key string) error {
	if ce, ok := err.(*ConfigError); ok {
		return &ConfigError{Key: key, Msg: ce.Msg}
	}
	return err
}

var flatFields = conf.Fields(reflect.TypeFor[Config]())

// flatKeys lists every key accepted as a URL query parameter (and,
// upper-cased behind KEYVALUE_, as an environment variable), sorted.
func flatKeys() []string { return conf.Keys(flatFields) }

// SetKey sets the field named by a flat key (the dotted key of files with
// "_" for ".", e.g. tls_ca_file) from its text form, as URL query
// parameters and environment variables do. Durations are Go durations,
// lists comma-separated. An unknown key or a bad value is a *ConfigError.
func (c *Config) SetKey(key, value string) error {
	f, ok := flatFields[key]
	if !ok {
		return cfgErr(key, "unknown key (known keys: %s)", strings.Join(flatKeys(), ", "))
	}
	if err := conf.SetText(reflect.ValueOf(c).Elem().FieldByIndex(f.Index), value); err != nil {
		return cfgErr(f.Key, "%v", err)
	}
	return nil
}
