// Package httpcache is an HTTP response cache middleware on the
// tag-aware cache: rendered pages tagged with what they show (surrogate
// keys), purged by tag when that changes, rendered once across a fleet on
// a miss, served stale while they are rendered again or while the handler
// fails, and never an outage when the cache server is.
//
//	pages, _ := cache.New(client, "pages", cache.Options{Compression: cache.CompressionZstd, Degraded: true})
//	hc, _ := httpcache.New(pages, httpcache.Options{})
//	mux.Handle("GET /page/{id}", hc.Middleware(pageHandler)) // the handler sets Cache-Control and Surrogate-Key
//	...
//	hc.Purge(ctx, "pageId_7") // an editor saved page 7
//
// # The promises
//
// After Purge(ctx, tag) returns, no process serves a response tagged tag
// that was cached before it: the entries are deleted (the cache's
// invariant: a live entry is in the index of each of its tags), and a
// response whose render began before the purge is not stored after it —
// its own client gets it, the next request renders again (the cache's
// flush stamps, see the cache package's "Computing missing entries").
// Processes whose cache backend has a local read cache
// (cache.Options.LocalCacheTTL) may serve a purged response within that
// cache's invalidation window. In sharded mode flushes are not stamped,
// so the render racing a purge may be stored.
//
// One request renders a missing response for every process sharing the
// cache; the others wait for it on the server (no polling) and get it
// (Cache-Status "hit; collapsed"). The rendering request renews its claim
// while its handler runs: if its process dies, another request takes
// over within Options.Lease (2s by default); if its handler panics or the
// response cannot be stored, a waiter renders at once (or every waiter
// goes to the handler: hit-for-pass, see Options.HitForPass). A handler
// that never returns holds the waiting requests until the backend's
// cache.Options.MaxLoadTime: bound handlers with http.TimeoutHandler or
// give the pages cache a MaxLoadTime its users can wait.
//
// A request never fails because of the cache: a server that is down or
// answers slower than Options.LookupTimeout sends requests to the handler
// uncached (Cache-Status "fwd=bypass; detail=unavailable"); give the
// backend cache.Options.Degraded so that a dead server costs one fast
// error instead of a dial per request.
//
// Under faults (tested in this package; 2-core machine, loopback):
//
//	fault                              what holds                                 measured
//	purges racing renders, client      no response older than one a returned     every read after a purge
//	connections killed, server frozen  purge replaced is served; no request      checked
//	                                   fails because of the cache
//	the rendering process dies         another request renders within the lease  within about 1 s (lease 1 s)
//	a render of five leases            rendered once for the fleet               1 render for 6 requests
//	                                                                             over 2 processes
//
// # Rules (RFC 9111, shared cache)
//
// GET responses are stored; HEAD is answered from a stored GET (on a miss
// it goes to the handler, and nothing is stored). A successful POST, PUT,
// DELETE or PATCH invalidates every stored response of its URL (section
// 4.4). Other methods pass through.
//
// The key is the scheme, host, path and query (Options.Key,
// Options.IgnoreParams) plus, when a response has Vary, the request's
// values of the headers it names (each combination stored separately;
// values are compared as sent, not normalised).
//
// A response is stored when all of these hold (the Cache-Status of a
// response that was not says why, e.g. "detail=private"):
//
//	the request has no Cache-Control: no-store
//	the response has none of no-store, private, no-cache (qualified forms count), Vary: *
//	it sets no cookie (unless Options.StoreSetCookie)
//	a request with Authorization gets public, s-maxage or must-revalidate
//	its status is cacheable: 200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501 — and, with
//	  explicit freshness only, 302, 303, 307, 400, 403 (never 206, 304, other 5xx)
//	it has a freshness lifetime: s-maxage, else max-age, else Expires − Date, else
//	  Options.DefaultTTL for the statuses cacheable by default (no other heuristic)
//	it is not stale on arrival (its Age or Date already past its lifetime)
//	its body is complete (as long as its Content-Length) and at most Options.MaxBodyBytes
//
// A stored response is served while fresh (its age, with the Age of the
// response and the time since it was stored, below its lifetime), with
// an Age header. After that, unless it has must-revalidate,
// proxy-revalidate or s-maxage: within stale-while-revalidate it is served
// at once while one background render replaces it; within stale-if-error
// it replaces a 5xx response of the render (RFC 5861; the directives of
// the response, else Options.StaleWhileRevalidate and StaleIfError).
// Otherwise it is rendered again, once across the fleet.
//
// Conditional requests (If-None-Match, else If-Modified-Since) are
// answered 304 from a stored 200 with a matching ETag (weak comparison)
// or Last-Modified, also on the render that stores it: the handler always
// gets the request without its conditional and Range headers, so that it
// renders the full response to store. Range is ignored (the full response
// is sent, as RFC 9110 allows).
//
// Request Cache-Control directives other than no-store (max-age, no-cache,
// only-if-cached) are ignored, as CDNs do: a client cannot make the fleet
// render. Hop-by-hop headers, Age, Cache-Status and the tag header are not
// stored; the time a response was rendered is kept in its Date.
//
// # Surrogate keys
//
// A handler tags its response with the TagHeader response header
// (Surrogate-Key: "pageId_7 menu"; commas work too) or httpcache.Tag(r,
// "pageId_7"); both add up. The header is removed before the response
// reaches the client unless Options.KeepTagHeader is set (then hits carry
// every tag). Purge(ctx, tags...) purges from Go; PurgeHandler is an HTTP
// endpoint for other systems, behind a bearer token.
//
// # Bodies
//
// The render streams to its client while it is captured (Flush works). A
// body that grows past Options.MaxBodyBytes keeps streaming and is not
// stored. Stored responses go through the cache's codecs: the backend's
// Compression compresses them. If the client of the render leaves, the
// capture goes on as long as the handler does (its request context is
// the client's: a handler that stops on cancellation stores nothing).
//
// # Cache-Status (RFC 9211)
//
//	NAME; hit; ttl=N                        fresh, from the cache (N seconds left)
//	NAME; hit; collapsed; ttl=N             waited for another request's render
//	NAME; hit; ttl=-N; detail=stale-while-revalidate
//	NAME; hit; fwd=stale; fwd-status=503; detail=stale-if-error
//	NAME; fwd=uri-miss; fwd-status=200; stored
//	NAME; fwd=vary-miss; ...                the URL is cached, not this variant
//	NAME; fwd=stale; ...                    stale, rendered again
//	NAME; fwd=uri-miss; fwd-status=200; detail=private   rendered, not stored: why
//	NAME; fwd=bypass; detail=hit-for-pass   the last response of this key could not be stored
//	NAME; fwd=bypass; detail=unavailable    the cache server is down or slow
//	NAME; fwd=method                        not GET or HEAD
//
// "stored" reflects the decision when the header is sent; a body that then
// grows too large, or a purge during the render, still keeps it out.
//
// # Observability
//
// Options.MeterProvider (OpenTelemetry's global provider when nil)
// receives keyvalue.httpcache.requests, a counter by
// keyvalue.httpcache.result — hit, stale (served within
// stale-while-revalidate), stale_if_error, collapsed (waited for another
// request's render), miss (rendered, stored or not), pass (not cacheable,
// hit-for-pass, HEAD miss), method, unavailable — and
// keyvalue.httpcache.purged (entries removed by Purge), with
// keyvalue.cache.name; Purge is also an operation (duration histogram, a
// span under a recording parent). The backend records its own reads and
// writes (see the cache package). URLs, keys and tags never become
// attributes.
//
// # Key layout and costs
//
// Entries live in the backend's cache under ids "http:" + 32 hex digits
// (a SHA-256 prefix of the key; the entry holds the key itself, and an
// entry of another key counts as a miss). A key whose responses vary
// holds a small vary record (the header names and a generation); its
// variants live under ids derived from the key, the generation and the
// request's values, so replacing the vary record retires every variant.
//
//	hit                1 round trip (GET; none with a local read cache hit)
//	miss, rendering    GET, the lease script, the handler, the store script: 3 round trips
//	miss, waiting      GET, the lease script, BLPOP until the render is stored, the lease script
//	vary               one more GET for the variant (and a second script on its first store)
//	stale (SWR)        the hit, plus in the background the lease script, the render and the store
//	Purge              cache.FlushByTags: 3 round trips for any number of tags and entries
package httpcache
