package keyvalue

import (
	"fmt"
	"os"
	"reflect"
	"strings"

	"github.com/keyvalue-go/keyvalue/internal/conf"
)

// LoadConfigFile reads a YAML or JSON configuration file (JSON is read as
// YAML). Unknown keys are errors that name the key and line. A file that
// also declares named caches is read with cache.LoadConfigFile.
func LoadConfigFile(path string) (Config, error) {
	return conf.LoadFile("keyvalue", path, DecodeConfig)
}

// DecodeConfig decodes a YAML or JSON document into a Config, rejecting
// unknown keys. It does not validate: call Normalize (Open does).
func DecodeConfig(doc []byte) (Config, error) {
	var cfg Config
	if err := conf.DecodeStrict(doc, &cfg); err != nil {
		return Config{}, fmt.Errorf("%w: %s", ErrInvalidConfig, err)
	}
	return cfg, nil
}

// EnvPrefix starts every environment variable ConfigFromEnv reads.
const EnvPrefix = "KEYVALUE_"

// ConfigFromEnv builds a Config from the environment: KEYVALUE_CONFIG (a
// file) or KEYVALUE_URL (not both) as the base, then one variable per key,
// e.g. KEYVALUE_PASSWORD, KEYVALUE_TLS_CA_FILE, KEYVALUE_RETRY_MAX_ATTEMPTS
// (lists are comma-separated). An unknown KEYVALUE_ variable is an error, so
// typos do not go unnoticed. found is false when no KEYVALUE_ variable is
// set. (cache.ConfigFromEnv reads the same variables plus named caches.)
func ConfigFromEnv() (cfg Config, found bool, err error) {
	return ConfigFromEnviron(os.Environ())
}

// ConfigFromEnviron is ConfigFromEnv on a list of "KEY=value" strings
// instead of the process environment.
func ConfigFromEnviron(environ []string) (cfg Config, found bool, err error) {
	env := conf.ReadEnv(environ, EnvPrefix)
	if !env.Found {
		return Config{}, false, nil
	}
	err = env.Apply(ErrBothBases,
		func(path string) (err error) { cfg, err = LoadConfigFile(path); return err },
		func(url string) (err error) { cfg, err = ParseURL(url); return err },
		func(v conf.Var) error { return RenameKey(cfg.SetKey(v.Flat, v.Value), v.Name) })
	if err != nil {
		return Config{}, true, err
	}
	return cfg, true, nil
}

// ErrBothBases is the error for KEYVALUE_CONFIG and KEYVALUE_URL set
// together.
var ErrBothBases error = &ConfigError{Key: "KEYVALUE_URL", Msg: "set together with KEYVALUE_CONFIG: use one of them"}

// RenameKey returns err with the key of a *ConfigError replaced by key
// (the environment variable the value came from, say); other errors, and
// nil, are returned as they are.
func RenameKey(err error, key string) error {
	if ce, ok := err.(*ConfigError); ok {
		return &ConfigError{Key: key, Msg: ce.Msg}
	}
	return err
}

var flatFields = conf.Fields(reflect.TypeFor[Config]())

// FlatKeys lists every key accepted as a URL query parameter (and, upper-cased
// behind KEYVALUE_, as an environment variable), sorted.
func FlatKeys() []string { return conf.Keys(flatFields) }

// SetKey sets the field named by a flat key (the dotted key of files with
// "_" for ".", e.g. tls_ca_file) from its text form, as URL query
// parameters and environment variables do. Durations are Go durations,
// lists comma-separated. An unknown key or a bad value is a *ConfigError.
func (c *Config) SetKey(key, value string) error {
	f, ok := flatFields[key]
	if !ok {
		return cfgErr(key, "unknown key (known keys: %s)", strings.Join(FlatKeys(), ", "))
	}
	if err := conf.SetText(reflect.ValueOf(c).Elem().FieldByIndex(f.Index), value); err != nil {
		return cfgErr(f.Key, "%v", err)
	}
	return nil
}
