// Package session is a session store on Redis or Valkey: JSON records
// readable with redis-cli, ids stored only as HMAC-SHA256, optimistic
// updates that lose no write, atomic renew (session-fixation protection)
// with a read-only grace period, listing through an expiry index, per-user
// revocation, sliding expiration with a throttle and an absolute cap, and
// optional replica acknowledgement.
//
// # Key layout
//
// Every key of a store with prefix P shares the hash tag {s:P}:
//
//	kv:{s:P}:HASH     string  the record (JSON, see Record), TTL = its expiry
//	kv:{s:P}:idx      zset    HASH -> expiry (ms, server clock): all sessions
//	kv:{s:P}:u:USER   zset    HASH -> expiry: the sessions of one user
//
// HASH is hex(HMAC-SHA256(k, id)) with k derived from Options.Key: a dump
// of the server reveals no usable session id. Records carry the id sealed
// with AES-256-GCM (another derived key) so GetAll can return ids.
//
// On a Cluster all of one store's keys live in one slot: every operation
// is a single atomic script and GetAll is one MGET, at the price that one
// store's sessions cannot spread over several nodes. Use several prefixes
// (one store each) to spread load.
//
// Reads go to the primary, so a session written is read back at once;
// keyvalue.Config.ReadFromReplicas sends them to replicas instead.
//
// # Costs
//
//	Get          1 round trip (plus a write when sliding expiration is due)
//	Create, Set  1-2 round trips (Set reads first, to keep the user index right)
//	Update       2 round trips per attempt (read, then a compare-and-set script)
//	Renew        1 round trip (one atomic script) when this process knows the
//	             session's user (it read or wrote the session), else 2: the
//	             script must declare the user's index, which it learns from
//	             the record
//	GetAll       2 round trips for any number of sessions (index script, MGET)
//	RemoveByUser 2 round trips (index script, then one removal script)
//
// Every key a script touches is passed to it (KEYS), so a Cluster migrating
// the store's slot refuses a call before it runs instead of failing it
// half-way.
//
// # Guarantees
//
//   - A write reported as successful is stored. One reported as failed is
//     not stored, except ErrNotReplicated: the write is stored (on the
//     primary) but too few replicas confirmed it, and the record or new id
//     is returned with the error, so the caller is never left with an
//     orphan it cannot name.
//   - A stored record that does not parse exactly (trailing bytes, a field
//     of the wrong type, an unknown field) is ErrCorrupt for every reader,
//     Renew included, and is never overwritten silently.
//
// # Drop-in adapters
//
// Store.SCS adapts the store to github.com/alexedwards/scs/v2 (Store,
// CtxStore, IterableStore); package gorillastore implements
// github.com/gorilla/sessions' Store.
package session
