package keyvalue

import (
	"runtime/debug"
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
