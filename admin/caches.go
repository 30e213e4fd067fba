package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keyvalue-go/keyvalue/cache"
	"github.com/keyvalue-go/keyvalue/lock"
	"github.com/keyvalue-go/keyvalue/session"
)

// Bounds of a cache page: the largest indexes listed, the ids shown for a
// tag, the similar tags listed, the bytes of a value shown, and how long
// an action may run.
const (
	largestShown   = 20
	tagIDsShown    = 50
	similarShown   = 50
	valueShown     = 4 << 10
	readTimeout    = 10 * time.Second
	actionTimeout  = 5 * time.Minute
	maxFlushedTags = 1000
)

type cacheData struct {
	Survey  *survey
	Running *survey
	Failed  *surveyFailure
	Largest []cache.TagIndex

	ID         string
	Entry      *cache.EntryInfo
	EntryError string
	Value      *shownValue

	Tag      string
	TagError string
	TagFound bool
	TagSize  int64
	TagIDs   []string
	Similar  []cache.TagIndex
}

// surveyFailure is a failed survey, for the template.
type surveyFailure struct{ Err string }

// shownValue is the start of a value.
type shownValue struct {
	Text      string
	Size      int
	Truncated bool
}

// cacheFor returns the cache named in the path, or writes a 404.
func (h *handler) cacheFor(w http.ResponseWriter, r *http.Request) *cacheView {
	return component(h, w, r, h.caches, "name", "cache named")
}

// component returns the component of m the path value key names, or
// writes a 404 saying that no "what" is shown (and returns nil).
func component[T any](h *handler, w http.ResponseWriter, r *http.Request, m map[string]*T, key, what string) *T {
	v := m[r.PathValue(key)]
	if v == nil {
		h.fail(w, r, http.StatusNotFound, "Not found", fmt.Sprintf("This page shows no %s %q; what it shows is listed at the top.", what, r.PathValue(key)))
	}
	return v
}

// cacheURL is a cache page's path.
func cacheURL(r *http.Request, name string) string { return base(r) + "/caches/" + name }

func (h *handler) cachePage(w http.ResponseWriter, r *http.Request) {
	v := h.cacheFor(w, r)
	if v == nil {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
	defer cancel()
	ss := v.current(h.o.SurveyInterval, h.now())
	if ss.latest == nil && ss.running != nil {
		// A first survey of a small cache ends at once: show it.
		select {
		case <-ss.running.done:
			ss = v.current(h.o.SurveyInterval, h.now())
		case <-time.After(surveyWait):
		case <-ctx.Done():
		}
	}
	d := cacheData{Survey: ss.latest, Running: ss.running}
	if ss.failed != nil {
		d.Failed = &surveyFailure{Err: ss.failed.err.Error()}
	}
	if ss.latest != nil {
		d.Largest = ss.latest.Indexes[:min(len(ss.latest.Indexes), largestShown)]
	}
	status := http.StatusOK
	q := r.URL.Query()
	if d.ID = q.Get("id"); d.ID != "" {
		info, err := v.b.Inspect(ctx, d.ID)
		switch {
		case errors.Is(err, cache.ErrNotFound):
			d.EntryError = fmt.Sprintf("No entry %q (it expired, was removed, or never existed).", d.ID)
		case err != nil:
			d.EntryError = err.Error()
			status = errorStatus(err)
		default:
			d.Entry = &info
			if q.Get("value") != "" {
				d.Value, err = h.value(ctx, r, v.b, d.ID)
				if err != nil {
					d.EntryError = "Reading the value failed: " + err.Error()
				}
			}
		}
	}
	if d.Tag = q.Get("tag"); d.Tag != "" {
		sizes, err := v.b.IndexSizes(ctx, d.Tag)
		if err == nil {
			d.TagSize = sizes[d.Tag]
			d.TagFound = true
			d.TagIDs, err = v.b.TagMembers(ctx, d.Tag, tagIDsShown)
		}
		if err != nil {
			d.TagError = err.Error()
			status = errorStatus(err)
		}
		if ss.latest != nil {
			for _, ix := range ss.latest.Indexes {
				if ix.Tag != d.Tag && strings.Contains(ix.Tag, d.Tag) && len(d.Similar) < similarShown {
					d.Similar = append(d.Similar, ix)
				}
			}
		}
	}
	p := h.newPage(r, "Cache "+v.b.Name(), "cache", v.b.Name(), d)
	if ss.running != nil && ss.latest == nil {
		p.Refresh = 2 // show the figures when the walk ends
	}
	h.render(w, status, "cache", p)
}

// value reads the start of an entry's value for the page; the read is
// logged (a value may hold personal data).
func (h *handler) value(ctx context.Context, r *http.Request, b *cache.Backend, id string) (*shownValue, error) {
	data, err := b.Get(ctx, id)
	h.logAction(r, "view cache value", "cache "+b.Name(), err, "id", id, "bytes", len(data))
	if err != nil {
		return nil, err
	}
	v := &shownValue{Size: len(data)}
	shown := data[:min(len(data), valueShown)]
	if len(shown) < len(data) { // do not cut a character in two
		for i := 0; i < utf8.UTFMax-1 && !utf8.Valid(shown); i++ {
			shown = shown[:len(shown)-1]
		}
	}
	if utf8.Valid(shown) {
		v.Text = string(shown)
	} else {
		shown = shown[:min(len(shown), valueShown/4)]
		v.Text = fmt.Sprintf("binary; the first %d bytes in hex:\n% x", len(shown), shown)
	}
	v.Truncated = len(shown) < len(data)
	return v, nil
}

// errorStatus is the HTTP status for an error of a component: 400 for
// input the component or the page refused, 500 for the rest.
func errorStatus(err error) int {
	var in *cache.InputError
	if errors.As(err, &in) || errors.Is(err, errBadInput) || errors.Is(err, lock.ErrInvalidName) || errors.Is(err, session.ErrInvalidRef) {
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// actionContext bounds an action; it is not cancelled when the operator
// closes the tab, so a flush half-done by a closed tab cannot happen
// (a flush stopped half-way is safe, but surprising).
func actionContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(r.Context()), actionTimeout)
}

// result renders an action's outcome.
func (h *handler) result(w http.ResponseWriter, r *http.Request, section, name string, err error, d resultData) {
	status := http.StatusOK
	if err != nil {
		d.Failed = true
		d.Message = err.Error()
		status = errorStatus(err)
	}
	h.render(w, status, "result", h.newPage(r, d.Heading, section, name, d))
}

// confirmed reports whether the form carries the confirmation.
func confirmed(r *http.Request) bool { return r.PostFormValue("confirm") == "yes" }

func (h *handler) flushTags(w http.ResponseWriter, r *http.Request) {
	v := h.cacheFor(w, r)
	if v == nil {
		return
	}
	name := v.b.Name()
	tags := strings.Fields(r.PostFormValue("tags"))
	slices.Sort(tags)
	tags = slices.Compact(tags)
	back := cacheURL(r, name)
	switch {
	case len(tags) == 0:
		h.result(w, r, "cache", name, fmt.Errorf("%w: name at least one tag to flush", errBadInput), resultData{Heading: "Flush by tags", Back: back})
		return
	case len(tags) > maxFlushedTags:
		h.result(w, r, "cache", name, fmt.Errorf("%w: %d tags: flush at most %d at once", errBadInput, len(tags), maxFlushedTags), resultData{Heading: "Flush by tags", Back: back})
		return
	}
	if !confirmed(r) {
		ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
		defer cancel()
		sizes, err := v.b.IndexSizes(ctx, tags...)
		if err != nil {
			h.result(w, r, "cache", name, err, resultData{Heading: "Flush by tags", Items: tags, Back: back})
			return
		}
		var n int64
		for _, s := range sizes {
			n += s
		}
		h.render(w, http.StatusOK, "confirm", h.newPage(r, "Flush by tags", "cache", name, confirmData{
			Heading:  "Flush by tags in " + name,
			Question: fmt.Sprintf("The indexes of these %d tags list %d entries (an entry with several of the tags counts once per tag). Flush them?", len(tags), n),
			Items:    tags, Button: "Flush these tags", Action: back + "/flush-tags", Back: back,
			Fields: []field{{"tags", strings.Join(tags, "\n")}},
		}))
		return
	}
	ctx, cancel := actionContext(r)
	defer cancel()
	n, err := v.b.FlushByTags(ctx, tags...)
	h.logAction(r, "flush by tags", "cache "+name, err, "tags", tags, "removed", n)
	h.result(w, r, "cache", name, err, resultData{Heading: "Flush by tags in " + name,
		Message: fmt.Sprintf("Flushed %d entries carrying these tags.", n), Items: tags, Back: back})
}

func (h *handler) flushAll(w http.ResponseWriter, r *http.Request) {
	v := h.cacheFor(w, r)
	if v == nil {
		return
	}
	name := v.b.Name()
	back := cacheURL(r, name)
	if got := r.PostFormValue("confirm"); got != name {
		h.result(w, r, "cache", name, fmt.Errorf("%w: type the cache's name, %q, to confirm flushing all of it (you typed %q); nothing was removed", errBadInput, name, got),
			resultData{Heading: "Flush all of " + name, Back: back})
		return
	}
	ctx, cancel := actionContext(r)
	defer cancel()
	n, err := v.b.Flush(ctx, nil)
	h.logAction(r, "flush all", "cache "+name, err, "removed", n)
	h.result(w, r, "cache", name, err, resultData{Heading: "Flush all of " + name,
		Message: fmt.Sprintf("Flushed the cache: %d keys removed.", n), Back: back})
}

func (h *handler) collectGarbage(w http.ResponseWriter, r *http.Request) {
	v := h.cacheFor(w, r)
	if v == nil {
		return
	}
	name := v.b.Name()
	ctx, cancel := actionContext(r)
	defer cancel()
	st, err := v.b.CollectGarbage(ctx, nil)
	h.logAction(r, "collect garbage", "cache "+name, err, "indexes", st.Indexes, "removed_members", st.RemovedMembers, "indexes_removed", st.IndexesRemoved)
	h.result(w, r, "cache", name, err, resultData{Heading: "Garbage collection of " + name,
		Message: fmt.Sprintf("Visited %d tag indexes: removed %d stale members; %d indexes emptied and removed; %d keys skipped.", st.Indexes, st.RemovedMembers, st.IndexesRemoved, st.Skipped),
		Back:    cacheURL(r, name)})
}

func (h *handler) removeEntry(w http.ResponseWriter, r *http.Request) {
	v := h.cacheFor(w, r)
	if v == nil {
		return
	}
	name := v.b.Name()
	id := r.PostFormValue("id")
	ctx, cancel := actionContext(r)
	defer cancel()
	ok, err := v.b.Remove(ctx, id)
	n := 0
	if ok {
		n = 1
	}
	h.logAction(r, "remove entry", "cache "+name, err, "id", id, "removed", n)
	msg := fmt.Sprintf("Removed the entry %q.", id)
	if !ok {
		msg = fmt.Sprintf("There was no entry %q to remove.", id)
	}
	h.result(w, r, "cache", name, err, resultData{Heading: "Remove an entry of " + name, Message: msg, Back: cacheURL(r, name)})
}

// errBadInput marks a form the page refuses (a confirmation that does
// not match, no tag named, ...): a 400.
var errBadInput = errors.New("not done")
