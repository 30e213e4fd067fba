package session_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"

	"github.com/alexedwards/scs/v2"
	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/session"
)

func Example() {
	// The server comes from KEYVALUE_URL (or KEYVALUE_CONFIG, KEYVALUE_*).
	var cfg keyvalue.Config
	if _, err := keyvalue.LoadEnv(os.Environ(), &cfg); err != nil {
		log.Fatal(err)
	}
	client, err := keyvalue.Open(cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	ctx := context.Background()

	store, err := session.New(client, session.Options{Prefix: "fe", Key: []byte("use 32+ random bytes from a secret store")})
	if err != nil {
		log.Fatal(err)
	}
	rec, err := store.Create(ctx, session.Record{UserID: "42", Data: json.RawMessage(`{"cart":[7]}`)})
	if err != nil {
		log.Fatal(err)
	}

	// On login: a new id, same session; the old cookie still reads it briefly.
	newID, err := store.Renew(ctx, rec.ID)
	if err != nil {
		log.Fatal(err)
	}
	got, err := store.Get(ctx, newID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(got.UserID, string(got.Data))

	n, err := store.RemoveByUser(ctx, "42") // log out everywhere
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("removed", n)
	// Output:
	// 42 {"cart":[7]}
	// removed 1
}

// Rotating the secret without logging anyone out: the new key is current,
// the old one is still accepted; Rekey moves every session to the new key,
// after which the old one can be dropped from the configuration.
func ExampleStore_Rekey() {
	var cfg keyvalue.Config
	if _, err := keyvalue.LoadEnv(os.Environ(), &cfg); err != nil {
		log.Fatal(err)
	}
	client, err := keyvalue.Open(cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	ctx := context.Background()
	oldKey := []byte("the key of last quarter, 32+ random bytes")
	newKey := []byte("the key of this quarter, 32+ random bytes")

	before, err := session.New(client, session.Options{Prefix: "rotate", Key: oldKey})
	if err != nil {
		log.Fatal(err)
	}
	rec, err := before.Create(ctx, session.Record{UserID: "42"})
	if err != nil {
		log.Fatal(err)
	}

	// Deploy with the new key first and the old one as a previous key.
	store, err := session.New(client, session.Options{Prefix: "rotate", Key: newKey, PreviousKeys: [][]byte{oldKey}})
	if err != nil {
		log.Fatal(err)
	}
	st, err := store.Rekey(ctx, 500, nil) // or: keyvalue session rekey
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("moved", st.Moved)

	// Now the new key alone finds the session.
	after, err := session.New(client, session.Options{Prefix: "rotate", Key: newKey})
	if err != nil {
		log.Fatal(err)
	}
	got, err := after.Get(ctx, rec.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(got.UserID)
	if _, err := after.RemoveByUser(ctx, "42"); err != nil {
		log.Fatal(err)
	}
	// Output:
	// moved 1
	// 42
}

// A "your devices" page: each session says what the application recorded
// about its client; "log out my other devices" ends all but this one. With
// MaxSessionsPerUser, a login beyond the limit ends the least recently used
// session in the same atomic write; OnEvent feeds an audit log.
func ExampleStore_RemoveOthers() {
	var cfg keyvalue.Config
	if _, err := keyvalue.LoadEnv(os.Environ(), &cfg); err != nil {
		log.Fatal(err)
	}
	client, err := keyvalue.Open(cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	ctx := context.Background()

	store, err := session.New(client, session.Options{
		Prefix:             "devices",
		Key:                []byte("use 32+ random bytes from a secret store"),
		MaxSessionsPerUser: 2,
		OnEvent: func(e session.Event) {
			if e.Kind == session.EventEvicted || e.Kind == session.EventRevoked {
				fmt.Printf("audit: %s %d session(s) of user %s\n", e.Kind, e.Count, e.UserID)
			}
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	var here session.Record
	for _, device := range []string{"Chrome on Windows", "Firefox on Linux", "Safari on iPhone"} {
		// The third login goes over the limit of 2: the oldest session ends.
		here, err = store.Create(ctx, session.Record{UserID: "7", Device: device})
		if err != nil {
			log.Fatal(err)
		}
	}
	devices, err := store.GetAllByUser(ctx, "7")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(devices), "devices")
	if _, err := store.RemoveOthers(ctx, here.ID); err != nil {
		log.Fatal(err)
	}
	if _, err := store.Remove(ctx, here.ID); err != nil {
		log.Fatal(err)
	}
	// Output:
	// audit: evicted 1 session(s) of user 7
	// 2 devices
	// audit: revoked 1 session(s) of user 7
}

// scs sessions indexed by user: the adapter reads the user (and a device
// description) from the session's values on every commit, so "log out
// everywhere" works for sessions scs manages.
func ExampleSCSUser() {
	var cfg keyvalue.Config
	if _, err := keyvalue.LoadEnv(os.Environ(), &cfg); err != nil {
		log.Fatal(err)
	}
	client, err := keyvalue.Open(cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	store, err := session.New(client, session.Options{Prefix: "scs", Key: []byte("use 32+ random bytes from a secret store")})
	if err != nil {
		log.Fatal(err)
	}
	sm := scs.New()
	sm.Store = store.SCS(session.SCSUser(sm.Codec, func(values map[string]any) (userID, device string) {
		userID, _ = values["userID"].(string)
		device, _ = values["device"].(string)
		return userID, device
	}))

	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		// A new token on login (session fixation), then who it is.
		if err := sm.RenewToken(r.Context()); err != nil {
			http.Error(w, "could not log in", http.StatusInternalServerError)
			return
		}
		sm.Put(r.Context(), "userID", r.FormValue("user"))
		sm.Put(r.Context(), "device", r.UserAgent())
	})
	mux.HandleFunc("POST /logout-everywhere", func(w http.ResponseWriter, r *http.Request) {
		n, err := store.RemoveByUser(r.Context(), sm.GetString(r.Context(), "userID"))
		if err != nil {
			http.Error(w, "could not log out", http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "logged out of %d sessions", n)
	})
	handler := sm.LoadAndSave(mux)

	// Two logins of user 42, from two browsers, then "log out everywhere"
	// from the first.
	var first *http.Cookie
	for _, agent := range []string{"Firefox on Linux", "Safari on iPhone"} {
		req := httptest.NewRequest("POST", "/login", strings.NewReader("user=42"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("User-Agent", agent)
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if first == nil {
			first = rec.Result().Cookies()[0]
		}
	}
	devices, err := store.GetAllByUser(context.Background(), "42")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(devices), "devices")
	req := httptest.NewRequest("POST", "/logout-everywhere", nil)
	req.AddCookie(first)
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	fmt.Println(rec.Body.String())
	// Output:
	// 2 devices
	// logged out of 2 sessions
}
