package httpcache

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// What a cache entry holds.
const (
	kindResponse = 1 // a response
	kindVary     = 2 // the key's responses vary: they live under variant ids
	kindPass     = 3 // hit-for-pass: requests go to the handler for a while
)

// record is one cache entry's value, msgpack-encoded (the cache adds its
// header and compresses it when configured to).
type record struct {
	Kind   uint8       `msgpack:"k"`
	Key    string      `msgpack:"u"` // the full cache key: a hash collision is a miss
	Status int         `msgpack:"s,omitempty"`
	Header http.Header `msgpack:"h,omitempty"`
	Body   []byte      `msgpack:"b,omitempty"`
	Tags   []string    `msgpack:"t,omitempty"`
	// When it was received (Unix ms, the storing process's clock), its
	// corrected initial age and freshness lifetime (ms), and its stale
	// windows (ms).
	Received   int64 `msgpack:"r,omitempty"`
	Age        int64 `msgpack:"a,omitempty"`
	Fresh      int64 `msgpack:"f,omitempty"`
	SWR        int64 `msgpack:"w,omitempty"`
	SIE        int64 `msgpack:"e,omitempty"`
	Revalidate bool  `msgpack:"m,omitempty"`
	// A vary record: the header names responses vary by, and the
	// generation their variant ids are derived from (a new one when the
	// key's vary record is replaced, so older variants are not reached).
	Vary []string `msgpack:"v,omitempty"`
	Gen  string   `msgpack:"g,omitempty"`
}

func (rec *record) encode() ([]byte, error) { return msgpack.Marshal(rec) }

func decodeRecord(data []byte, key string) (*record, error) {
	rec := new(record)
	if err := msgpack.Unmarshal(data, rec); err != nil {
		return nil, fmt.Errorf("httpcache: undecodable entry: %w", err)
	}
	if rec.Key != key {
		return nil, fmt.Errorf("httpcache: entry for %q found under the id of %q", rec.Key, key)
	}
	if rec.Kind < kindResponse || rec.Kind > kindPass {
		return nil, fmt.Errorf("httpcache: entry of unknown kind %d", rec.Kind)
	}
	return rec, nil
}

func (rec *record) freshness() freshness {
	return freshness{fresh: ms(rec.Fresh), age: ms(rec.Age), swr: ms(rec.SWR), sie: ms(rec.SIE), revalidate: rec.Revalidate}
}

// currentAge is the response's age at now (RFC 9111, section 4.2.3).
func (rec *record) currentAge(now time.Time) time.Duration {
	return ms(rec.Age) + max(now.Sub(time.UnixMilli(rec.Received)), 0)
}

func ms(v int64) time.Duration { return time.Duration(v) * time.Millisecond }

// Header fields never stored: hop-by-hop fields (RFC 9110, section 7.6.1)
// and those the cache sets itself on every reuse.
var unstoredHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Age", "Cache-Status"}

// storedHeader returns the header fields of h worth storing.
func (c *Cache) storedHeader(h http.Header) http.Header {
	out := h.Clone()
	for _, f := range h.Values("Connection") {
		for name := range strings.SplitSeq(f, ",") {
			out.Del(strings.TrimSpace(name))
		}
	}
	for _, name := range unstoredHeaders {
		out.Del(name)
	}
	out.Del(c.opts.TagHeader)
	return out
}

// key returns the cache key of r: Options.Key, or the default.
func (c *Cache) key(r *http.Request) string {
	if c.opts.Key != nil {
		return c.opts.Key(r)
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	q := r.URL.Query()
	for name := range q {
		if c.ignored(name) {
			delete(q, name)
		}
	}
	return scheme + "://" + strings.ToLower(r.Host) + r.URL.EscapedPath() + "?" + q.Encode()
}

func (c *Cache) ignored(param string) bool {
	for _, p := range c.opts.IgnoreParams {
		if prefix, ok := strings.CutSuffix(p, "*"); ok && strings.HasPrefix(param, prefix) || p == param {
			return true
		}
	}
	return false
}

// entryID is the cache id of key: a hash, as keys may be long and hold
// any byte; the record carries the key itself.
func entryID(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "http:" + hex.EncodeToString(sum[:16])
}

// variantID is the cache id of the variant of key selected by r's values
// of the vary record's headers.
func variantID(key string, vary *record, r *http.Request) string {
	var b strings.Builder
	b.WriteString(key)
	b.WriteString("\x00")
	b.WriteString(vary.Gen)
	for _, name := range vary.Vary {
		values := r.Header.Values(name)
		b.WriteString("\x00")
		b.WriteString(name)
		b.WriteString(":")
		b.WriteString(url.QueryEscape(strings.Join(values, ",")))
	}
	return entryID(b.String())
}

// sameVary reports whether a vary record lists exactly names.
func sameVary(vary *record, names []string) bool { return slices.Equal(vary.Vary, names) }
