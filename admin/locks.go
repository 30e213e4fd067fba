package admin

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/keyvalue-go/keyvalue/lock"
)

// locksShown bounds the Locks page's table.
const locksShown = 500

type locksData struct {
	Locks       []lock.Info
	Held, Found int
	Complete    bool
	MaxKeys     int
	All         bool
	Error       string
}

func (h *handler) locksPage(w http.ResponseWriter, r *http.Request) {
	if h.o.Locks == nil {
		h.fail(w, r, http.StatusNotFound, "No locks", "This page was set up without a lock.Locker (Options.Locks).")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
	defer cancel()
	d := locksData{All: r.URL.Query().Get("all") != "", MaxKeys: h.o.MaxLockKeys}
	infos, complete, err := h.o.Locks.List(ctx, h.o.MaxLockKeys)
	status := http.StatusOK
	if err != nil {
		d.Error = err.Error()
		status = http.StatusInternalServerError
	}
	d.Found, d.Complete = len(infos), complete
	for _, in := range infos {
		if in.Held() {
			d.Held++
		}
		if (in.Held() || d.All) && len(d.Locks) < locksShown {
			d.Locks = append(d.Locks, in)
		}
	}
	h.render(w, status, "locks", h.newPage(r, "Locks", "locks", "", d))
}

func (h *handler) releaseLock(w http.ResponseWriter, r *http.Request) {
	if h.o.Locks == nil {
		h.fail(w, r, http.StatusNotFound, "No locks", "This page was set up without a lock.Locker (Options.Locks).")
		return
	}
	name := r.PostFormValue("name")
	back := base(r) + "/locks"
	if got := r.PostFormValue("confirm"); got != name || name == "" {
		h.result(w, r, "locks", "", fmt.Errorf("%w: type the lock's name, %q, to confirm releasing it (you typed %q); nothing was released", errBadInput, name, got),
			resultData{Heading: "Force release", Back: back})
		return
	}
	ctx, cancel := actionContext(r)
	defer cancel()
	before, err := h.o.Locks.Inspect(ctx, name)
	if err == nil {
		err = h.o.Locks.ForceRelease(ctx, name)
	}
	holders := before.Readers
	if before.Holder != "" {
		holders++
	}
	h.logAction(r, "force release lock", "locks", err, "lock", name, "holders", holders)
	h.result(w, r, "locks", "", err, resultData{Heading: "Force release",
		Message: fmt.Sprintf("Released the lock %q (it had %d holders); a waiter, if any, was woken.", name, holders), Back: back})
}

// urlQuery escapes s for a query string.
func urlQuery(s string) string { return url.QueryEscape(s) }
