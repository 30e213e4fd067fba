package httpcache

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// MinPurgeTokenLength is the shortest token PurgeHandler accepts.
const MinPurgeTokenLength = 16

// PurgeHandler returns an HTTP endpoint that purges tags, for a CMS or a
// deploy script: a PURGE or POST request with "Authorization: Bearer
// TOKEN" and the tags in the TagHeader request header (space- or
// comma-separated) and/or "tag" query parameters. It answers 200 with
// {"purged":N,"tags":[...]}; 401 without the right token; 400 without
// tags; 405 for other methods; 503 when the purge failed (nothing may
// have been purged: retry). Mount it on an internal address or path; the
// token is compared in constant time. It returns an error for a token
// shorter than MinPurgeTokenLength bytes.
func (c *Cache) PurgeHandler(token string) (http.Handler, error) {
	if len(token) < MinPurgeTokenLength {
		return nil, fmt.Errorf("httpcache: the purge token is %d bytes; use at least %d random bytes (e.g. openssl rand -hex 32)", len(token), MinPurgeTokenLength)
	}
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "PURGE" && r.Method != http.MethodPost {
			w.Header().Set("Allow", "PURGE, POST")
			http.Error(w, "use PURGE or POST", http.StatusMethodNotAllowed)
			return
		}
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="purge"`)
			http.Error(w, "missing or wrong purge token", http.StatusUnauthorized)
			return
		}
		tags := append(splitTags(r.Header.Values(c.opts.TagHeader)), r.URL.Query()["tag"]...)
		if len(tags) == 0 {
			http.Error(w, fmt.Sprintf("no tags: send them in the %s header or as tag query parameters", c.opts.TagHeader), http.StatusBadRequest)
			return
		}
		n, err := c.Purge(r.Context(), tags...)
		if err != nil {
			c.opts.Logger.Error("httpcache: purge failed", "tags", strings.Join(tags, " "), "error", err)
			http.Error(w, "purge failed; retry: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(struct {
			Purged int      `json:"purged"`
			Tags   []string `json:"tags"`
		}{n, tags})
	}), nil
}
