package httpcache

import (
	"bytes"
	"net/http"
	"strconv"
	"time"
)

// capture is the ResponseWriter a rendering handler writes to: it streams
// the response to the client (client; nil for a background refresh) and
// keeps a copy to store, as long as the response is storable.
type capture struct {
	c      *Cache
	client http.ResponseWriter
	req    *http.Request // the client's request (with its conditional headers)
	header http.Header

	wrote   bool
	status  int
	stored  http.Header // the response's header as the handler set it
	fresh   freshness
	refused *refusal
	tags    []string
	body    bytes.Buffer

	// What the client gets instead of the response being captured: a 304
	// (its conditional request matched), or the stale response
	// (stale-if-error), or nothing once it is gone.
	notModified   bool
	headerPending bool // decided, not yet sent to the client
	staleInstead  bool
	clientGone    bool
	// fallback is the stale response stale-if-error may serve.
	fallback *record
	leased   bool   // the render is stored (not: the cache is unavailable)
	status0  string // Cache-Status parameters of this render, e.g. "fwd=uri-miss"
}

func (cw *capture) Header() http.Header { return cw.header }

// WriteHeader decides, from the status and the header the handler set,
// whether the response is stored, what the client gets, and sends the
// client its header.
func (cw *capture) WriteHeader(status int) {
	if cw.wrote {
		return
	}
	if status >= 100 && status < 200 && status != http.StatusSwitchingProtocols {
		if cw.client != nil {
			copyHeader(cw.client.Header(), cw.header)
			cw.client.WriteHeader(status) // informational: passed on
		}
		return
	}
	cw.wrote = true
	cw.status = status
	now := time.Now()
	cw.tags = append(cw.tags, splitTags(cw.header.Values(cw.c.opts.TagHeader))...)
	cw.stored = cw.c.storedHeader(cw.header)
	if cw.stored.Get("Date") == "" {
		// The origination time, kept for every reuse (Go's server would
		// otherwise send each reuse's time).
		cw.stored.Set("Date", now.UTC().Format(http.TimeFormat))
	}
	cw.fresh, cw.refused = cw.c.decide(cw.req, status, cw.header, now)
	if cw.refused == nil && cw.header.Get("Content-Length") != "" {
		if n, err := strconv.ParseInt(cw.header.Get("Content-Length"), 10, 64); err == nil && n > cw.c.opts.MaxBodyBytes {
			cw.refused = &refusal{reason: "too large", pass: true}
		}
	}
	if cw.client == nil {
		return
	}
	if status >= 500 && cw.fallback != nil && cw.fallback.freshness().sie > 0 {
		cw.staleInstead = true
		return
	}
	cw.headerPending = true
}

// sendHeader sends the client its header, once: at the first write or
// flush of the body (so that a body over MaxBodyBytes in its first write
// is known as such), or when the handler returns.
func (cw *capture) sendHeader() {
	if !cw.headerPending {
		return
	}
	cw.headerPending = false
	h := cw.client.Header()
	copyHeader(h, cw.header)
	if !cw.c.opts.KeepTagHeader {
		h.Del(cw.c.opts.TagHeader)
	}
	status0 := cw.status0 + "; fwd-status=" + strconv.Itoa(cw.status)
	switch {
	case cw.refused == nil && cw.leased:
		status0 += "; stored"
	case cw.refused == nil:
		status0 += "; detail=unavailable"
	default:
		status0 += "; detail=" + token(cw.refused.reason)
	}
	h.Set("Cache-Status", cw.c.opts.Name+"; "+status0)
	if cw.status == http.StatusOK && cw.refused == nil && notModified(cw.req, cw.header) {
		cw.notModified = true
		toNotModified(h)
		cw.client.WriteHeader(http.StatusNotModified)
		return
	}
	cw.client.WriteHeader(cw.status)
}

func (cw *capture) Write(p []byte) (int, error) {
	if !cw.wrote {
		cw.WriteHeader(http.StatusOK)
	}
	if cw.refused == nil {
		if int64(cw.body.Len()+len(p)) > cw.c.opts.MaxBodyBytes {
			cw.refused = &refusal{reason: "too large", pass: true}
			cw.body = bytes.Buffer{}
		} else {
			cw.body.Write(p)
		}
	}
	if cw.client == nil || cw.staleInstead {
		return len(p), nil
	}
	cw.sendHeader()
	if cw.notModified || cw.clientGone {
		return len(p), nil
	}
	if _, err := cw.client.Write(p); err != nil {
		// The client left: the render goes on for the requests waiting
		// for it (if the handler does not stop on its context).
		cw.clientGone = true
	}
	return len(p), nil
}

// Flush sends what was written so far to the client, if it can be.
func (cw *capture) Flush() {
	if !cw.wrote {
		cw.WriteHeader(http.StatusOK)
	}
	if cw.client == nil || cw.staleInstead {
		return
	}
	cw.sendHeader()
	if cw.notModified || cw.clientGone {
		return
	}
	_ = http.NewResponseController(cw.client).Flush()
}

// complete reports whether the captured body is the whole response: as
// long as its Content-Length says, if it gave one.
func (cw *capture) complete() bool {
	cl := cw.header.Get("Content-Length")
	if cl == "" {
		return true
	}
	n, err := strconv.Atoi(cl)
	return err == nil && n == cw.body.Len()
}

func copyHeader(dst, src http.Header) {
	for k, v := range src {
		dst[k] = v
	}
}

// toNotModified leaves in h the fields a 304 response carries.
func toNotModified(h http.Header) {
	for _, f := range []string{"Content-Length", "Content-Type", "Content-Encoding", "Content-Range", "Transfer-Encoding"} {
		h.Del(f)
	}
}
