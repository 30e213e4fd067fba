package keyvalue

import (
	"runtime/debug"
	"strings"
	"testing"
)

// TestVersionIn: the library's version as a program that requires it, a
// workspace that replaces it, and the library's own tests see it.
func TestVersionIn(t *testing.T) {
	for want, info := range map[string]*debug.BuildInfo{
		"v0.1.0":    {Main: debug.Module{Path: "example.com/app"}, Deps: []*debug.Module{{Path: modulePath, Version: "v0.1.0"}}},
		"(devel)":   {Main: debug.Module{Path: "example.com/app"}, Deps: []*debug.Module{{Path: modulePath, Version: "v0.1.0", Replace: &debug.Module{Path: "./"}}}},
		"v0.2.0":    {Main: debug.Module{Path: modulePath, Version: "v0.2.0"}},
		"(unknown)": {Main: debug.Module{Path: "example.com/app"}},
	} {
		if got := versionIn(info); got != want {
			t.Errorf("versionIn(%+v) = %q, want %q", info.Main, got, want)
		}
	}
	if got := versionIn(nil); got != "(unknown)" {
		t.Errorf("versionIn(nil) = %q", got)
	}
}

// TestServerVersionCheck: the versions INFO server reports, against the
// minimums.
func TestServerVersionCheck(t *testing.T) {
	for info, want := range map[string]string{
		"redis_version:6.2.14\r\nredis_mode:standalone\r\n":                     "Redis 6.2.14; keyvalue needs Redis 7.0 or later, or Valkey 7.2 or later",
		"redis_version:6.0.9\r\n":                                               "Redis 6.0.9;",
		"redis_version:7.0.15\r\n":                                              "",
		"redis_version:7.4.1\r\n":                                               "",
		"redis_version:8.0.0\r\n":                                               "",
		"redis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:8.0.1\r\n": "",
		"redis_version:7.2.4\r\nserver_name:valkey\r\n":                         "",
		"redis_version:unknown\r\n":                                             "", // unreadable: not refused
	} {
		err := parseServerVersion(info).check(supported)
		switch {
		case want == "" && err != nil:
			t.Errorf("%q refused: %v", info, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%q: %v, want %q", info, err, want)
		}
	}
	if err := parseServerVersion("redis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:7.2.5\r\n").check(minimums{"7.0", "8.0"}); err == nil || !strings.Contains(err.Error(), "Valkey 7.2.5;") {
		t.Errorf("Valkey under its minimum: %v", err)
	}
}
