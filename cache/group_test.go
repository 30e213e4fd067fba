package cache_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/cache"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/servertest"
)

func TestGroupFromConfigFile(t *testing.T) {
	t.Parallel()
	s := servertest.Standalone(t)
	var yaml strings.Builder
	fmt.Fprintf(&yaml, "addrs: [%s]\nclient_name: app\ncaches:\n", s.Addr())
	names := []string{"pages", "hash", "rootline", "imagesizes", "runtime", "assets", "l10n", "fluid", "extbase", "workspaces", "sessions2"}
	for _, n := range names {
		fmt.Fprintf(&yaml, "  %s:\n    default_lifetime: 720h\n    compression: zstd\n", n)
	}
	yaml.WriteString("  hash_db2:\n    db: 2\n    default_lifetime: unlimited\n    codec: msgpack\n")
	path := filepath.Join(t.TempDir(), "keyvalue.yaml")
	if err := os.WriteFile(path, []byte(yaml.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	var cfg cache.Config
	if err := keyvalue.LoadFile(path, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg.Logger = quiet
	start := time.Now()
	group, err := cache.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(group.Close)
	t.Logf("opened %d caches in %s", len(group.Names()), time.Since(start))
	if n := clientConns(t, s, ""); n != 0 {
		t.Fatalf("%d connections before the first command", n)
	}
	for _, n := range names {
		b, _ := group.Backend(n)
		mustSet(t, b, "x", "t")
	}
	oneClient := clientConns(t, s, "db=0")
	typed, err := cache.TypedFrom[map[string]int](group, "hash_db2")
	if err != nil {
		t.Fatal(err)
	}
	if err := typed.Set(ctx(t), "k", map[string]int{"a": 1}, nil, 0); err != nil {
		t.Fatal(err)
	}
	if n0, n2 := clientConns(t, s, "db=0"), clientConns(t, s, "db=2"); n0 != oneClient || n2 < 1 || n2 > oneClient {
		t.Errorf("connections: %d on db 0 (one client: %d), %d on db 2; want one client per database", n0, oneClient, n2)
	}
	t.Logf("11 caches on db 0: %d connection(s); 1 cache on db 2: %d", oneClient, clientConns(t, s, "db=2"))
	if group.Codec("hash_db2") != cache.Msgpack || group.Codec("pages") != cache.JSON {
		t.Error("declared codecs not applied")
	}
	if _, err := group.Backend("nope"); err == nil || !strings.Contains(err.Error(), `no cache named "nope"`) {
		t.Errorf("unknown cache: %v", err)
	}
}

// clientConns counts connections named app whose CLIENT LIST line contains field.
func clientConns(t *testing.T, s *servertest.Server, field string) int {
	r, err := s.Do("CLIENT", "LIST")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for line := range strings.SplitSeq(r, "\n") {
		if strings.Contains(line, " name=app ") && strings.Contains(line, field) {
			n++
		}
	}
	return n
}

func TestGroupConfigErrorsNameTheKey(t *testing.T) {
	t.Parallel()
	two := 2
	for key, spec := range map[string]cache.Spec{
		"caches.pages.default_lifetime": {DefaultLifetime: "forever"},
		"caches.pages.compression":      {Compression: "gzip"},
		"caches.pages.codec":            {Codec: "php"},
		"caches.pages.batch_size":       {BatchSize: -1},
		"caches.pages.db":               {DB: &two},
	} {
		cfg := cache.Config{Config: keyvalue.Config{Mode: keyvalue.ModeCluster, Addrs: []string{"127.0.0.1:7000"}}, Caches: map[string]cache.Spec{"pages": spec}}
		_, err := cache.Open(cfg)
		var ce *keyvalue.ConfigError
		if !errors.As(err, &ce) || ce.Key != key {
			t.Errorf("%s: err = %v", key, err)
		}
		t.Logf("%v", err)
	}
	if _, err := cache.Open(cache.Config{Caches: map[string]cache.Spec{"bad name": {}}}); err == nil || !strings.Contains(err.Error(), "caches.bad name") {
		t.Errorf("bad cache name: %v", err)
	}
}

func TestCachesFromEnvAndURL(t *testing.T) {
	var cfg cache.Config
	if _, err := keyvalue.LoadEnv([]string{"KEYVALUE_CACHES_PAGE_CACHE_DEFAULT_LIFETIME=720h", "KEYVALUE_CACHES_PAGE_CACHE_DB=3", "KEYVALUE_CACHES_HASH_CODEC=msgpack"}, &cfg); err != nil {
		t.Fatal(err)
	}
	if p := cfg.Caches["page_cache"]; p.DefaultLifetime != "720h" || p.DB == nil || *p.DB != 3 || cfg.Caches["hash"].Codec != "msgpack" {
		t.Errorf("caches from env: %+v", cfg.Caches)
	}
	var u cache.Config
	err := keyvalue.LoadURL("redis://h?caches_pages_compression=zstd&caches_pages_local_cache_ttl=5s&client_name=web", &u)
	if err != nil || u.ClientName != "web" || u.Caches["pages"].Compression != "zstd" || u.Caches["pages"].LocalCacheTTL != 5*time.Second {
		t.Errorf("caches from URL: %+v, %v", u.Caches, err)
	}
	for env, want := range map[string]string{
		"KEYVALUE_CACHES_PAGES_COLOUR=red": "config KEYVALUE_CACHES_PAGES_COLOUR: unknown key: use caches_NAME_KEY",
		"KEYVALUE_CACHES_PAGES_DB=x":       `config KEYVALUE_CACHES_PAGES_DB: "x" is not a whole number`,
	} {
		if _, err := keyvalue.LoadEnv([]string{env}, &cfg); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", env, err, want)
		}
	}
}

// TestConnectionFileRejectsCaches pins where named caches are read: a file
// with a caches section is a cache.Config, and loading it into a plain
// keyvalue.Config names the key it does not know.
func TestConnectionFileRejectsCaches(t *testing.T) {
	doc := []byte("addrs: [127.0.0.1:6379]\ncaches:\n  pages:\n    codec: json\n")
	var conn keyvalue.Config
	if err := keyvalue.LoadBytes(doc, &conn); err == nil || !strings.Contains(err.Error(), "caches") {
		t.Errorf("LoadBytes into a keyvalue.Config: %v", err)
	}
	var cfg cache.Config
	if err := keyvalue.LoadBytes(doc, &cfg); err != nil || cfg.Addrs[0] != "127.0.0.1:6379" || cfg.Caches["pages"].Codec != "json" {
		t.Errorf("LoadBytes into a cache.Config = %+v, %v", cfg, err)
	}
	if err := keyvalue.LoadBytes([]byte("caches:\n  pages:\n    colour: red\n"), &cfg); err == nil || !strings.Contains(err.Error(), "line 3 (caches.pages.colour)") {
		t.Errorf("unknown cache key: %v", err)
	}
}
