package admin

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"time"
)

// page is what every template gets: the layout's fields and the page's
// own data in D.
type page struct {
	Base     string
	Title    string
	Section  string // "server", "cache", "sessions", "locks"
	Name     string // the cache's name or the session store's prefix
	Caches   []string
	Sessions []string
	Locks    bool
	ReadOnly bool
	Refresh  int // seconds; 0: the page does not reload itself
	D        any
}

// pageNames are the templates under templates/, each with the layout.
var pageNames = []string{"server", "cache", "confirm", "result", "sessions", "locks", "error"}

// funcs are the templates' helpers.
var funcs = template.FuncMap{
	"path":  url.PathEscape,
	"ms":    roundDuration,
	"bytes": humanBytes,
	"ago":   func(t time.Time) string { return roundDuration(time.Since(t)) },
	"when": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.Local().Format("2006-01-02 15:04:05")
	},
	"short": func(ref string) string { return ref[:min(len(ref), fingerprintLen)] },
	"fp":    fingerprint,
}

// fingerprintLen is how many hex digits of a digest identify a session or
// a lock holder on the pages: enough to tell them apart, useless as a
// credential.
const fingerprintLen = 12

// fingerprint is the start of SHA-256(s) in hex.
func fingerprint(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:fingerprintLen]
}

func parsePages() (map[string]*template.Template, error) {
	pages := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("admin: template %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// newPage fills the layout's fields.
func (h *handler) newPage(r *http.Request, title, section, name string, data any) page {
	return page{Base: base(r), Title: title, Section: section, Name: name, Caches: h.cacheOrd, Sessions: h.sessOrd,
		Locks: h.o.Locks != nil, ReadOnly: h.o.ReadOnly, D: data}
}

// render writes the template name with p, buffered so that a template
// error becomes a 500 rather than half a page.
func (h *handler) render(w http.ResponseWriter, status int, name string, p page) {
	var buf bytes.Buffer
	if err := h.pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		h.log.Error("keyvalue admin: rendering a page failed", "page", name, "error", err)
		http.Error(w, "500 internal error: the page could not be rendered (logged)", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// errorData is the error page's.
type errorData struct{ Heading, Message string }

// fail renders the error page.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, status int, heading, message string) {
	h.render(w, status, "error", h.newPage(r, heading, "", "", errorData{heading, message}))
}

// resultData is an action's outcome.
type resultData struct {
	Heading, Message string
	Items            []string
	Failed           bool
	Back             string
}

// confirmData asks to confirm an action.
type confirmData struct {
	Heading, Question, Button string
	Items                     []string
	Action, Back              string
	Fields                    []field
}

type field struct{ Name, Value string }

func roundDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(100 * time.Microsecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}
