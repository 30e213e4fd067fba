package cache

import (
	"bytes"
	"encoding/binary"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// Value format: one header byte, the entry's tags if it has any, then the
// body.
//
//	byte 0, bit 0-3  codec id        0 raw, 1 json, 2 msgpack, 3 gob, 8-15 registered by the application;
//	                                 7: a remembered absence (LoadOptions.NotFoundLifetime), no body
//	byte 0, bit 4-5  compression     0 none, 1 zstd, 2 s2
//	byte 0, bit 6    freshness follows (entries stored by Typed.GetOrSet with Grace or Beta)
//	byte 0, bit 7    tags follow
//	if bit 7: 4 bytes, big-endian: n; n bytes: the tags joined by "\n"
//	if bit 6: 8 bytes, big-endian: when the entry turns stale (Unix ms, the writer's
//	          clock; 0 never); 4 bytes: how long its computation took (ms)
//	the body (compressed as bit 4-5 say)
//
// Readers decode by the header, never by the current configuration: a
// cache can switch codec or compression without a flush. The tags live in
// the value itself, so a value and the list of its tags are written and
// deleted together; the scripts read them with GETRANGE.

// Codec turns values into bytes and back. Built-in codecs are Raw, JSON,
// Msgpack and Gob; applications may register their own with RegisterCodec.
type Codec interface {
	// ID is the codec's number in the payload header (0-15).
	ID() byte
	// Name is how configuration files refer to it ("json").
	Name() string
	Marshal(v any) ([]byte, error)
	Unmarshal(data []byte, v any) error
}

// Compression names a compression algorithm for payloads.
type Compression string

// The compression algorithms (klauspost/compress).
const (
	CompressionNone Compression = "none"
	CompressionZstd Compression = "zstd"
	CompressionS2   Compression = "s2"
)

var compressionIDs = map[Compression]byte{CompressionNone: 0, CompressionZstd: 1, CompressionS2: 2}

// ErrCorrupt matches every error about a stored payload that cannot be
// decoded: an unknown header, a codec or compression this process does not
// know, or a damaged body. Typed.GetOrSet treats such an entry as a miss.
var ErrCorrupt = errors.New("corrupt or unknown payload")

// CorruptError describes an undecodable payload. It matches ErrCorrupt.
type CorruptError struct {
	ID     string // the entry id, when known
	Reason string
	Err    error
}

// Error describes the payload and why it cannot be decoded.
func (e *CorruptError) Error() string {
	s := "entry"
	if e.ID != "" {
		s += " " + strconv.Quote(e.ID)
	}
	s += " cannot be decoded: " + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Is makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// Unwrap returns the underlying decoder error.
func (e *CorruptError) Unwrap() error { return e.Err }

type rawCodec struct{}

// Raw stores []byte (and string) values as they are.
var Raw Codec = rawCodec{}

func (rawCodec) ID() byte     { return 0 }
func (rawCodec) Name() string { return "raw" }
func (rawCodec) Marshal(v any) ([]byte, error) {
	switch x := v.(type) {
	case []byte:
		return x, nil
	case string:
		return []byte(x), nil
	case *[]byte:
		return *x, nil
	case *string:
		return []byte(*x), nil
	}
	return nil, fmt.Errorf("cache: the raw codec stores []byte or string, not %T: choose JSON, Msgpack or Gob", v)
}
func (rawCodec) Unmarshal(data []byte, v any) error {
	switch x := v.(type) {
	case *[]byte:
		*x = bytes.Clone(data)
	case *string:
		*x = string(data)
	default:
		return fmt.Errorf("cache: the raw codec decodes into *[]byte or *string, not %T", v)
	}
	return nil
}

type jsonCodec struct{}

// JSON is encoding/json: readable with redis-cli when uncompressed.
var JSON Codec = jsonCodec{}

func (jsonCodec) ID() byte                           { return 1 }
func (jsonCodec) Name() string                       { return "json" }
func (jsonCodec) Marshal(v any) ([]byte, error)      { return json.Marshal(v) }
func (jsonCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

type msgpackCodec struct{}

// Msgpack is MessagePack (vmihailenco/msgpack): compact and fast for structs.
var Msgpack Codec = msgpackCodec{}

func (msgpackCodec) ID() byte                      { return 2 }
func (msgpackCodec) Name() string                  { return "msgpack" }
func (msgpackCodec) Marshal(v any) ([]byte, error) { return msgpack.Marshal(v) }
func (msgpackCodec) Unmarshal(data []byte, v any) error {
	if err := checkMsgpack(data); err != nil {
		return err
	}
	return msgpack.Unmarshal(data, v)
}

// maxMsgpackDepth bounds container nesting in msgpack payloads.
const maxMsgpackDepth = 1000

// checkMsgpack walks a msgpack document without allocating and rejects
// containers that claim more elements than bytes remain, or nest deeper
// than maxMsgpackDepth. The msgpack decoder trusts declared lengths when it
// decodes into interface values, so a corrupt payload could otherwise make
// it allocate gigabytes (found by FuzzDecode).
func checkMsgpack(data []byte) error {
	r := bytes.NewReader(data)
	d := msgpack.NewDecoder(r)
	pending := []int{1} // values still expected at each open level
	for len(pending) > 0 {
		top := len(pending) - 1
		if pending[top] == 0 {
			pending = pending[:top]
			continue
		}
		pending[top]--
		c, err := d.PeekCode()
		if err != nil {
			return fmt.Errorf("msgpack: %w", err)
		}
		n := -1
		switch {
		case msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32:
			n, err = d.DecodeArrayLen()
		case msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32:
			n, err = d.DecodeMapLen()
			n *= 2
		default:
			err = d.Skip()
		}
		if err != nil {
			return fmt.Errorf("msgpack: %w", err)
		}
		if n < 0 {
			continue
		}
		if n > r.Len() {
			return fmt.Errorf("msgpack: a container claims %d values but only %d bytes remain", n, r.Len())
		}
		if len(pending) > maxMsgpackDepth {
			return fmt.Errorf("msgpack: nesting deeper than %d levels", maxMsgpackDepth)
		}
		pending = append(pending, n)
	}
	return nil
}

type gobCodec struct{}

// Gob is encoding/gob: Go-only, handles any gob-encodable type.
var Gob Codec = gobCodec{}

func (gobCodec) ID() byte     { return 3 }
func (gobCodec) Name() string { return "gob" }
func (gobCodec) Marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	err := gob.NewEncoder(&b).Encode(v)
	return b.Bytes(), err
}
func (gobCodec) Unmarshal(data []byte, v any) error {
	return gob.NewDecoder(bytes.NewReader(data)).Decode(v)
}

// codecTable is what the codec registry holds. RegisterCodec replaces it
// with an extended copy (copy on write, as image.RegisterFormat does), so
// the read on every Get takes no lock: an RWMutex's reader count is one
// cache line that every reading goroutine writes.
type codecTable struct {
	byID   [16]Codec
	byName map[string]Codec
}

var (
	registerMu sync.Mutex // serializes RegisterCodec
	codecs     = func() *atomic.Pointer[codecTable] {
		var p atomic.Pointer[codecTable]
		p.Store(&codecTable{byID: [16]Codec{0: Raw, 1: JSON, 2: Msgpack, 3: Gob},
			byName: map[string]Codec{"raw": Raw, "json": JSON, "msgpack": Msgpack, "gob": Gob}})
		return &p
	}()
)

// RegisterCodec makes an application codec known to every reader in this
// process. Its ID must be 8-15 and unused; its name must be new.
func RegisterCodec(c Codec) error {
	registerMu.Lock()
	defer registerMu.Unlock()
	cur := codecs.Load()
	id := c.ID()
	switch {
	case id < 8 || id > 15:
		return fmt.Errorf("cache: codec %q has id %d: application codecs use ids 8-15", c.Name(), id)
	case cur.byID[id] != nil:
		return fmt.Errorf("cache: codec id %d is taken by %q", id, cur.byID[id].Name())
	case cur.byName[c.Name()] != nil:
		return fmt.Errorf("cache: codec name %q is taken", c.Name())
	}
	next := &codecTable{byID: cur.byID, byName: maps.Clone(cur.byName)}
	next.byID[id], next.byName[c.Name()] = c, c
	codecs.Store(next)
	return nil
}

// CodecByName returns a built-in or registered codec.
func CodecByName(name string) (Codec, error) {
	if c := codecs.Load().byName[name]; c != nil {
		return c, nil
	}
	return nil, fmt.Errorf("cache: unknown codec %q: use raw, json, msgpack, gob or register it with RegisterCodec", name)
}

func codecByID(id byte) Codec { return codecs.Load().byID[id&0x0f] }

// payloads builds and reads one cache's payloads. The zstd encoder and
// decoder are built on first use; an error building them is returned by
// that use (and every later one).
type payloads struct {
	compression Compression
	threshold   int // compress bodies of at least this many bytes
	maxSize     int // bound on a decompressed body (a defence against bombs)
	zstdEnc     func() (*zstd.Encoder, error)
	zstdDec     func() (*zstd.Decoder, error)
}

func newPayloads(compression Compression, threshold, maxSize int) *payloads {
	return &payloads{
		compression: compression, threshold: threshold, maxSize: maxSize,
		zstdEnc: sync.OnceValues(func() (*zstd.Encoder, error) {
			return zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
		}),
		zstdDec: sync.OnceValues(func() (*zstd.Decoder, error) {
			return zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(uint64(maxSize)), zstd.WithDecoderMaxWindow(uint64(max(maxSize, zstd.MinWindowSize))))
		}),
	}
}

// tagsBit in the header byte says that the entry's tags follow it;
// freshBit that its freshness follows them.
const (
	tagsBit  = 0x80
	freshBit = 0x40
)

// freshness is what Typed.GetOrSet stores beside a computed value for
// stale-while-revalidate and early refresh.
type freshness struct {
	staleAt int64  // Unix ms (the writer's clock) when the entry turns stale; 0 never
	tookMS  uint32 // how long the computation took
}

// absentID is the codec id of a remembered absence: a loader said the
// entry does not exist (LoadOptions.NotFoundLifetime). It has no body.
const absentID = 7

// entry is a decoded value.
type entry struct {
	codec    Codec
	body     []byte
	fresh    freshness
	hasFresh bool
	absent   bool // a remembered absence: no codec, no body
}

// encode builds a value: the header, the tags, and the body, compressed
// when it is large enough and compression makes it smaller.
func (p *payloads) encode(codecID byte, tags []string, fresh *freshness, body []byte) ([]byte, error) {
	head := 1
	tagBytes := 0
	if len(tags) > 0 {
		for _, t := range tags {
			tagBytes += len(t) + 1
		}
		tagBytes-- // no separator after the last tag
		head += 4 + tagBytes
	}
	if fresh != nil {
		head += 12
	}
	out := make([]byte, head, head+len(body))
	out[0] = codecID
	if len(tags) > 0 {
		out[0] |= tagsBit
		binary.BigEndian.PutUint32(out[1:5], uint32(tagBytes))
		at := 5
		for i, t := range tags {
			if i > 0 {
				out[at] = '\n'
				at++
			}
			at += copy(out[at:], t)
		}
	}
	if fresh != nil {
		out[0] |= freshBit
		binary.BigEndian.PutUint64(out[head-12:], uint64(fresh.staleAt))
		binary.BigEndian.PutUint32(out[head-4:], fresh.tookMS)
	}
	if p.compression != CompressionNone && p.compression != "" && len(body) >= p.threshold {
		var packed []byte
		switch p.compression {
		case CompressionZstd:
			enc, err := p.zstdEnc()
			if err != nil {
				return nil, fmt.Errorf("zstd encoder: %w", err)
			}
			packed = enc.EncodeAll(body, out)
		case CompressionS2:
			dst := make([]byte, head+s2.MaxEncodedLen(len(body)))
			copy(dst, out)
			packed = dst[:head+len(s2.Encode(dst[head:], body))]
		}
		if len(packed) < head+len(body) {
			packed[0] |= compressionIDs[p.compression] << 4
			return packed, nil
		}
	}
	return append(out, body...), nil
}

// decode checks the header and returns the codec, the uncompressed body
// (of at most p.maxSize bytes) and the freshness if the value has one.
func (p *payloads) decode(id string, payload []byte) (entry, error) {
	if len(payload) == 0 {
		return entry{}, &CorruptError{ID: id, Reason: "empty payload (no header byte): it was not written by keyvalue"}
	}
	h := payload[0]
	codec := codecByID(h)
	absent := h&0x0f == absentID
	if codec == nil && !absent {
		return entry{}, &CorruptError{ID: id, Reason: fmt.Sprintf("codec id %d is unknown here (register it with RegisterCodec)", h&0x0f)}
	}
	_, body, err := tagSection(id, payload)
	if err != nil {
		return entry{}, err
	}
	e := entry{codec: codec, absent: absent}
	if h&freshBit != 0 {
		if len(body) < 12 {
			return entry{}, &CorruptError{ID: id, Reason: "header says freshness follows, but the value ends before it"}
		}
		e.fresh = freshness{staleAt: int64(binary.BigEndian.Uint64(body)), tookMS: binary.BigEndian.Uint32(body[8:])}
		e.hasFresh = true
		body = body[12:]
	}
	e.body, err = p.decompress(id, h>>4&0x03, body)
	if err != nil {
		return entry{}, err
	}
	return e, nil
}

// tagSection splits a stored value (its header byte checked by the
// caller) into its tags, joined by '\n' (nil when the header says none
// follow), and what comes after them.
func tagSection(id string, payload []byte) (tags, rest []byte, err error) {
	rest = payload[1:]
	if payload[0]&tagsBit == 0 {
		return nil, rest, nil
	}
	if len(rest) < 4 {
		return nil, nil, &CorruptError{ID: id, Reason: "header says tags follow, but the value ends before their length"}
	}
	n := binary.BigEndian.Uint32(rest)
	if uint64(n) > uint64(len(rest)-4) {
		return nil, nil, &CorruptError{ID: id, Reason: fmt.Sprintf("tags claim %d bytes, more than the value holds", n)}
	}
	return rest[4 : 4+n], rest[4+n:], nil
}

// decompress returns body uncompressed by the header's compression id.
func (p *payloads) decompress(id string, compression byte, body []byte) ([]byte, error) {
	maxSize := p.maxSize
	switch compression {
	case 0:
		return body, nil
	case 1:
		d, err := p.zstdDec()
		if err != nil {
			return nil, fmt.Errorf("zstd decoder: %w", err)
		}
		out, err := d.DecodeAll(body, nil)
		if err != nil {
			return nil, &CorruptError{ID: id, Reason: "zstd body", Err: err}
		}
		return out, nil
	case 2:
		n, err := s2.DecodedLen(body)
		if err != nil {
			return nil, &CorruptError{ID: id, Reason: "s2 body", Err: err}
		}
		if n > maxSize {
			return nil, &CorruptError{ID: id, Reason: fmt.Sprintf("s2 body claims %d bytes, over the %d-byte maximum", n, maxSize)}
		}
		out, err := s2.Decode(nil, body)
		if err != nil {
			return nil, &CorruptError{ID: id, Reason: "s2 body", Err: err}
		}
		return out, nil
	default:
		return nil, &CorruptError{ID: id, Reason: fmt.Sprintf("compression id %d is unknown", compression)}
	}
}
