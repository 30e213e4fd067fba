package httpcache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/keyvalue-go/keyvalue/cache"
)

// render runs the handler as the holder of fill: it streams the response
// to the client (none for a background refresh) while capturing it, then
// stores it under q.id — or, for a response with Vary, under the variant
// id it selects, with a vary record under q.id — unless it must not be
// stored. fallback, when set, is the stale response stale-if-error serves
// instead of a server error; fwd says why the handler renders (uri-miss,
// vary-miss, stale).
func (q *request) render(fill *cache.Fill, fallback *record, fwd string) {
	c, r := q.c, q.r
	tags := &tagSet{}
	req := r.Clone(context.WithValue(r.Context(), tagsKey{}, tags))
	// The handler renders the full response to store: conditional and
	// range requests are answered from it.
	for _, f := range []string{"If-None-Match", "If-Modified-Since", "Range", "If-Range"} {
		req.Header.Del(f)
	}
	cw := &capture{q: q, header: make(http.Header), fallback: fallback, out: outcome{fwd: fwd}, leased: fill.Leased()}
	done := false
	defer func() {
		if !done {
			// The handler panicked: waiters must not wait for the lease.
			fill.Abandon(r.Context())
		}
	}()
	q.next.ServeHTTP(cw, req)
	done = true
	if !cw.wrote {
		cw.WriteHeader(http.StatusOK)
	}
	if q.w != nil && !cw.staleInstead {
		cw.sendHeader()
	}
	tags.mu.Lock()
	cw.tags = append(cw.tags, tags.tags...)
	tags.mu.Unlock()
	if cw.staleInstead {
		age := fallback.currentAge(time.Now())
		q.write(fallback, age, outcome{hit: true, fwd: "stale", fwdStatus: cw.status, detail: "stale-if-error"})
	}
	ctx := context.WithoutCancel(r.Context())
	if cw.refused == nil && !cw.complete() {
		cw.refused = &refusal{reason: "incomplete body"}
	}
	if cw.refused != nil {
		if cw.refused.pass && c.opts.HitForPass > 0 {
			c.store(ctx, fill, "", &record{Kind: kindPass, Key: q.key}, nil, c.opts.HitForPass)
			return
		}
		fill.Abandon(ctx)
		return
	}
	now := time.Now()
	rec := &record{
		Kind: kindResponse, Key: q.key, Status: cw.status, Header: cw.stored, Body: cw.body.Bytes(),
		Tags: sortedUnique(cw.tags), Received: now.UnixMilli(),
		Age: cw.fresh.age.Milliseconds(), Fresh: cw.fresh.fresh.Milliseconds(),
		SWR: cw.fresh.swr.Milliseconds(), SIE: cw.fresh.sie.Milliseconds(), Revalidate: cw.fresh.revalidate,
	}
	keep := cw.fresh.keep()
	vary := varyNames(cw.header)
	if len(vary) == 0 || !q.primary {
		c.store(ctx, fill, "", rec, rec.Tags, keep)
		return
	}
	// The first variant of this key: a new generation of variant ids,
	// the variant first, then the vary record (which ends the fill).
	marker := &record{Kind: kindVary, Key: q.key, Vary: vary, Gen: newGeneration()}
	if !c.store(ctx, fill, variantID(q.key, marker, r), rec, rec.Tags, keep) {
		return
	}
	c.store(ctx, fill, "", marker, nil, keep)
}

// store writes rec under the fill's id (other == "") or under another id
// computed in the same fill, and reports whether it was stored. A failure
// is logged; the fill is then ended without a value.
func (c *Cache) store(ctx context.Context, fill *cache.Fill, other string, rec *record, tags []string, keep time.Duration) bool {
	data, err := rec.encode()
	if err == nil {
		if other != "" {
			err = fill.StoreOther(ctx, other, data, tags, keep)
		} else {
			err = fill.Store(ctx, data, tags, keep)
		}
	}
	switch {
	case err == nil:
		return true
	case errors.Is(err, cache.ErrFlushedWhileComputing):
		c.opts.Logger.Debug("httpcache: a response rendered before a purge of its tags was not stored", "key", rec.Key)
	case errors.Is(err, cache.ErrInvalidTag) || errors.Is(err, cache.ErrTooLarge):
		c.opts.Logger.Warn("httpcache: response not stored", "key", rec.Key, "error", err)
	default:
		c.warn("httpcache: response not stored", err)
	}
	fill.Abandon(ctx)
	return false
}

// refreshInBackground renders the request again for the whole fleet (if
// no other request is on it) without holding up the client, which gets
// the stale response (stale-while-revalidate).
func (q *request) refreshInBackground() {
	c := q.c
	if _, busy := c.refreshing.LoadOrStore(q.id, struct{}{}); busy {
		return
	}
	lease := c.lease()
	// As long as a render may take and still be stored (the lease is
	// renewed for that long).
	ctx, cancel := context.WithTimeout(context.WithoutCancel(q.r.Context()), c.b.Options().MaxLoadTime)
	req := q.r.Clone(ctx)
	req.Method = http.MethodGet // a HEAD hit refreshes the GET it was served from
	bg := &request{c: c, r: req, next: q.next, key: q.key, id: q.id, primary: q.primary}
	go func() {
		defer cancel()
		defer c.refreshing.Delete(bg.id)
		fill, err := c.b.TryFill(ctx, bg.id, lease)
		if err != nil {
			c.warn("httpcache: background refresh could not start", err)
			return
		}
		if fill == nil {
			return // another request is rendering it
		}
		defer func() {
			if p := recover(); p != nil {
				// A handler panic must not kill the process from a
				// goroutine the application did not start.
				fill.Abandon(ctx)
				c.opts.Logger.Error("httpcache: handler panicked during a background refresh", "key", bg.key, "panic", p)
			}
		}()
		bg.render(fill, nil, "stale")
	}()
}

// notModified evaluates r's conditional headers against a response's
// validators (RFC 9110, section 13.2.2): If-None-Match first, else
// If-Modified-Since.
func notModified(r *http.Request, h http.Header) bool {
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		etag := h.Get("ETag")
		if etag == "" {
			return false
		}
		for candidate := range strings.SplitSeq(inm, ",") {
			candidate = strings.TrimSpace(candidate)
			if candidate == "*" || weakEqual(candidate, etag) {
				return true
			}
		}
		return false
	}
	if ims := r.Header.Get("If-Modified-Since"); ims != "" {
		since, err1 := http.ParseTime(ims)
		modified, err2 := http.ParseTime(h.Get("Last-Modified"))
		return err1 == nil && err2 == nil && !modified.After(since)
	}
	return false
}

func weakEqual(a, b string) bool {
	return strings.TrimPrefix(a, "W/") == strings.TrimPrefix(b, "W/")
}

// splitTags splits tag header values on spaces and commas.
func splitTags(values []string) []string {
	var tags []string
	for _, v := range values {
		tags = append(tags, strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' })...)
	}
	return tags
}

// token turns a reason into an RFC 8941 token for Cache-Status's detail.
func token(s string) string { return strings.ReplaceAll(s, " ", "-") }

// newGeneration returns a random generation for variant ids.
func newGeneration() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}
