package httpcache

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pquerna/cachecontrol/cacheobject"
)

// Why a response was not stored. A "pass" reason concerns every request
// for the key (the next ones go straight to the handler for
// Options.HitForPass); the others concern this request or this moment.
type refusal struct {
	reason string
	pass   bool
}

// Statuses that may be stored. The first set is cacheable by default
// (RFC 9110, section 15.1) and takes Options.DefaultTTL without explicit
// freshness; the others only with explicit freshness. 206 (no range
// support) and 304 are never stored.
var (
	cacheableByDefault = map[int]bool{200: true, 203: true, 204: true, 300: true, 301: true, 308: true,
		404: true, 405: true, 410: true, 414: true, 501: true}
	cacheableExplicit = map[int]bool{302: true, 303: true, 307: true, 400: true, 403: true}
)

// freshness is what a stored response's reuse depends on.
type freshness struct {
	fresh      time.Duration // freshness lifetime
	age        time.Duration // corrected initial age (RFC 9111, section 4.2.3)
	swr, sie   time.Duration // stale-while-revalidate, stale-if-error windows
	revalidate bool          // must-revalidate, proxy-revalidate or s-maxage: never served stale
}

// keep is how long the cache must keep the response: until the end of its
// freshness and of its longest stale window.
func (f freshness) keep() time.Duration {
	return f.fresh + max(f.swr, f.sie) - f.age
}

// decide applies RFC 9111 (section 3, storing responses in a shared cache)
// to a response to r with status and header, received at now. It returns
// the response's freshness, or why it must not be stored.
func (c *Cache) decide(r *http.Request, status int, h http.Header, now time.Time) (freshness, *refusal) {
	if reqNoStore(r) {
		return freshness{}, &refusal{reason: "request no-store"}
	}
	if status >= 500 && !cacheableByDefault[status] {
		return freshness{}, &refusal{reason: "status " + strconv.Itoa(status)}
	}
	cc, err := cacheobject.ParseResponseCacheControl(strings.Join(h.Values("Cache-Control"), ", "))
	if err != nil {
		return freshness{}, &refusal{reason: "malformed Cache-Control", pass: true}
	}
	switch {
	case cc.NoStore:
		return freshness{}, &refusal{reason: "no-store", pass: true}
	case cc.PrivatePresent:
		return freshness{}, &refusal{reason: "private", pass: true}
	case cc.NoCachePresent:
		// Storable, but only to be revalidated on every use: no gain here.
		return freshness{}, &refusal{reason: "no-cache", pass: true}
	case r.Header.Get("Authorization") != "" && !cc.Public && cc.SMaxAge < 0 && !cc.MustRevalidate:
		return freshness{}, &refusal{reason: "authorization"}
	case len(h.Values("Set-Cookie")) > 0 && !c.opts.StoreSetCookie:
		return freshness{}, &refusal{reason: "set-cookie", pass: true}
	case varyAll(h):
		return freshness{}, &refusal{reason: "vary *", pass: true}
	case !cacheableByDefault[status] && !cacheableExplicit[status]:
		return freshness{}, &refusal{reason: "status " + strconv.Itoa(status), pass: true}
	}

	date := now
	if d, err := http.ParseTime(h.Get("Date")); err == nil {
		date = d
	}
	var f freshness
	switch {
	case cc.SMaxAge >= 0:
		f.fresh = seconds(cc.SMaxAge)
	case cc.MaxAge >= 0:
		f.fresh = seconds(cc.MaxAge)
	case h.Get("Expires") != "":
		if exp, err := http.ParseTime(h.Get("Expires")); err == nil {
			f.fresh = exp.Sub(date) // an invalid Expires means already expired
		}
	case cacheableByDefault[status] && c.opts.DefaultTTL > 0:
		f.fresh = c.opts.DefaultTTL
	default:
		return freshness{}, &refusal{reason: "no freshness information", pass: true}
	}
	if c.opts.MaxTTL > 0 {
		f.fresh = min(f.fresh, c.opts.MaxTTL)
	}
	f.revalidate = cc.MustRevalidate || cc.ProxyRevalidate || cc.SMaxAge >= 0
	if !f.revalidate {
		f.swr = window(cc.StaleWhileRevalidate, c.opts.StaleWhileRevalidate)
		f.sie = window(cc.StaleIfError, c.opts.StaleIfError)
	}
	// Corrected initial age: what the response had lived before it reached
	// this cache (an Age header from an upstream cache, or a Date in the
	// past).
	f.age = max(now.Sub(date), 0)
	if a, err := strconv.ParseInt(h.Get("Age"), 10, 32); err == nil && a > 0 {
		f.age = max(f.age, seconds(cacheobject.DeltaSeconds(a)))
	}
	if f.keep() < time.Millisecond {
		return freshness{}, &refusal{reason: "stale on arrival"}
	}
	return f, nil
}

func window(directive cacheobject.DeltaSeconds, fallback time.Duration) time.Duration {
	if directive >= 0 {
		return seconds(directive)
	}
	return fallback
}

func seconds(s cacheobject.DeltaSeconds) time.Duration { return time.Duration(s) * time.Second }

// reqNoStore reports whether the request says Cache-Control: no-store.
func reqNoStore(r *http.Request) bool {
	v := r.Header.Values("Cache-Control")
	if len(v) == 0 {
		return false
	}
	cc, err := cacheobject.ParseRequestCacheControl(strings.Join(v, ", "))
	return err == nil && cc.NoStore
}

func varyAll(h http.Header) bool {
	for _, name := range varyNames(h) {
		if name == "*" {
			return true
		}
	}
	return false
}

// varyNames returns the canonical, sorted, distinct field names listed in
// the Vary headers of h.
func varyNames(h http.Header) []string {
	var names []string
	for _, v := range h.Values("Vary") {
		for n := range strings.SplitSeq(v, ",") {
			n = strings.TrimSpace(n)
			if n == "" {
				continue
			}
			if n != "*" {
				n = http.CanonicalHeaderKey(n)
			}
			names = append(names, n)
		}
	}
	return sortedUnique(names)
}

func sortedUnique(s []string) []string {
	if len(s) < 2 {
		return s
	}
	m := make(map[string]struct{}, len(s))
	out := s[:0]
	for _, v := range s {
		if _, dup := m[v]; !dup {
			m[v] = struct{}{}
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return out
}
