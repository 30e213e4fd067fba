// Package admin is an operations page for keyvalue: an http.Handler to
// mount in an application (or run with keyvalue serve) that shows the
// server, the caches, the session stores and the locks, and acts on them
// — flush by tags, flush all, garbage collection, entry lookup and
// removal, session revocation, forced lock release.
//
//	h, err := admin.New(admin.Options{
//		Client:    client,
//		Caches:    []*cache.Backend{pages},
//		Sessions:  []*session.Store{store},
//		Locks:     locker,
//		Authorize: func(r *http.Request) bool { return isAdmin(r) },
//	})
//	mux.Handle("/ops/", http.StripPrefix("/ops", h))
//
// # Pages
//
//   - Server (/): what keyvalue doctor reports — endpoint, topology, TLS,
//     server version, role, latency, client-side caching, the eviction
//     policy's verdict for tagged caches, memory — refreshed every
//     Options.Refresh.
//   - A cache (/caches/NAME): entries, tag indexes and memory, and the
//     largest tag indexes, from a survey made in the background at most
//     every Options.SurveyInterval (SCAN with COUNT; a page view never
//     walks the cache); a tag search (the index's size and first ids,
//     one round trip each); an entry lookup by id (size, lifetime left,
//     tags, codec; the value, truncated to 4 KiB, only when asked); flush
//     by tags (showing how many entries the tags' indexes list, then
//     asking to confirm), flush all (the cache's name typed to confirm),
//     garbage collection, removal of one entry.
//   - A session store (/sessions/PREFIX): the count, a listing 50 per page
//     (Store.Page), a user's devices (Store.GetAllByUser), revocation of
//     one session or all of a user's.
//   - Locks (/locks): the locks a bounded walk finds (Locker.List): holder
//     fingerprint, time to live, shared holders, waiters, fencing token;
//     force release with the lock's name typed to confirm.
//
// Every page is rendered on the server (html/template; styles and the one
// small script are embedded, nothing is loaded from elsewhere) and works
// without JavaScript: the script only reloads the Server page, and a
// cache page whose survey is under way, every few seconds while no form
// field has the focus.
//
// # Security
//
// No request is served without Options.Authorize saying yes (New refuses
// a nil Authorize): refused requests get 403, or 401 with
// Options.Challenge as the WWW-Authenticate header. State-changing
// requests are POSTs checked by http.CrossOriginProtection (a request
// another site's page sends is refused with 403). Responses forbid
// framing (X-Frame-Options DENY, CSP frame-ancestors 'none'), inline and
// foreign script (Content-Security-Policy script-src 'self'), MIME
// sniffing, caching and referrers; every value is escaped by
// html/template. Options.ReadOnly hides every action and refuses every
// POST. Each action is logged with Options.Logger (slog): who
// (Options.Who), what, on which component, and how many keys it touched.
//
// A session id is a credential: the pages never show one or put one in a
// URL or a form. Sessions are shown by a fingerprint (the first 12 hex
// digits of session.Record.Ref) and revoked by their Ref. Lock holders'
// tokens are shown as a fingerprint (SHA-256) too.
//
// # Costs
//
// The Server page sends INFO (server, memory), ROLE, CONFIG GET
// maxmemory-policy, Options.Pings PINGs and a client-side caching probe,
// and dials TLS once when it is on. A cache page reads its survey (no
// round trip) plus one round trip per search or lookup; a survey walks
// the cache twice with SCAN (Backend.Stats, Backend.TagIndexes) in the
// background, one at a time per cache. A session page sends two or three
// round trips (Store.Page or Store.GetAllByUser). The Locks page walks
// at most Options.MaxLockKeys keys, then pipelines one Inspect per lock
// found.
package admin
