package keyvalue_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/keyvalue-go/keyvalue"
)

func TestACLRules(t *testing.T) {
	a := keyvalue.Permissions{Component: "a", KeyPatterns: []string{"kv:{c:a}:*"}, Commands: []keyvalue.Command{keyvalue.Cmd("get", "k"), keyvalue.Cmd("client|tracking", "ON")}}
	b := keyvalue.Permissions{Component: "b", KeyPatterns: []string{"kv:{c:a}:*", "kv:{s:b}:*"}, Commands: []keyvalue.Command{keyvalue.Cmd("get", "k"), keyvalue.Cmd("zadd", "k", "1", "m")}}
	got := keyvalue.ACLRules(a, b)
	want := "on resetkeys resetchannels -@all ~kv:{c:a}:* ~kv:{s:b}:* +client|tracking +get +zadd"
	if got != want {
		t.Errorf("ACLRules = %q\nwant       %q", got, want)
	}
	if w := keyvalue.Cmd("client|tracking", "ON", "OPTIN").Words(); !slices.Equal(w, []string{"CLIENT", "TRACKING", "ON", "OPTIN"}) {
		t.Errorf("Words = %v", w)
	}
	// What every connection needs follows the configuration.
	plain := keyvalue.ConnectionPermissions(keyvalue.Config{ClientCache: keyvalue.ClientCacheConfig{Disable: true}})
	named := keyvalue.ConnectionPermissions(keyvalue.Config{ClientName: "web", DB: 2})
	rules := func(p keyvalue.Permissions) string { return keyvalue.ACLRules(p) }
	if strings.Contains(rules(plain), "client|tracking") || strings.Contains(rules(plain), "select") {
		t.Errorf("without caching or a database: %s", rules(plain))
	}
	for _, w := range []string{"+client|setname", "+select", "+client|tracking", "+multi", "+exec", "+hello", "+evalsha"} {
		if !strings.Contains(rules(named), w) {
			t.Errorf("with a client name, db 2 and caching: %s lacks %s", rules(named), w)
		}
	}
}
