package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/keyvalue-go/keyvalue/internal/telemetry"
	"github.com/valkey-io/valkey-go"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Lifetimes with a special meaning for Set.
const (
	// DefaultLifetime uses the cache's Options.DefaultLifetime.
	DefaultLifetime time.Duration = 0
	// Unlimited stores the entry without expiry.
	Unlimited time.Duration = -1
)

// standardLifetime is the Options.DefaultLifetime of a cache that sets none.
const standardLifetime = time.Hour

// Defaults for zero Options fields.
const (
	DefaultCompressionThreshold = 1024
	DefaultMaxValueBytes        = 16 << 20
	DefaultBatchSize            = 1000
	DefaultMaxLoadTime          = 5 * time.Minute
	// MaxBatchSize caps Options.BatchSize: a batch is unpacked into one Lua
	// call, and Lua's C stack holds about 8000 values.
	MaxBatchSize = 5000
)

// Options configure one named cache.
type Options struct {
	// DefaultLifetime applies when Set is called with DefaultLifetime; 0 means
	// one hour, Unlimited means no expiry.
	DefaultLifetime time.Duration
	// Compression of payloads of at least CompressionThreshold bytes
	// (default none). Changing it needs no flush: readers follow the header.
	Compression Compression
	// CompressionThreshold in bytes; default 1024.
	CompressionThreshold int
	// MaxValueBytes bounds a stored payload (after compression) and what a
	// compressed payload may expand to; default 16 MiB.
	MaxValueBytes int
	// BatchSize is the SCAN COUNT and the keys per UNLINK or script call in
	// Flush, FlushByTags and CollectGarbage; default 1000.
	BatchSize int
	// LocalCacheTTL, when positive, serves Get from valkey-go's client-side
	// cache (RESP3 CLIENT TRACKING). The server invalidates local copies
	// when an entry changes, asynchronously: this process reads its own
	// writes, other processes may serve a changed or flushed entry for a
	// short window (see "Local read cache" in the package doc). Where the
	// server refuses tracking, Get reads from the server as usual.
	LocalCacheTTL time.Duration
	// Sharded spreads a cache over a Cluster: each entry hashes by its id
	// and each tag's index by its tag, instead of the whole cache living in
	// one slot. Use it for caches too large for one node. Writes then take
	// more round trips (see the package doc) and keep the same promise. A
	// cache's keys differ between the modes; switching means a new, empty
	// namespace.
	Sharded bool
	// AllowEvictingPolicy accepts a server whose maxmemory-policy is
	// allkeys-*: such a server may evict a tag index while entries it lists
	// stay, and a flush by that tag then misses them. Without it, Set
	// refuses to write on such a server (ErrEvictionPolicy).
	AllowEvictingPolicy bool
	// MaxLoadTime is the longest a Typed.GetOrSet computation may take and
	// still be stored; default 5 minutes. Flushes leave a stamp for this
	// long so that a value computed from data read before a flush of one
	// of its tags is not stored after it (see "Computing missing entries"
	// in the package doc); a longer computation's result is returned but
	// not stored.
	MaxLoadTime time.Duration
	// Degraded keeps an application serving while the server is down (off
	// by default): a read that cannot reach the server is a miss
	// (GetOrSet computes the value and returns it without storing it), a
	// write that cannot reach it is dropped with a warning in the log
	// (at most one line per 10 seconds), and a circuit breaker turns a
	// dead server into one fast error instead of a timeout per call.
	// Invalidations (Remove, FlushByTags, Flush) are never dropped: they
	// return their error (matching ErrUnavailable while the breaker is
	// open) so that the caller can retry or alert.
	Degraded bool
	// BreakerThreshold is how many consecutive failures to reach the
	// server open the degraded mode's circuit breaker; default 5.
	BreakerThreshold int
	// BreakerCooldown is how long an open breaker refuses calls before it
	// lets one through to probe the server; default 5s.
	BreakerCooldown time.Duration
	// MeterProvider and TracerProvider receive the cache's metrics and
	// spans (see "Observability" in the package doc); nil uses
	// OpenTelemetry's global providers, which record nothing until the
	// application installs an SDK.
	MeterProvider  metric.MeterProvider
	TracerProvider trace.TracerProvider
	// Logger receives flush and GC summaries and skipped bad keys; nil uses
	// slog.Default().
	Logger *slog.Logger
}

// Backend is one named cache: entries with lifetimes and tags under their
// own key namespace. It is safe for concurrent use.
type Backend struct {
	c      valkey.Client // through the circuit breaker in degraded mode
	direct valkey.Client // the client as given: for blocking waits
	drops  dropLog
	tel    *telemetry.Recorder
	// The hot path's telemetry, looked up once: Get's operation and the
	// read counters.
	opGet    *telemetry.OpInfo
	hits     telemetry.Counter
	misses   telemetry.Counter
	localHit telemetry.Counter
	name     string
	opts     Options
	payloads *payloads
	layout   layout // where the keys live and how they are written
	keep     string // how long flush stamps are kept, µs (Options.MaxLoadTime)
	log      *slog.Logger
	policy   *policyCheck
	modes    modes // the local read cache and degraded mode
	// refreshing holds the ids this process refreshes in the background.
	refreshing sync.Map

	// slack is added to sharded tag memberships' expiry (see sharded.go).
	slack time.Duration
	// afterStep, when set (tests only, see export_test.go), runs after each
	// server-side step of a multi-step operation; an error stops the
	// operation there, as a crash would.
	afterStep func(op, step string) error
}

// New returns the backend for the cache called name on client c (a
// *keyvalue.Client or any valkey.Client). It does no I/O. Options it
// cannot use are an error matching ErrInvalidOptions that names the field.
func New(c valkey.Client, name string, opts Options) (*Backend, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	opts, err := opts.withDefaults(name)
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	b := &Backend{c: c, direct: c, name: name, opts: opts, log: log, slack: shardedSlack,
		payloads: newPayloads(opts.Compression, opts.CompressionThreshold, opts.MaxValueBytes),
		policy:   &policyCheck{}, keep: strconv.FormatInt(opts.MaxLoadTime.Microseconds(), 10)}
	b.layout = newLayout(b, name, opts.Sharded)
	b.modes = newModes(b, opts)
	b.c = b.modes.client(c)
	b.tel = telemetry.New("cache", "keyvalue.cache.name", name, opts.MeterProvider, opts.TracerProvider, counterDescriptions)
	b.tel.Classify = classify
	b.opGet = b.tel.Op("get")
	b.hits, b.misses, b.localHit = b.tel.Counter("hits"), b.tel.Counter("misses"), b.tel.Counter("local_hits")
	return b, nil
}

// ErrInvalidOptions matches New's errors for Options it cannot use; the
// message names the field and what to use instead.
var ErrInvalidOptions = errors.New("invalid options")

// optionError is an Options field New refuses. kind, when set, is a
// second sentinel it matches (ErrInvalidLifetime for DefaultLifetime).
type optionError struct {
	cache, field, msg string
	kind              error
}

func (e *optionError) Error() string {
	return fmt.Sprintf("cache %s: %v: Options.%s %s", e.cache, ErrInvalidOptions, e.field, e.msg)
}

func (e *optionError) Unwrap() []error {
	if e.kind == nil {
		return []error{ErrInvalidOptions}
	}
	return []error{ErrInvalidOptions, e.kind}
}

// withDefaults checks opts and fills in the defaults of zero fields.
func (opts Options) withDefaults(name string) (Options, error) {
	bad := func(field, format string, args ...any) (Options, error) {
		return Options{}, &optionError{cache: name, field: field, msg: fmt.Sprintf(format, args...)}
	}
	if opts.DefaultLifetime < 0 && opts.DefaultLifetime != Unlimited {
		return Options{}, &optionError{cache: name, field: "DefaultLifetime", msg: fmt.Sprintf("is %s: use a positive duration, 0 for the default (1h) or Unlimited", opts.DefaultLifetime), kind: ErrInvalidLifetime}
	}
	if opts.Compression == "" {
		opts.Compression = CompressionNone
	}
	if _, ok := compressionIDs[opts.Compression]; !ok {
		return bad("Compression", "%q is not supported: use none, zstd or s2", opts.Compression)
	}
	for field, v := range map[string]int{"CompressionThreshold": opts.CompressionThreshold, "MaxValueBytes": opts.MaxValueBytes,
		"BatchSize": opts.BatchSize, "BreakerThreshold": opts.BreakerThreshold} {
		if v < 0 {
			return bad(field, "must not be negative, got %d (0 means the default)", v)
		}
	}
	for field, d := range map[string]time.Duration{"LocalCacheTTL": opts.LocalCacheTTL, "MaxLoadTime": opts.MaxLoadTime, "BreakerCooldown": opts.BreakerCooldown} {
		if d < 0 {
			return bad(field, "must not be negative, got %s", d)
		}
	}
	if opts.DefaultLifetime == 0 {
		opts.DefaultLifetime = standardLifetime
	}
	if opts.CompressionThreshold == 0 {
		opts.CompressionThreshold = DefaultCompressionThreshold
	}
	if opts.MaxValueBytes == 0 {
		opts.MaxValueBytes = DefaultMaxValueBytes
	}
	if opts.BatchSize == 0 {
		opts.BatchSize = DefaultBatchSize
	}
	opts.BatchSize = min(opts.BatchSize, MaxBatchSize)
	if opts.MaxLoadTime == 0 {
		opts.MaxLoadTime = DefaultMaxLoadTime
	}
	if opts.BreakerThreshold == 0 {
		opts.BreakerThreshold = DefaultBreakerThreshold
	}
	if opts.BreakerCooldown == 0 {
		opts.BreakerCooldown = DefaultBreakerCooldown
	}
	return opts, nil
}

// Name returns the cache's name.
func (b *Backend) Name() string { return b.name }

// Options returns the cache's options with their defaults filled in.
func (b *Backend) Options() Options { return b.opts }

// Prefix returns the prefix of every key of this cache: "kv:{c:NAME}:", or
// "kv:c:NAME:" in sharded mode.
func (b *Backend) Prefix() string { return b.layout.prefix() }

// lifetimeMS resolves a Set lifetime to milliseconds, 0 meaning none.
func (b *Backend) lifetimeMS(lifetime time.Duration) (int64, error) {
	if lifetime == DefaultLifetime {
		lifetime = b.opts.DefaultLifetime
	}
	switch {
	case lifetime == Unlimited:
		return 0, nil
	case lifetime < 0:
		return 0, &InputError{Cache: b.name, Kind: ErrInvalidLifetime, Value: lifetime.String(), Reason: "use a positive duration, cache.DefaultLifetime or cache.Unlimited"}
	case lifetime < time.Millisecond:
		return 0, &InputError{Cache: b.name, Kind: ErrInvalidLifetime, Value: lifetime.String(), Reason: "the smallest lifetime is 1ms"}
	}
	return lifetime.Milliseconds(), nil
}

// Get returns the data stored under id, or an error matching ErrNotFound.
// An entry that cannot be decoded returns an error matching ErrCorrupt.
func (b *Backend) Get(ctx context.Context, id string) ([]byte, error) {
	ctx, sp := b.tel.StartOp(ctx, b.opGet)
	data, err := b.getOp(ctx, id) // no deferred closure on the hot path
	sp.End(ctx, notMiss(err))
	return data, err
}

// getOp is Get without telemetry.
func (b *Backend) getOp(ctx context.Context, id string) ([]byte, error) {
	_, body, err := b.getPayload(ctx, id)
	return body, err
}

func (b *Backend) getPayload(ctx context.Context, id string) (Codec, []byte, error) {
	e, err := b.readEntry(ctx, id)
	return e.codec, e.body, err
}

// readEntry reads and decodes the entry under id.
func (b *Backend) readEntry(ctx context.Context, id string) (entry, error) {
	if err := b.checkID(id); err != nil {
		return entry{}, err
	}
	raw, err := b.modes.read(ctx, b.layout.valueKey(id))
	if valkey.IsValkeyNil(err) {
		b.misses.Add(ctx, 1)
		return entry{}, fmt.Errorf("cache %s: %q: %w", b.name, id, ErrNotFound)
	}
	if b.modes.miss(err) {
		b.misses.Add(ctx, 1)
		return entry{}, fmt.Errorf("cache %s: %q: %w (degraded mode: %w)", b.name, id, ErrNotFound, err)
	}
	if err != nil {
		return entry{}, fmt.Errorf("cache %s: get %q: %w", b.name, id, err)
	}
	b.hits.Add(ctx, 1)
	e, err := b.decode(id, raw)
	if err == nil && e.absent {
		return e, b.absentError(id)
	}
	return e, err
}

// absentError is the error of a read that found a remembered absence.
func (b *Backend) absentError(id string) error {
	return fmt.Errorf("cache %s: %q: %w (remembered: its loader found nothing)", b.name, id, ErrNotFound)
}

// decode decodes a value read for id.
func (b *Backend) decode(id string, raw []byte) (entry, error) {
	e, err := b.payloads.decode(id, raw)
	if err != nil {
		return entry{}, fmt.Errorf("cache %s: %w", b.name, err)
	}
	return e, nil
}

// Has reports whether an entry exists under id (a remembered absence,
// LoadOptions.NotFoundLifetime, is no entry). One round trip.
func (b *Backend) Has(ctx context.Context, id string) (ok bool, err error) {
	ctx, sp := b.tel.Start(ctx, "has")
	defer func() { sp.End(ctx, err) }()
	return b.hasOp(ctx, id)
}

// hasOp is Has without telemetry.
func (b *Backend) hasOp(ctx context.Context, id string) (bool, error) {
	if err := b.checkID(id); err != nil {
		return false, err
	}
	head, err := b.c.Do(ctx, b.c.B().Getrange().Key(b.layout.valueKey(id)).Start(0).End(0).Build()).AsBytes()
	if err != nil {
		return false, fmt.Errorf("cache %s: has %q: %w", b.name, id, err)
	}
	return len(head) == 1 && head[0]&0x0f != absentID, nil
}

// IDsByTag returns the ids of live entries tagged tag, sorted.
// It costs two round trips: the tag's index, then the listed entries'
// tags (an index may list entries that expired or left the tag, until
// they are pruned).
func (b *Backend) IDsByTag(ctx context.Context, tag string) ([]string, error) {
	if err := b.checkTag(tag); err != nil {
		return nil, err
	}
	ids, err := b.c.Do(ctx, b.c.B().Zrange().Key(b.layout.indexKey(tag)).Min("0").Max("-1").Build()).AsStrSlice()
	if err != nil {
		return nil, fmt.Errorf("cache %s: find by tag %q: %w", b.name, tag, err)
	}
	tagsOf, err := b.readTags(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("cache %s: find by tag %q: %w", b.name, tag, err)
	}
	live := ids[:0]
	for _, id := range ids {
		if ts, ok := tagsOf[id]; ok && slices.Contains(ts, tag) {
			live = append(live, id)
		}
	}
	slices.Sort(live)
	return live, nil
}

// step runs the test hook after a server-side step of op, if one is set.
func (b *Backend) step(op, name string) error {
	if b.afterStep == nil {
		return nil
	}
	return b.afterStep(op, name)
}
