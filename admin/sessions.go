package admin

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/keyvalue-go/keyvalue/session"
)

// sessionsPerPage is the listing's page size.
const sessionsPerPage = 50

type sessionsData struct {
	Total       int
	User        string
	Records     []session.Record
	First, Last int
	Prev, Next  int // page numbers (1-based); 0: none
	Error       string
}

// storeFor returns the session store named in the path, or writes a 404.
func (h *handler) storeFor(w http.ResponseWriter, r *http.Request) *session.Store {
	return component(h, w, r, h.sessions, "prefix", "session store with the prefix")
}

func sessionsURL(r *http.Request, prefix string) string { return base(r) + "/sessions/" + prefix }

func (h *handler) sessionsPage(w http.ResponseWriter, r *http.Request) {
	s := h.storeFor(w, r)
	if s == nil {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), readTimeout)
	defer cancel()
	q := r.URL.Query()
	d := sessionsData{User: q.Get("user")}
	status := http.StatusOK
	var err error
	if d.User != "" {
		if d.Records, err = s.GetAllByUser(ctx, d.User); err == nil {
			d.Total, err = s.Count(ctx)
		}
	} else {
		pageNo := 1
		if p := q.Get("page"); p != "" {
			if pageNo, err = strconv.Atoi(p); err != nil || pageNo < 1 || pageNo > 1_000_000 {
				h.fail(w, r, http.StatusBadRequest, "Bad page number", fmt.Sprintf("page=%q: use a page number from 1", p))
				return
			}
		}
		offset := (pageNo - 1) * sessionsPerPage
		d.Records, d.Total, err = s.Page(ctx, offset, sessionsPerPage)
		if err == nil && len(d.Records) > 0 {
			d.First, d.Last = offset+1, offset+len(d.Records)
		}
		if pageNo > 1 {
			d.Prev = pageNo - 1
		}
		if offset+sessionsPerPage < d.Total {
			d.Next = pageNo + 1
		}
	}
	if err != nil {
		d.Error = err.Error()
		status = http.StatusInternalServerError
	}
	h.render(w, status, "sessions", h.newPage(r, "Sessions "+s.Prefix(), "sessions", s.Prefix(), d))
}

func (h *handler) revokeSession(w http.ResponseWriter, r *http.Request) {
	s := h.storeFor(w, r)
	if s == nil {
		return
	}
	ref := r.PostFormValue("ref")
	ctx, cancel := actionContext(r)
	defer cancel()
	ok, err := s.RemoveRef(ctx, ref)
	n := 0
	if ok {
		n = 1
	}
	fp := ref[:min(len(ref), fingerprintLen)]
	h.logAction(r, "revoke session", "sessions "+s.Prefix(), err, "session", fp, "removed", n)
	msg := fmt.Sprintf("Revoked the session %s.", fp)
	if !ok {
		msg = fmt.Sprintf("There was no session %s to revoke (it ended or was revoked meanwhile).", fp)
	}
	h.result(w, r, "sessions", s.Prefix(), err, resultData{Heading: "Revoke a session", Message: msg, Back: sessionsURL(r, s.Prefix())})
}

func (h *handler) revokeUser(w http.ResponseWriter, r *http.Request) {
	s := h.storeFor(w, r)
	if s == nil {
		return
	}
	user := r.PostFormValue("user")
	back := sessionsURL(r, s.Prefix())
	if user == "" {
		h.result(w, r, "sessions", s.Prefix(), fmt.Errorf("%w: name the user whose sessions to revoke", errBadInput), resultData{Heading: "Revoke a user's sessions", Back: back})
		return
	}
	ctx, cancel := actionContext(r)
	defer cancel()
	n, err := s.RemoveByUser(ctx, user)
	h.logAction(r, "revoke user's sessions", "sessions "+s.Prefix(), err, "user", user, "removed", n)
	h.result(w, r, "sessions", s.Prefix(), err, resultData{Heading: "Revoke a user's sessions",
		Message: fmt.Sprintf("Revoked %d sessions of the user %q.", n, user), Back: back + "?user=" + urlQuery(user)})
}
