package session

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"os"
	"slices"
	"sync"
)

// Session ids and the secrets that protect them: fresh ids, the keys
// derived from Options.Key (and the previous keys), the keyed hash an id
// is stored under, and the sealed copy of the id a record carries.

// NewID returns a fresh session id: 32 random bytes, base64url (43 characters).
func NewID() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// validID accepts what NewID produces and other reasonable cookie values:
// 16 to 256 printable ASCII characters without spaces.
func validID(id string) bool {
	if len(id) < 16 || len(id) > 256 {
		return false
	}
	for i := range len(id) {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}

// secrets returns the current key, then the previous ones, read from
// their files where given, each checked.
func (o Options) secrets() ([][]byte, error) {
	current := o.Key
	if o.KeyFile != "" {
		if len(o.Key) > 0 {
			return nil, fmt.Errorf("%w: Key and KeyFile are both set: use one", ErrInvalidOptions)
		}
		b, err := readKeyFile(o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: KeyFile: %v", ErrInvalidOptions, err)
		}
		current = b
	}
	if len(current) < MinKeyBytes {
		return nil, fmt.Errorf("%w: Key has %d bytes; use at least %d random bytes (e.g. openssl rand -hex 32)", ErrInvalidOptions, len(current), MinKeyBytes)
	}
	out := [][]byte{current}
	for i, k := range o.PreviousKeys {
		if len(k) < MinKeyBytes {
			return nil, fmt.Errorf("%w: PreviousKeys[%d] has %d bytes; keys have at least %d", ErrInvalidOptions, i, len(k), MinKeyBytes)
		}
		out = append(out, k)
	}
	for _, f := range o.PreviousKeyFiles {
		k, err := readKeyFile(f)
		if err != nil {
			return nil, fmt.Errorf("%w: PreviousKeyFiles: %v", ErrInvalidOptions, err)
		}
		if len(k) < MinKeyBytes {
			return nil, fmt.Errorf("%w: PreviousKeyFiles %s holds %d bytes; keys have at least %d", ErrInvalidOptions, f, len(k), MinKeyBytes)
		}
		out = append(out, k)
	}
	for i := 1; i < len(out); i++ {
		if bytes.Equal(out[i], current) {
			return nil, fmt.Errorf("%w: a previous key equals the current Key", ErrInvalidOptions)
		}
	}
	return out, nil
}

// readKeyFile reads a key file, ignoring one trailing newline.
func readKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(bytes.TrimSuffix(b, []byte("\n")), []byte("\r")), nil
}

// storeKey is what one secret is used as: separate keys for hashing ids
// and for sealing them, both derived from it.
type storeKey struct {
	ids  *sync.Pool // of *idHasher keyed with the id-hashing key
	aead cipher.AEAD
}

// idHasher is a keyed HMAC-SHA256 with its buffers, reused through
// storeKey.ids: hashing an id then allocates only the resulting string.
type idHasher struct {
	mac           hash.Hash
	in, sum, text []byte
}

func deriveKey(secret []byte) storeKey {
	derive := func(label string) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte("keyvalue/session/" + label))
		return m.Sum(nil)
	}
	block, _ := aes.NewCipher(derive("seal")) // a 32-byte key never fails
	aead, _ := cipher.NewGCM(block)
	idKey := derive("id")
	ids := &sync.Pool{New: func() any { return &idHasher{mac: hmac.New(sha256.New, idKey)} }}
	return storeKey{ids: ids, aead: aead}
}

// hash is HMAC-SHA256(the id-hashing key, id) in hex.
func (k storeKey) hash(id string) string {
	h := k.ids.Get().(*idHasher)
	defer k.ids.Put(h)
	h.mac.Reset()
	h.in = append(h.in[:0], id...)
	h.mac.Write(h.in)
	h.sum = h.mac.Sum(h.sum[:0])
	h.text = hex.AppendEncode(h.text[:0], h.sum)
	return string(h.text)
}

// hash is the member and key suffix for an id under the current key.
func (s *Store) hash(id string) string { return s.keys[0].hash(id) }

// hashes are an id's hashes under every key, the current one first.
func (s *Store) hashes(id string) []string {
	out := make([]string, len(s.keys))
	for i, k := range s.keys {
		out[i] = k.hash(id)
	}
	return out
}

// seal encrypts an id with the current key.
func (s *Store) seal(id string) string {
	aead := s.keys[0].aead
	nonce := make([]byte, aead.NonceSize())
	_, _ = rand.Read(nonce)
	return base64.RawStdEncoding.EncodeToString(aead.Seal(nonce, nonce, []byte(id), nil))
}

// unseal decrypts an id sealed with any of the keys.
func (s *Store) unseal(sealed string) (string, bool) {
	id, _, ok := s.unsealInto(sealed, nil)
	return id, ok
}

// unsealInto is unseal decoding into scratch (grown as needed and
// returned for the next call), so that a listing opening hundreds of ids
// allocates only the ids.
func (s *Store) unsealInto(sealed string, scratch []byte) (string, []byte, bool) {
	n := base64.RawStdEncoding.DecodedLen(len(sealed))
	scratch = slices.Grow(scratch[:0], 2*n)[:2*n]
	b, opened := scratch[:n], scratch[n:n:2*n]
	if _, err := base64.RawStdEncoding.Decode(b, []byte(sealed)); err != nil {
		return "", scratch, false
	}
	for _, k := range s.keys {
		ns := k.aead.NonceSize()
		if len(b) < ns {
			return "", scratch, false
		}
		if id, err := k.aead.Open(opened, b[:ns], b[ns:], nil); err == nil {
			return string(id), scratch, true
		}
	}
	return "", scratch, false
}
