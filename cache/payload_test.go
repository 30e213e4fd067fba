package cache

import (
	"bytes"
	"errors"
	"testing"
)

func TestEncodeDecodeRoundTrip(t *testing.T) {
	body := bytes.Repeat([]byte("keyvalue "), 300)
	for _, comp := range []Compression{CompressionNone, CompressionZstd, CompressionS2} {
		for _, size := range []int{0, 10, len(body)} {
			enc := newPayloads(comp, 64, 1<<20)
			p := mustEncode(t, enc, JSON.ID(), body[:size])
			e, err := enc.decode("id", p)
			if err != nil || e.codec != JSON || !bytes.Equal(e.body, body[:size]) || e.hasFresh {
				t.Fatalf("%s/%d: codec %v err %v", comp, size, e.codec, err)
			}
			// With tags and freshness, the body and both come back.
			fresh := &freshness{staleAt: 1_700_000_000_123, tookMS: 42}
			p, err = enc.encode(JSON.ID(), []string{"a", "b"}, fresh, body[:size])
			if err != nil {
				t.Fatal(err)
			}
			if e, err = enc.decode("id", p); err != nil || !bytes.Equal(e.body, body[:size]) || !e.hasFresh || e.fresh != *fresh {
				t.Fatalf("%s/%d with freshness: %+v, %v", comp, size, e.fresh, err)
			}
			if comp != CompressionNone && size == len(body) && len(p) >= size/4 {
				t.Errorf("%s did not compress %d repetitive bytes: %d", comp, size, len(p))
			}
		}
	}
	// Incompressible bodies are stored plain even with compression on.
	rnd := []byte("\x8a\x13\xfe\x01\x77\x90\x3c\xd1\x05\xee\x42\x19\xab\x6f\x00\xc3")
	if p := mustEncode(t, newPayloads(CompressionZstd, 1, 1<<20), 0, rnd); p[0] != 0 {
		t.Errorf("incompressible body stored with header 0x%02x", p[0])
	}
}

func TestDecompressionBombRefused(t *testing.T) {
	big := make([]byte, 4<<20)
	for _, comp := range []Compression{CompressionZstd, CompressionS2} {
		enc := newPayloads(comp, 1, 1<<20)
		p := mustEncode(t, newPayloads(comp, 1, 8<<20), 0, big)
		_, err := enc.decode("bomb", p)
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: 4 MiB from %d bytes with a 1 MiB limit: err = %v", comp, len(p), err)
		}
		t.Logf("%s: %v", comp, err)
	}
}

// FuzzDecode feeds arbitrary payloads to the decoder: it must return a
// body or an ErrCorrupt error, never panic or exceed the size limit.
// Run: go test ./cache -run '^$' -fuzz FuzzDecode -fuzztime 30s
func FuzzDecode(f *testing.F) {
	enc := func(c Compression, codec byte, s string) []byte {
		return mustEncode(f, newPayloads(c, 1, 1<<20), codec, bytes.Repeat([]byte(s), 20))
	}
	f.Add([]byte{})
	f.Add([]byte("plain text"))
	f.Add(enc(CompressionNone, 1, `{"a":1}`))
	f.Add(enc(CompressionZstd, 2, "msgpack-ish"))
	f.Add(enc(CompressionS2, 3, "gob-ish"))
	f.Add([]byte{0x20, 0xff, 0xff, 0xff, 0xff, 0x0f})
	tagged, err := newPayloads(CompressionZstd, 1, 1<<20).encode(1, []string{"a", "pageId_7"}, &freshness{staleAt: 1, tookMS: 2}, bytes.Repeat([]byte("x"), 64))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tagged)
	f.Add([]byte{0x81, 0, 0, 0, 9, 'a'})
	f.Fuzz(func(t *testing.T, payload []byte) {
		const limit = 1 << 16
		e, err := newPayloads(CompressionNone, 1, limit).decode("fuzz", payload)
		codec, body := e.codec, e.body
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error does not match ErrCorrupt: %v", err)
			}
			return
		}
		if codec == nil {
			t.Fatal("nil codec without error")
		}
		if len(body) > limit && payload[0]>>4 != 0 {
			t.Fatalf("decompressed %d bytes past the %d limit", len(body), limit)
		}
		var v any
		_ = codec.Unmarshal(body, &v) // must not panic
	})
}

func mustEncode(t testing.TB, p *payloads, codecID byte, body []byte) []byte {
	t.Helper()
	out, err := p.encode(codecID, nil, nil, body)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
