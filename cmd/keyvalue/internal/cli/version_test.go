package cli

import (
	"runtime/debug"
	"strings"
	"testing"
)

// TestVersion: keyvalue version and keyvalue --version print the four
// versions (a test binary carries no dependency versions: they read
// (unknown) here; make release-check runs an installed binary).
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		out, err := run(t, args...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		for _, want := range []string{"keyvalue ", "\nlibrary   github.com/keyvalue-go/keyvalue ", "\nvalkey-go ", "\ngo        go1."} {
			if !strings.Contains(out, want) {
				t.Errorf("%v does not say %q", args, want)
			}
		}
	}
}

// TestVersionsOfAnInstalledBinary: the versions of a binary installed with
// go install ...@v0.1.0, as its build information gives them.
func TestVersionsOfAnInstalledBinary(t *testing.T) {
	info := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: cliModule, Version: "v0.1.0"},
		Deps: []*debug.Module{{Path: "github.com/keyvalue-go/keyvalue", Version: "v0.1.0"}, {Path: valkeyModule, Version: "v1.0.79"}}}
	got := versionsOf(info, "v0.1.0").String()
	want := "keyvalue v0.1.0\nlibrary   github.com/keyvalue-go/keyvalue v0.1.0\nvalkey-go v1.0.79\ngo        go1.26.0 "
	if !strings.HasPrefix(got, want) {
		t.Errorf("got\n%s\nwant it to start with\n%s", got, want)
	}
	if v := versionsOf(nil, "(unknown)"); v.cli != "(devel)" || v.valkeyGo != "(unknown)" {
		t.Errorf("without build information: %+v", v)
	}
}
