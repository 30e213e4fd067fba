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
// # Rotating the key
//
// Options.PreviousKeys (or PreviousKeyFiles) are earlier keys still
// accepted: a read looks the id up under every key in one MGET (the
// current one first), and a session found under a previous key moves to
// the current one on its next write or sliding-expiration touch — one
// atomic script writes it under the new hash, with its id sealed anew, and
// deletes the old record and index entries, so it is never missing nor
// duplicated. Renew and Remove find it too. Store.Rekey (keyvalue session
// rekey) moves every session in ZSCAN pages the same way, so the previous
// key can then be dropped. Stubs left by Renew are not moved (they expire
// within RenewGrace). A process still running with only the old key keeps
// writing under it: deploy the new configuration everywhere before Rekey.
//
// # Per-user limit, devices, events
//
// Options.MaxSessionsPerUser caps a user's sessions: the write that adds
// one beyond the limit ends the user's sessions that expire soonest (the
// least recently used, with sliding expiration) in the same script. The
// script may only delete records declared to it, so it names the ones it
// needs when the caller did not declare them and the caller calls again:
// concurrent logins of one user cannot leave more than the limit (50 at
// once leave exactly the limit in the tests). Record.Device holds what the
// application says about the client for a "your devices" page
// (GetAllByUser); RemoveOthers ends every other session of the user.
// Options.OnEvent reports sessions created, renewed, removed, revoked,
// evicted and expired (see EventKind), never with ids.
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
//	Put          1 round trip (a blind write: the script checks the user this
//	             process last saw the session with; one more call each time it
//	             changed elsewhere); the scs and gorilla adapters save with it
//	Update       2 round trips per attempt (read, then a compare-and-set script)
//	Renew        1 round trip (one atomic script) when this process knows the
//	             session's user (it read or wrote the session), else 2: the
//	             script must declare the user's index, which it learns from
//	             the record
//	GetAll       2 round trips for any number of sessions (the index: a pruning script
//	             and ZRANGE in one pipeline; then one MGET per 1,000 sessions, sent
//	             together, each decoded as soon as its reply is in)
//	RemoveByUser 2 round trips (index script, then one removal script)
//	RemoveOthers 3 round trips (the current session, the user's index, one removal script)
//	Count        1 round trip (ZCARD of the expiry index)
//	Page         2 round trips (ZRANGE by rank and ZCARD in one pipeline, then MGET)
//	RemoveRef    2 round trips (the record, for its user's index; then one removal script)
//	Rekey        per page of the expiry index: ZSCAN, MGET, one write script per moved session
//	             (8 at a time)
//
// With previous keys, a read is one MGET of the id's hashes under every key
// instead of a GET (still one round trip). With MaxSessionsPerUser, a write
// that must end sessions it did not know of costs one round trip more.
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
//     of the wrong type, an unknown, duplicate or differently-cased field,
//     invalid UTF-8: encoding/json/v2 semantics) or does not start as
//     every record this package writes ({"v":1,"sid":...) is ErrCorrupt
//     for every reader, Renew included, and is never overwritten silently.
//
// # Drop-in adapters
//
// Store.SCS adapts the store to github.com/alexedwards/scs/v2 (Store,
// CtxStore, IterableStore); package gorillastore implements
// github.com/gorilla/sessions' Store. Both save with Store.Put, the last
// save winning as with their own stores. Told how to read the user (and
// device) from a session's values — SCSUser with the SessionManager's
// codec, gorillastore.WithUser — they index every session they save under
// its user, so RemoveByUser, MaxSessionsPerUser, GetAllByUser and
// RemoveOthers work for their sessions; a session saved before the option
// was set is indexed on its next save.
//
// # Under faults
//
// Tested in this package and in internal/netfaults (2-core machine,
// loopback):
//
//	fault                              what holds                               measured
//	Sentinel primary killed or frozen  with WaitReplicas, every write reported  no acknowledged write lost
//	                                   stored survives the failover
//	Sentinel split (primary and a      with WaitReplicas 1, every write         170 acknowledged writes, all
//	client on the minority side)       reported stored is on the final primary  there; 113 refused
//	                                   after the split heals                    (ErrNotReplicated)
//	network cut                        a call fails within the connection's     see the keyvalue package's
//	                                   bounds, matching keyvalue.ErrUnreachable "Bounds"
package session
