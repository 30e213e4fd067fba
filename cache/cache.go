package cache

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/keyvalue-go/keyvalue/internal/scripts"
	"github.com/valkey-io/valkey-go"
)

// Lifetimes with a special meaning for Set.
const (
	// DefaultLifetime uses the cache's Options.DefaultLifetime.
	DefaultLifetime time.Duration = 0
	// Unlimited stores the entry without expiry.
	Unlimited time.Duration = -1
)

// Defaults for zero Options fields.
const (
	StandardLifetime            = time.Hour
	DefaultCompressionThreshold = 1024
	DefaultMaxValueBytes        = 16 << 20
	DefaultBatchSize            = 1000
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
	// cache for up to this long. The server invalidates local copies when an
	// entry changes (RESP3 CLIENT TRACKING), so the TTL only bounds staleness
	// if an invalidation message is lost. Where the server refuses tracking,
	// Get reads from the server as usual.
	LocalCacheTTL time.Duration
	// Sharded spreads a cache over a Cluster: each entry's keys hash by its
	// id and each tag set by its tag, instead of the whole cache living in
	// one slot. Use it for caches too large for one node. Set then takes two
	// round trips and stays safe against crashes and concurrent writers: an
	// entry is never missing from a tag it has (see the package doc). A
	// cache's keys differ between the modes; switching means a new, empty
	// namespace.
	Sharded bool
	// Logger receives flush and GC summaries; nil uses slog.Default().
	Logger *slog.Logger
}

// Backend is one named cache: entries with lifetimes and tags under their
// own key namespace. It is safe for concurrent use.
type Backend struct {
	c        valkey.Client
	name     string
	opts     Options
	payloads *payloads
	prefix   string // kv:{c:NAME}:
	dPrefix  string // kv:{c:NAME}:d:
	tPrefix  string // kv:{c:NAME}:t:
	gPrefix  string // kv:{c:NAME}:g:
	log      *slog.Logger

	// slack is added to sharded tag memberships' expiry (see sharded.go).
	slack time.Duration
	// afterStep, when set (tests only, see export_test.go), runs after each
	// server-side step of a multi-step operation; an error stops the
	// operation there, as a crash would.
	afterStep func(op, step string) error
}

// New returns the backend for the cache called name on client c (a
// *keyvalue.Client or any valkey.Client). It does no I/O.
func New(c valkey.Client, name string, opts Options) (*Backend, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if opts.DefaultLifetime == 0 {
		opts.DefaultLifetime = StandardLifetime
	}
	if opts.DefaultLifetime < 0 && opts.DefaultLifetime != Unlimited {
		return nil, &InputError{Cache: name, Kind: ErrInvalidLifetime, Value: opts.DefaultLifetime.String(), Reason: "Options.DefaultLifetime must be positive or Unlimited"}
	}
	if opts.Compression == "" {
		opts.Compression = CompressionNone
	}
	if _, ok := compressionIDs[opts.Compression]; !ok {
		return nil, fmt.Errorf("cache %s: unknown compression %q: use none, zstd or s2", name, opts.Compression)
	}
	if opts.CompressionThreshold <= 0 {
		opts.CompressionThreshold = DefaultCompressionThreshold
	}
	if opts.MaxValueBytes <= 0 {
		opts.MaxValueBytes = DefaultMaxValueBytes
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = DefaultBatchSize
	}
	opts.BatchSize = min(opts.BatchSize, MaxBatchSize)
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	p := "kv:{c:" + name + "}:"
	if opts.Sharded {
		p = "kv:c:" + name + ":"
	}
	return &Backend{c: c, name: name, opts: opts, payloads: newPayloads(opts.Compression, opts.CompressionThreshold, opts.MaxValueBytes),
		prefix: p, dPrefix: p + "d:", tPrefix: p + "t:", gPrefix: p + "g:", log: log, slack: shardedSlack}, nil
}

// Name returns the cache's name.
func (b *Backend) Name() string { return b.name }

// Prefix returns the prefix of every key of this cache: "kv:{c:NAME}:", or
// "kv:c:NAME:" in sharded mode.
func (b *Backend) Prefix() string { return b.prefix }

// dataKey, tagsKey and tagSetKey name an entry's keys and a tag's set.
func (b *Backend) dataKey(id string) string {
	if b.opts.Sharded {
		return b.prefix + "{" + id + "}:d"
	}
	return b.dPrefix + id
}

func (b *Backend) tagsKey(id string) string {
	if b.opts.Sharded {
		return b.prefix + "{" + id + "}:t"
	}
	return b.tPrefix + id
}

func (b *Backend) tagSetKey(tag string) string {
	if b.opts.Sharded {
		return b.gPrefix + "{" + tag + "}"
	}
	return b.gPrefix + tag
}

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

// Set stores data under id with tags, replacing any previous entry and its
// tags, in one atomic round trip. lifetime is a duration, DefaultLifetime
// or Unlimited.
func (b *Backend) Set(ctx context.Context, id string, data []byte, tags []string, lifetime time.Duration) error {
	return b.setPayload(ctx, id, Raw.ID(), data, tags, lifetime)
}

func (b *Backend) setPayload(ctx context.Context, id string, codecID byte, body []byte, tags []string, lifetime time.Duration) error {
	if err := b.checkID(id); err != nil {
		return err
	}
	tags, err := b.checkTags(tags)
	if err != nil {
		return err
	}
	ms, err := b.lifetimeMS(lifetime)
	if err != nil {
		return err
	}
	payload, err := b.payloads.encode(codecID, body)
	if err != nil {
		return fmt.Errorf("cache %s: set %q: %w", b.name, id, err)
	}
	if len(payload) > b.opts.MaxValueBytes {
		return &InputError{Cache: b.name, Kind: ErrTooLarge, Value: id,
			Reason: fmt.Sprintf("the stored payload would be %d bytes (from %d bytes of data), over MaxValueBytes %d", len(payload), len(body), b.opts.MaxValueBytes)}
	}
	if b.opts.Sharded {
		return b.setSharded(ctx, id, payload, tags, ms)
	}
	keys := make([]string, 2, 2+len(tags))
	keys[0], keys[1] = b.dPrefix+id, b.tPrefix+id
	args := make([]string, 4, 4+len(tags))
	args[0], args[1], args[2], args[3] = valkey.BinaryString(payload), strconv.FormatInt(ms, 10), id, b.gPrefix
	for _, t := range tags {
		keys = append(keys, b.gPrefix+t)
		args = append(args, t)
	}
	if err := scripts.CacheSet.Exec(ctx, b.c, keys, args).Error(); err != nil {
		return fmt.Errorf("cache %s: set %q: %w", b.name, id, err)
	}
	return nil
}

// Get returns the data stored under id, or an error matching ErrNotFound.
// An entry that cannot be decoded returns an error matching ErrCorrupt.
func (b *Backend) Get(ctx context.Context, id string) ([]byte, error) {
	_, body, err := b.getPayload(ctx, id)
	return body, err
}

func (b *Backend) getPayload(ctx context.Context, id string) (Codec, []byte, error) {
	if err := b.checkID(id); err != nil {
		return nil, nil, err
	}
	var res valkey.ValkeyResult
	if b.opts.LocalCacheTTL > 0 {
		res = b.c.DoCache(ctx, b.c.B().Get().Key(b.dataKey(id)).Cache(), b.opts.LocalCacheTTL)
	} else {
		res = b.c.Do(ctx, b.c.B().Get().Key(b.dataKey(id)).Build())
	}
	raw, err := res.AsBytes()
	if valkey.IsValkeyNil(err) {
		return nil, nil, fmt.Errorf("cache %s: %q: %w", b.name, id, ErrNotFound)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("cache %s: get %q: %w", b.name, id, err)
	}
	codec, body, err := b.payloads.decode(id, raw)
	if err != nil {
		return nil, nil, fmt.Errorf("cache %s: %w", b.name, err)
	}
	return codec, body, nil
}

// Has reports whether an entry exists under id.
func (b *Backend) Has(ctx context.Context, id string) (bool, error) {
	if err := b.checkID(id); err != nil {
		return false, err
	}
	n, err := b.c.Do(ctx, b.c.B().Exists().Key(b.dataKey(id)).Build()).AsInt64()
	if err != nil {
		return false, fmt.Errorf("cache %s: has %q: %w", b.name, id, err)
	}
	return n == 1, nil
}

// Remove deletes the entry under id and its tag memberships; it reports
// whether an entry existed.
func (b *Backend) Remove(ctx context.Context, id string) (bool, error) {
	if err := b.checkID(id); err != nil {
		return false, err
	}
	if b.opts.Sharded {
		return b.removeSharded(ctx, id)
	}
	n, err := scripts.CacheRemove.Exec(ctx, b.c, []string{b.dPrefix + id, b.tPrefix + id}, []string{b.gPrefix, "0", id}).AsInt64()
	if err != nil {
		return false, fmt.Errorf("cache %s: remove %q: %w", b.name, id, err)
	}
	return n == 1, nil
}

// FindIdentifiersByTag returns the ids of live entries tagged tag, sorted.
func (b *Backend) FindIdentifiersByTag(ctx context.Context, tag string) ([]string, error) {
	if err := b.checkTag(tag); err != nil {
		return nil, err
	}
	var ids []string
	var err error
	if b.opts.Sharded {
		ids, err = b.c.Do(ctx, b.c.B().Zrange().Key(b.tagSetKey(tag)).Min("0").Max("-1").Build()).AsStrSlice()
	} else {
		ids, err = b.c.Do(ctx, b.c.B().Smembers().Key(b.tagSetKey(tag)).Build()).AsStrSlice()
	}
	if err != nil {
		return nil, fmt.Errorf("cache %s: find by tag %q: %w", b.name, tag, err)
	}
	live, err := b.live(ctx, ids, tag)
	if err != nil {
		return nil, fmt.Errorf("cache %s: find by tag %q: %w", b.name, tag, err)
	}
	slices.Sort(live)
	return live, nil
}

// live filters ids down to those whose entry still exists and still has
// tag (tag sets may hold ids of expired entries until the next
// CollectGarbage, and in sharded mode ids of entries re-set without the
// tag), in one pipelined round trip.
func (b *Backend) live(ctx context.Context, ids []string, tag string) ([]string, error) {
	if len(ids) == 0 {
		return ids, nil
	}
	cmds := make(valkey.Commands, len(ids))
	for i, id := range ids {
		// The id->tags set expires with the entry and lists its current tags.
		cmds[i] = b.c.B().Sismember().Key(b.tagsKey(id)).Member(tag).Build()
	}
	out := ids[:0]
	for i, r := range b.c.DoMulti(ctx, cmds...) {
		n, err := r.AsInt64()
		if err != nil {
			return nil, err
		}
		if n == 1 {
			out = append(out, ids[i])
		}
	}
	return out, nil
}

// FlushByTag removes every entry tagged tag; see FlushByTags.
func (b *Backend) FlushByTag(ctx context.Context, tag string) (int, error) {
	return b.FlushByTags(ctx, tag)
}

// FlushByTags removes every entry carrying any of tags, with all their
// tag memberships, and returns how many entries existed. It costs two
// round trips whatever the number of tags: one pipeline of SMEMBERS, then
// one pipeline of removal scripts in batches of Options.BatchSize. Entries
// tagged after the first round trip keep their tags (they are newer than
// the flush).
func (b *Backend) FlushByTags(ctx context.Context, tags ...string) (int, error) {
	tags, err := b.checkTags(tags)
	if err != nil || len(tags) == 0 {
		return 0, err
	}
	if b.opts.Sharded {
		return b.flushByTagsSharded(ctx, tags)
	}
	cmds := make(valkey.Commands, len(tags))
	for i, t := range tags {
		cmds[i] = b.c.B().Smembers().Key(b.gPrefix + t).Build()
	}
	var (
		ids    []string
		tagsOf = map[string][]int{} // id -> indexes into tags
	)
	for i, r := range b.c.DoMulti(ctx, cmds...) {
		m, err := r.AsStrSlice()
		if err != nil {
			return 0, fmt.Errorf("cache %s: flush by tags: %w", b.name, err)
		}
		for _, id := range m {
			if _, seen := tagsOf[id]; !seen {
				ids = append(ids, id)
			}
			tagsOf[id] = append(tagsOf[id], i)
		}
	}
	return b.removeMany(ctx, ids, tags, tagsOf)
}

// removeMany removes entries by id in pipelined batches. tags are the tags
// being flushed and tagsOf maps each id to the indexes of those it is in
// (both nil for a plain remove).
func (b *Backend) removeMany(ctx context.Context, ids, tags []string, tagsOf map[string][]int) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	var execs []valkey.LuaExec
	for batch := range slices.Chunk(ids, b.opts.BatchSize) {
		groups := make([][]string, len(tags))
		for _, id := range batch {
			for _, ti := range tagsOf[id] {
				groups[ti] = append(groups[ti], id)
			}
		}
		e := valkey.LuaExec{Keys: make([]string, 0, 2*len(batch)), Args: make([]string, 0, 2+3*len(batch)+2*len(tags))}
		e.Args = append(e.Args, b.gPrefix, strconv.Itoa(len(tags)))
		for ti, g := range groups {
			e.Args = append(e.Args, tags[ti], strconv.Itoa(len(g)))
			e.Args = append(e.Args, g...)
		}
		for _, id := range batch {
			e.Keys = append(e.Keys, b.dPrefix+id, b.tPrefix+id)
			e.Args = append(e.Args, id)
		}
		execs = append(execs, e)
	}
	removed := 0
	for _, r := range scripts.CacheRemove.ExecMulti(ctx, b.c, execs...) {
		n, err := r.AsInt64()
		if err != nil {
			return removed, fmt.Errorf("cache %s: remove entries: %w", b.name, err)
		}
		removed += int(n)
	}
	return removed, nil
}

// step runs the test hook after a server-side step of op, if one is set.
func (b *Backend) step(op, name string) error {
	if b.afterStep == nil {
		return nil
	}
	return b.afterStep(op, name)
}
