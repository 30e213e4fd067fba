package cache_test

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyvalue-go/keyvalue/cache"
)

// upperCodec stores strings upper-cased: an application codec (id 9).
type upperCodec struct{}

func (upperCodec) ID() byte     { return 9 }
func (upperCodec) Name() string { return "test-upper" }
func (upperCodec) Marshal(v any) ([]byte, error) {
	s, ok := v.(string)
	if !ok {
		return nil, errors.New("test-upper encodes strings")
	}
	return []byte(strings.ToUpper(s)), nil
}
func (upperCodec) Unmarshal(data []byte, v any) error {
	s, ok := v.(*string)
	if !ok {
		return errors.New("test-upper decodes into *string")
	}
	*s = string(bytes.ToLower(data))
	return nil
}

// namedCodec is a codec with any id and name, for the refusals.
type namedCodec struct {
	upperCodec
	id   byte
	name string
}

func (c namedCodec) ID() byte     { return c.id }
func (c namedCodec) Name() string { return c.name }

// registerUpper registers upperCodec once per test binary (the registry
// is the process's, and -count may run a test twice).
var registerUpper = sync.OnceValue(func() error { return cache.RegisterCodec(upperCodec{}) })

// TestRegisterCodec: an application codec is found by name, its values
// are read back by any reader in the process (readers decode by the
// header's codec id), registering while other goroutines read is safe (run
// with -race), and bad registrations say why.
func TestRegisterCodec(t *testing.T) {
	_, kv := standalone(t)
	b := newBackend(t, kv, "codecs", cache.Options{})
	typed := cache.NewTyped[string](b, upperCodec{})
	word := "hello"
	if err := typed.Set(ctx(t), "greeting", word, nil, time.Minute); err != nil {
		t.Fatal(err)
	}
	// Readers run while the codec is registered.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for i := 0; i < 100000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				_, _ = cache.CodecByName("json")
				_, _ = cache.CodecByName("test-upper")
			}
		})
	}
	err := registerUpper()
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if c, err := cache.CodecByName("test-upper"); err != nil || c.ID() != 9 {
		t.Fatalf("CodecByName(test-upper) = %v, %v", c, err)
	}
	got, err := typed.Get(ctx(t), "greeting")
	if err != nil || got != "hello" {
		t.Fatalf("Get = %q, %v; want hello", got, err)
	}
	// Another reader of the same value with another codec still decodes
	// it by the header's id.
	if got, err := cache.NewTyped[string](b, cache.JSON).Get(ctx(t), "greeting"); err != nil || got != "hello" {
		t.Fatalf("Get through a JSON Typed = %q, %v; want hello (decoded by the header's codec id)", got, err)
	}

	for _, tc := range []struct {
		codec cache.Codec
		want  string
	}{
		{namedCodec{id: 3, name: "mine"}, `cache: codec "mine" has id 3: application codecs use ids 8-15`},
		{namedCodec{id: 16, name: "mine"}, `cache: codec "mine" has id 16: application codecs use ids 8-15`},
		{namedCodec{id: 9, name: "mine"}, `cache: codec id 9 is taken by "test-upper"`},
		{namedCodec{id: 10, name: "json"}, `cache: codec name "json" is taken`},
	} {
		err := cache.RegisterCodec(tc.codec)
		if err == nil || err.Error() != tc.want {
			t.Errorf("RegisterCodec(id %d, %q) = %v, want %q", tc.codec.ID(), tc.codec.Name(), err, tc.want)
		}
	}
	if _, err := cache.CodecByName("mine"); err == nil || !strings.Contains(err.Error(), `unknown codec "mine"`) {
		t.Errorf("a refused codec was registered anyway: %v", err)
	}
}
