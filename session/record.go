package session

import (
	"encoding/json"
	"time"
)

// SchemaVersion is the "v" field of every stored record.
const SchemaVersion = 1

// Record is one session. Stored as JSON (readable with redis-cli GET) under
// kv:{s:PREFIX}:HASH, where HASH is HMAC-SHA256(key, id) in hex:
//
//	{
//	  "v": 1,                        schema version
//	  "sid": "…",                    the id sealed with AES-256-GCM (key derived from the
//	                                 store's key): lets GetAll return ids; useless without the key
//	  "user_id": "42",               optional; indexes the session under its user
//	  "created": "2026-11-25T10:00:00.123456789Z",
//	  "updated": "…",                last write of data or user
//	  "touched": "…",                last sliding-expiration extension
//	  "expires": "…",                when the record expires (the key's TTL says the same)
//	  "permanent": true,             "remember me": Options.PermanentLifetime applies
//	  "binding": "…",                optional client binding (e.g. a hash of IP or User-Agent)
//	  "device": "…",                 optional description of the client, for a device list
//	  "renewed": true,               only on the read-only stub left by Renew
//	  "data": {…},                   application data as JSON, or
//	  "bytes": "base64…"             application data as opaque bytes (scs uses this)
//	}
//
// Fields other than these are rejected when reading (a record that does not
// parse is reported as ErrCorrupt and never overwritten silently).
type Record struct {
	// ID is the session id (the cookie value). It is never stored in clear.
	ID        string    `json:"-"`
	UserID    string    `json:"user_id,omitempty"`
	Created   time.Time `json:"created"`
	Updated   time.Time `json:"updated"`
	Touched   time.Time `json:"touched"`
	Expires   time.Time `json:"expires"`
	Permanent bool      `json:"permanent,omitempty"`
	Binding   string    `json:"binding,omitempty"`
	// Device describes the client for a user's device list (GetAllByUser):
	// what the application sets, e.g. "Firefox on Linux, 192.0.2.x". The
	// library stores it as given; it is personal data: store no more than
	// the list needs (a browser family, a truncated address), and it goes
	// with the session when the session ends.
	Device string          `json:"device,omitempty"`
	Data   json.RawMessage `json:"data,omitempty"`
	Bytes  []byte          `json:"bytes,omitempty"`
	// Ref names the stored record for operators' tools (RemoveRef, the
	// admin page): the keyed hash of the id that the record is stored
	// under. It is not a credential — the id cannot be derived from it and
	// no request presents it — so it may be shown and put in a form where
	// the id must not. Reads, listings and writes set it; what a caller puts
	// in it is ignored.
	Ref string `json:"-"`
	// ReadOnly is true when the record was read through an id that Renew
	// replaced: it stays readable for the grace period but cannot be written.
	ReadOnly bool `json:"-"`
}

// stored is the JSON document.
type stored struct {
	V      int    `json:"v"`
	Sealed string `json:"sid"`
	Record
	Renewed bool `json:"renewed,omitempty"`
}
