package httpcache

import (
	"math"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
)

// outcome is what the middleware did with one request, decided where the
// decision is made. The Cache-Status header (RFC 9211) and the
// keyvalue.httpcache.requests metric are both rendered from it.
type outcome struct {
	hit       bool          // served from the cache
	fwd       string        // why the handler was called: uri-miss, vary-miss, stale, bypass, method; "" when it was not
	fwdStatus int           // the status of a response rendered for the cache; 0 for none
	collapsed bool          // served what another request rendered, after waiting for it
	stored    bool          // the rendered response was stored
	ttl       time.Duration // the served response's remaining freshness
	hasTTL    bool
	detail    string // an RFC 8941 token: why, e.g. stale-while-revalidate, unavailable, hit-for-pass
}

// hit is the outcome of a response served from the cache with left
// freshness remaining.
func hit(left time.Duration) outcome { return outcome{hit: true, ttl: left, hasTTL: true} }

// forwarded is the outcome of a request passed to the handler for fwd,
// with a detail saying why ("" for none).
func forwarded(fwd, detail string) outcome { return outcome{fwd: fwd, detail: detail} }

// params renders the outcome as Cache-Status parameters, e.g.
// "hit; ttl=42" or "fwd=uri-miss; fwd-status=200; stored".
func (o outcome) params() string {
	var parts []string
	if o.hit {
		parts = append(parts, "hit")
	}
	if o.fwd != "" {
		parts = append(parts, "fwd="+o.fwd)
	}
	if o.fwdStatus != 0 {
		parts = append(parts, "fwd-status="+strconv.Itoa(o.fwdStatus))
	}
	if o.collapsed {
		parts = append(parts, "collapsed")
	}
	if o.stored {
		parts = append(parts, "stored")
	}
	if o.hasTTL {
		// Whole seconds, negative once stale.
		parts = append(parts, "ttl="+strconv.FormatInt(int64(math.Floor(o.ttl.Seconds())), 10))
	}
	if o.detail != "" {
		parts = append(parts, "detail="+o.detail)
	}
	return strings.Join(parts, "; ")
}

// header is the Cache-Status value of the cache called name.
func (o outcome) header(name string) string { return name + "; " + o.params() }

// The values of keyvalue.httpcache.result, built once.
var (
	resultHit          = attribute.String("keyvalue.httpcache.result", "hit")
	resultStale        = attribute.String("keyvalue.httpcache.result", "stale")
	resultStaleIfError = attribute.String("keyvalue.httpcache.result", "stale_if_error")
	resultCollapsed    = attribute.String("keyvalue.httpcache.result", "collapsed")
	resultMiss         = attribute.String("keyvalue.httpcache.result", "miss")
	resultPass         = attribute.String("keyvalue.httpcache.result", "pass")
	resultMethod       = attribute.String("keyvalue.httpcache.result", "method")
	resultUnavailable  = attribute.String("keyvalue.httpcache.result", "unavailable")
)

// result classifies the outcome for the requests metric: unavailable (the
// cache could not be used), stale_if_error, stale (served stale while
// revalidating), collapsed (waited for another request's render), hit,
// method (an unsafe or uncacheable method), miss (rendered for the cache,
// stored or not) or pass (sent to the handler uncached for another reason).
func (o outcome) result() attribute.KeyValue {
	switch {
	case o.detail == "unavailable":
		return resultUnavailable
	case o.detail == "stale-if-error":
		return resultStaleIfError
	case o.detail == "stale-while-revalidate":
		return resultStale
	case o.hit && o.collapsed:
		return resultCollapsed
	case o.hit:
		return resultHit
	case o.fwd == "method":
		return resultMethod
	case o.fwdStatus != 0:
		return resultMiss
	}
	return resultPass
}
