package httpcache

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/textproto"
	"strings"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Defaults for zero Options fields.
const (
	DefaultName          = "keyvalue"
	DefaultTagHeader     = "Surrogate-Key"
	DefaultMaxBodyBytes  = 1 << 20
	DefaultHitForPass    = 5 * time.Second
	DefaultLookupTimeout = 500 * time.Millisecond
)

// Options configure the middleware. The zero value follows RFC 9111 for a
// shared cache, stores nothing without explicit freshness, and reads tags
// from the Surrogate-Key response header.
type Options struct {
	// Name identifies this cache in the Cache-Status response header
	// (RFC 9211); default "keyvalue".
	Name string

	// Key returns the cache key of a request; nil means the default:
	// scheme, lower-cased host, escaped path and the query with its
	// parameters sorted and those named in IgnoreParams left out. The
	// method is not part of it: HEAD is served from the cached GET. Two
	// requests with the same key and the same values of the response's
	// Vary headers get the same response: if a handler's output depends on
	// anything else (a cookie, a header), it must say so with Vary or
	// Cache-Control: private, or the key must include it.
	Key func(r *http.Request) string
	// IgnoreParams are query parameters left out of the default key, e.g.
	// "utm_source"; a name ending in "*" matches every parameter it
	// prefixes ("utm_*").
	IgnoreParams []string

	// DefaultTTL is the freshness lifetime of a response that has no
	// explicit one (no max-age, s-maxage or Expires) and whose status is
	// cacheable by default (200, 203, 204, 300, 301, 308, 404, 405, 410,
	// 414, 501). 0 stores such responses not at all.
	DefaultTTL time.Duration
	// MaxTTL caps every freshness lifetime; 0 means no cap.
	MaxTTL time.Duration
	// StaleWhileRevalidate and StaleIfError (RFC 5861) apply to responses
	// that do not carry these directives themselves. must-revalidate,
	// proxy-revalidate and s-maxage turn both off for a response.
	StaleWhileRevalidate time.Duration
	StaleIfError         time.Duration

	// TagHeader is the response header a handler tags its response with
	// (space- or comma-separated surrogate keys); default "Surrogate-Key"
	// ("Cache-Tag" and "xkey" are other common names). It is removed
	// before the response reaches the client unless KeepTagHeader is set.
	TagHeader     string
	KeepTagHeader bool

	// StoreSetCookie stores responses that set cookies. Off by default:
	// a cookie meant for one client would be sent to every client.
	StoreSetCookie bool
	// MaxBodyBytes is the largest body stored; larger responses stream to
	// the client uncached. Default 1 MiB. The cache's own MaxValueBytes
	// (after compression) also applies.
	MaxBodyBytes int64
	// Lease is how long one request's claim to render a missing page for
	// every process lasts without being renewed; it is renewed every third
	// of Lease while the handler runs, so a render of any length is done
	// once (up to the backend's MaxLoadTime), and another request takes
	// over within Lease when the rendering process dies. Default
	// cache.DefaultLease (2s).
	Lease time.Duration
	// HitForPass is how long requests for a key whose last response could
	// not be stored (private, no-store, Set-Cookie, Vary: *, too large, no
	// freshness) go straight to the handler, instead of waiting for one
	// render at a time; default 5s, negative turns it off.
	HitForPass time.Duration
	// LookupTimeout bounds the first read of the cache: a server that does
	// not answer within it (frozen, unreachable) makes the request go to
	// the handler uncached; default 500ms.
	LookupTimeout time.Duration

	// MeterProvider and TracerProvider receive the middleware's metrics
	// (see "Observability" in the package doc); nil means OpenTelemetry's
	// global providers.
	MeterProvider  metric.MeterProvider
	TracerProvider trace.TracerProvider

	// Logger receives warnings (a response that could not be stored, the
	// server unreachable: at most one line per 10 seconds for those);
	// default slog.Default().
	Logger *slog.Logger
}

// ErrInvalidOptions matches the errors New returns for Options it cannot
// use.
var ErrInvalidOptions = errors.New("httpcache: invalid options")

// withDefaults validates o and fills in the defaults.
func (o Options) withDefaults() (Options, error) {
	bad := func(field string, v any, want string) error {
		return fmt.Errorf("%w: %s is %v; %s", ErrInvalidOptions, field, v, want)
	}
	for name, d := range map[string]time.Duration{
		"DefaultTTL": o.DefaultTTL, "MaxTTL": o.MaxTTL, "StaleWhileRevalidate": o.StaleWhileRevalidate,
		"StaleIfError": o.StaleIfError, "Lease": o.Lease, "LookupTimeout": o.LookupTimeout,
	} {
		if d < 0 {
			return o, bad(name, d, "use 0 for the default or a positive duration")
		}
	}
	if o.MaxBodyBytes < 0 {
		return o, bad("MaxBodyBytes", o.MaxBodyBytes, "use 0 for the default (1 MiB) or a positive size")
	}
	if o.Name == "" {
		o.Name = DefaultName
	}
	if o.TagHeader == "" {
		o.TagHeader = DefaultTagHeader
	}
	if !validFieldName(o.TagHeader) {
		return o, bad("TagHeader", fmt.Sprintf("%q", o.TagHeader), "want a header name such as Surrogate-Key")
	}
	o.TagHeader = textproto.CanonicalMIMEHeaderKey(o.TagHeader)
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.HitForPass == 0 {
		o.HitForPass = DefaultHitForPass
	}
	if o.LookupTimeout == 0 {
		o.LookupTimeout = DefaultLookupTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o, nil
}

// validFieldName reports whether s is an HTTP field name: a token of
// RFC 9110's tchar (golang.org/x/net/http/httpguts has the same check,
// but would bring golang.org/x/text into every binary for it).
func validFieldName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !alnum && !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}
