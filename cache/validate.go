package cache

import (
	"errors"
	"fmt"
	"slices"
	"unicode"
	"unicode/utf8"
)

// Limits on names, ids and tags. Ids and tags are 1 to 250 bytes of valid
// UTF-8 without whitespace or control characters (the same rule as TYPO3's
// cache identifiers, with any other Unicode allowed). Cache names are 1 to
// 64 bytes of ASCII letters, digits, '_', '-' and '.', because they form
// the hash tag of every key.
const (
	MaxIDLength     = 250
	MaxTagLength    = 250
	MaxNameLength   = 64
	MaxTagsPerEntry = 1000
)

// Errors callers branch on with errors.Is. Input errors are *InputError
// values matching one of ErrInvalidName, ErrInvalidID, ErrInvalidTag,
// ErrInvalidLifetime or ErrTooLarge; nothing is written when one is returned.
var (
	ErrNotFound        = errors.New("entry not found")
	ErrInvalidName     = errors.New("invalid cache name")
	ErrInvalidID       = errors.New("invalid id")
	ErrInvalidTag      = errors.New("invalid tag")
	ErrInvalidLifetime = errors.New("invalid lifetime")
	ErrTooLarge        = errors.New("value too large")
)

// InputError reports an argument the cache refuses, and why.
type InputError struct {
	Cache  string
	Kind   error // ErrInvalidName, ErrInvalidID, ErrInvalidTag, ErrInvalidLifetime or ErrTooLarge
	Value  string
	Reason string
}

// Error names the cache, the kind of input, the value and the reason.
func (e *InputError) Error() string {
	v := e.Value
	if len(v) > 60 {
		v = v[:60] + "…"
	}
	if e.Cache == "" {
		return fmt.Sprintf("cache: %v %q: %s", e.Kind, v, e.Reason)
	}
	return fmt.Sprintf("cache %s: %v %q: %s", e.Cache, e.Kind, v, e.Reason)
}

// Unwrap returns the kind, for errors.Is.
func (e *InputError) Unwrap() error { return e.Kind }

// printableASCII reports whether s is only ASCII letters, digits and
// punctuation: the common case, accepted without decoding runes.
func printableASCII(s string) bool {
	for i := range len(s) {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// checkToken applies the id/tag rule.
func checkToken(s string, maxLen int) string {
	switch {
	case s == "":
		return "must not be empty"
	case len(s) > maxLen:
		return fmt.Sprintf("is %d bytes, over the %d-byte limit", len(s), maxLen)
	case printableASCII(s):
		return ""
	case !utf8.ValidString(s):
		return "is not valid UTF-8"
	}
	for i, r := range s {
		if unicode.IsSpace(r) {
			return fmt.Sprintf("contains whitespace (%U) at byte %d; use '_' or '-' instead", r, i)
		}
		if unicode.IsControl(r) || !unicode.IsPrint(r) {
			return fmt.Sprintf("contains the control character %U at byte %d", r, i)
		}
	}
	return ""
}

func checkName(name string) error {
	bad := func(reason string) error {
		return &InputError{Kind: ErrInvalidName, Value: name, Reason: reason}
	}
	if name == "" {
		return bad("must not be empty")
	}
	if len(name) > MaxNameLength {
		return bad(fmt.Sprintf("is %d bytes, over the %d-byte limit", len(name), MaxNameLength))
	}
	for i := range len(name) {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return bad(fmt.Sprintf("byte %d (%q) is not allowed: cache names use letters, digits, '_', '-' and '.', because they form the keys' hash tag", i, c))
		}
	}
	return nil
}

func (b *Backend) checkID(id string) error {
	if r := checkToken(id, MaxIDLength); r != "" {
		return &InputError{Cache: b.name, Kind: ErrInvalidID, Value: id, Reason: r}
	}
	return nil
}

func (b *Backend) checkTag(tag string) error {
	if r := checkToken(tag, MaxTagLength); r != "" {
		return &InputError{Cache: b.name, Kind: ErrInvalidTag, Value: tag, Reason: r}
	}
	return nil
}

// smallTagList is up to how many tags checkTags looks for duplicates by
// comparing each with the ones before it (no allocation) instead of with
// a set.
const smallTagList = 16

// checkTags validates tags and returns them without duplicates: tags
// itself when it has none and is short (callers only read the result).
func (b *Backend) checkTags(tags []string) ([]string, error) {
	if len(tags) > MaxTagsPerEntry {
		return nil, &InputError{Cache: b.name, Kind: ErrInvalidTag, Value: fmt.Sprintf("%d tags", len(tags)),
			Reason: fmt.Sprintf("an entry may have at most %d tags", MaxTagsPerEntry)}
	}
	dups := false
	for i, t := range tags {
		if err := b.checkTag(t); err != nil {
			return nil, err
		}
		dups = dups || len(tags) <= smallTagList && slices.Contains(tags[:i], t)
	}
	if len(tags) <= smallTagList && !dups {
		return tags, nil // the caller's slice: nothing here modifies it
	}
	seen := make(map[string]struct{}, len(tags))
	out := make([]string, 0, len(tags))
	for _, t := range tags {
		if _, dup := seen[t]; !dup {
			seen[t] = struct{}{}
			out = append(out, t)
		}
	}
	return out, nil
}
