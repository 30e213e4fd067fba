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
	q      *request // q.w is the client (nil for a background refresh); q.r has its conditional headers
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
	leased   bool    // the render is stored (not: the cache is unavailable)
	out      outcome // this render's outcome: fwd set, the rest decided by sendHeader
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
		if cw.q.w != nil {
			copyHeader(cw.q.w.Header(), cw.header)
			cw.q.w.WriteHeader(status) // informational: passed on
		}
		return
	}
	cw.wrote = true
	cw.status = status
	now := time.Now()
	cw.tags = append(cw.tags, splitTags(cw.header.Values(cw.q.c.opts.TagHeader))...)
	cw.stored = cw.q.c.storedHeader(cw.header)
	if cw.stored.Get("Date") == "" {
		// The origination time, kept for every reuse (Go's server would
		// otherwise send each reuse's time).
		cw.stored.Set("Date", now.UTC().Format(http.TimeFormat))
	}
	cw.fresh, cw.refused = cw.q.c.decide(cw.q.r, status, cw.header, now)
	if cw.refused == nil && cw.header.Get("Content-Length") != "" {
		if n, err := strconv.ParseInt(cw.header.Get("Content-Length"), 10, 64); err == nil && n > cw.q.c.opts.MaxBodyBytes {
			cw.refused = &refusal{reason: "too large", pass: true}
		}
	}
	if cw.q.w == nil {
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
	h := cw.q.w.Header()
	copyHeader(h, cw.header)
	if !cw.q.c.opts.KeepTagHeader {
		h.Del(cw.q.c.opts.TagHeader)
	}
	out := cw.out
	out.fwdStatus = cw.status
	switch {
	case cw.refused == nil && cw.leased:
		out.stored = true
	case cw.refused == nil:
		out.detail = "unavailable"
	default:
		out.detail = token(cw.refused.reason)
	}
	cw.q.out = out
	h.Set("Cache-Status", out.header(cw.q.c.opts.Name))
	if cw.status == http.StatusOK && cw.refused == nil && notModified(cw.q.r, cw.header) {
		cw.notModified = true
		toNotModified(h)
		cw.q.w.WriteHeader(http.StatusNotModified)
		return
	}
	cw.q.w.WriteHeader(cw.status)
}

func (cw *capture) Write(p []byte) (int, error) {
	if !cw.wrote {
		cw.WriteHeader(http.StatusOK)
	}
	if cw.refused == nil {
		if int64(cw.body.Len()+len(p)) > cw.q.c.opts.MaxBodyBytes {
			cw.refused = &refusal{reason: "too large", pass: true}
			cw.body = bytes.Buffer{}
		} else {
			cw.body.Write(p)
		}
	}
	if cw.q.w == nil || cw.staleInstead {
		return len(p), nil
	}
	cw.sendHeader()
	if cw.notModified || cw.clientGone {
		return len(p), nil
	}
	if _, err := cw.q.w.Write(p); err != nil {
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
	if cw.q.w == nil || cw.staleInstead {
		return
	}
	cw.sendHeader()
	if cw.notModified || cw.clientGone {
		return
	}
	_ = http.NewResponseController(cw.q.w).Flush()
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
