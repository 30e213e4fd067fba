// Package conf is the machinery behind keyvalue's configuration loaders:
// strict YAML/JSON decoding with errors that name the line and key, and
// "flat" keys (tls_ca_file) that address a struct's fields from URL query
// parameters and environment variables. The root package uses it for the
// connection (keyvalue.Config) and the cache package for named caches
// (cache.Spec); each turns the plain errors returned here into its own
// typed errors.
package conf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// DecodeStrict decodes a YAML or JSON document into v with unknown keys
// rejected. An empty document leaves v as it is. Errors carry the line and
// the dotted key, e.g.
// "line 3 (retry.base): cannot unmarshal !!str `soon` into time.Duration".
func DecodeStrict(doc []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(doc))
	dec.KnownFields(true)
	err := dec.Decode(v)
	if err == nil || errors.Is(err, io.EOF) {
		return nil
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
	return errors.New(msg)
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

// Field locates a struct's leaf field by its flat key.
type Field struct {
	Key   string // dotted key as in files: tls.ca_file
	Index []int  // for reflect.Value.FieldByIndex
}

// Fields maps the flat keys of struct type t (yaml names joined with "_",
// nested structs flattened, inline structs merged) to its leaf fields. Map
// fields are left out: their keys depend on the map's contents.
func Fields(t reflect.Type) map[string]Field {
	m := map[string]Field{}
	var walk func(t reflect.Type, prefixFlat, prefixDot string, index []int)
	walk = func(t reflect.Type, prefixFlat, prefixDot string, index []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			idx := append(slices.Clone(index), i)
			if opts == "inline" {
				walk(f.Type, prefixFlat, prefixDot, idx)
				continue
			}
			if name == "" || name == "-" || f.Type.Kind() == reflect.Map {
				continue
			}
			if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[time.Duration]() {
				walk(f.Type, prefixFlat+name+"_", prefixDot+name+".", idx)
				continue
			}
			m[prefixFlat+name] = Field{Key: prefixDot + name, Index: idx}
		}
	}
	walk(t, "", "", nil)
	return m
}

// Keys returns the flat keys of fields, sorted.
func Keys(fields map[string]Field) []string {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// SetText parses value into v (a duration, string, bool, int, comma-separated
// string list, or a pointer to one of those). The error says what is wrong
// with the value, without naming the key.
func SetText(v reflect.Value, value string) error {
	if v.Kind() == reflect.Pointer {
		p := reflect.New(v.Type().Elem())
		if err := SetText(p.Elem(), value); err != nil {
			return err
		}
		v.Set(p)
		return nil
	}
	switch {
	case v.Type() == reflect.TypeFor[time.Duration]():
		d, err := time.ParseDuration(value)
		if err != nil {
			return fmt.Errorf("%q is not a duration (examples: 250ms, 5s)", value)
		}
		v.SetInt(int64(d))
	case v.Kind() == reflect.String:
		v.SetString(value)
	case v.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(value)
		if err != nil {
			return fmt.Errorf("%q is not a boolean (true or false)", value)
		}
		v.SetBool(b)
	case v.Kind() == reflect.Int:
		n, err := strconv.Atoi(value)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", value)
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
		return errors.New("cannot be set from text")
	}
	return nil
}

// Var is one environment variable under a prefix.
type Var struct {
	Name  string // as set: KEYVALUE_TLS_CA_FILE
	Flat  string // the flat key it names: tls_ca_file
	Value string
}

// Env is the part of an environment under one prefix.
type Env struct {
	// File and URL are the values of PREFIX+CONFIG and PREFIX+URL.
	File, URL string
	// Vars are the other variables, sorted by name.
	Vars []Var
	// Found is true when any variable has the prefix.
	Found bool
}

// ReadEnv collects the variables of environ ("KEY=value" strings) that
// start with prefix.
func ReadEnv(environ []string, prefix string) Env {
	var e Env
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		rest, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		e.Found = true
		switch rest {
		case "CONFIG":
			e.File = v
		case "URL":
			e.URL = v
		default:
			e.Vars = append(e.Vars, Var{Name: k, Flat: strings.ToLower(rest), Value: v})
		}
	}
	slices.SortFunc(e.Vars, func(a, b Var) int { return strings.Compare(a.Name, b.Name) })
	return e
}

// Apply loads the environment: its base, the file (PREFIX+CONFIG) or the
// URL (PREFIX+URL) through file or url, then every other variable through
// set. both is the error for a file and a URL set together.
func (e Env) Apply(both error, file, url func(string) error, set func(Var) error) error {
	switch {
	case e.File != "" && e.URL != "":
		return both
	case e.File != "":
		if err := file(e.File); err != nil {
			return err
		}
	case e.URL != "":
		if err := url(e.URL); err != nil {
			return err
		}
	}
	for _, v := range e.Vars {
		if err := set(v); err != nil {
			return err
		}
	}
	return nil
}
