// Package gorillastore is a github.com/gorilla/sessions Store backed by
// keyvalue's session store, so handlers written for gorilla/sessions (and
// gin's and echo's session middleware built on it) keep working.
//
// The cookie carries only the session id (256 random bits); the values
// live on the server, gob-encoded in the record's "bytes" field, under the
// store's HMAC'd keys.
//
// With WithUser, every saved session is indexed under the user its values
// name, so the session store's per-user features work for gorilla
// sessions: RemoveByUser ("log out everywhere"), Options.MaxSessionsPerUser,
// GetAllByUser (a device list) and RemoveOthers:
//
//	store := gorillastore.New(sessions, gorillastore.WithUser(func(values map[any]any) (string, string) {
//		user, _ := values["user"].(string)
//		device, _ := values["device"].(string)
//		return user, device
//	}))
//
// A save is one blind write (session.Store.Put): the last save wins, as
// with gorilla's own stores, and the session keeps its creation time.
package gorillastore

import (
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/sessions"
	"github.com/keyvalue-go/keyvalue/session"
)

// Store implements sessions.Store.
type Store struct {
	s *session.Store
	// Options are the cookie options of new sessions (path, domain, MaxAge,
	// Secure, HttpOnly, SameSite). MaxAge also sets the server-side expiry.
	Options  *sessions.Options
	identify func(values map[any]any) (userID, device string)
}

var _ sessions.Store = (*Store)(nil)

// Option configures a Store.
type Option func(*Store)

// WithUser makes every save index the session under the user that
// identify reads from its values ("" for an anonymous session), with the
// device it returns (session.Record.Device, for a device list; "" for
// none). A session whose user changes (a login, a logout) moves between
// the indexes in the same write. Sessions saved before the option was set
// are indexed on their next save.
func WithUser(identify func(values map[any]any) (userID, device string)) Option {
	return func(st *Store) { st.identify = identify }
}

// New returns a gorilla Store on s with secure cookie defaults (Path "/",
// HttpOnly, Secure, SameSite Lax, MaxAge 24h).
func New(s *session.Store, opts ...Option) *Store {
	st := &Store{s: s, Options: &sessions.Options{Path: "/", MaxAge: 86400, HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode}}
	for _, o := range opts {
		o(st)
	}
	return st
}

// Get returns the named session from the request's registry (loading it once).
func (st *Store) Get(r *http.Request, name string) (*sessions.Session, error) {
	return sessions.GetRegistry(r).Get(st, name)
}

// New loads the session named by the request's cookie, or starts an empty
// one (IsNew) when there is none or it expired.
func (st *Store) New(r *http.Request, name string) (*sessions.Session, error) {
	sess := sessions.NewSession(st, name)
	opts := *st.Options
	sess.Options = &opts
	sess.IsNew = true
	c, err := r.Cookie(name)
	if err != nil {
		return sess, nil
	}
	rec, err := st.s.GetWith(r.Context(), c.Value, session.GetOptions{NoTouch: true})
	if errors.Is(err, session.ErrNotFound) {
		return sess, nil
	}
	if err != nil {
		return sess, err
	}
	if err := gob.NewDecoder(bytes.NewReader(rec.Bytes)).Decode(&sess.Values); err != nil {
		return sess, fmt.Errorf("gorillastore: decode session values: %w", err)
	}
	sess.ID, sess.IsNew = c.Value, false
	return sess, nil
}

// Save writes the session and sets its cookie. As gorilla/sessions
// documents: MaxAge < 0 deletes the session; MaxAge == 0 makes a browser
// session cookie (no Max-Age), and the server keeps the session for the
// session.Store's lifetime (Options.Lifetime, sliding); MaxAge > 0 keeps it
// that many seconds.
func (st *Store) Save(r *http.Request, w http.ResponseWriter, sess *sessions.Session) error {
	if sess.Options.MaxAge < 0 {
		if sess.ID != "" {
			if _, err := st.s.Remove(r.Context(), sess.ID); err != nil {
				return err
			}
		}
		http.SetCookie(w, sessions.NewCookie(sess.Name(), "", sess.Options))
		return nil
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(sess.Values); err != nil {
		return fmt.Errorf("gorillastore: encode session values (register custom types with gob.Register): %w", err)
	}
	if sess.ID == "" {
		sess.ID = session.NewID()
	}
	var expires time.Time // MaxAge 0: the store's own lifetime
	if sess.Options.MaxAge > 0 {
		expires = time.Now().Add(time.Duration(sess.Options.MaxAge) * time.Second)
	}
	rec := session.Record{Bytes: buf.Bytes(), Expires: expires}
	if st.identify != nil {
		rec.UserID, rec.Device = st.identify(sess.Values)
	}
	if _, err := st.s.Put(r.Context(), sess.ID, rec); err != nil {
		return err
	}
	http.SetCookie(w, sessions.NewCookie(sess.Name(), sess.ID, sess.Options))
	return nil
}
