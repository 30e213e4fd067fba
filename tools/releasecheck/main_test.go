package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/modfile"
)

// TestCheckModulesRefuses: a replace directive, a missing LICENSE and a
// requirement on a sibling module at another version each fail the check,
// with a message naming the file and the fix.
func TestCheckModulesRefuses(t *testing.T) {
	root := t.TempDir()
	write := func(name, text string) {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("LICENSE", "x")
	write("go.mod", "module "+prefix+"\n\ngo 1.26.0\n")
	write("cmd/keyvalue/go.mod", "module "+prefix+"/cmd/keyvalue\n\ngo 1.26.0\n\nrequire "+prefix+" v0.0.9\n\nreplace "+prefix+" => ../../\n")
	var mods []mod
	for _, dir := range []string{".", "cmd/keyvalue"} {
		data, err := os.ReadFile(filepath.Join(root, dir, "go.mod"))
		if err != nil {
			t.Fatal(err)
		}
		mf, err := modfile.Parse("go.mod", data, nil)
		if err != nil {
			t.Fatal(err)
		}
		mods = append(mods, mod{dir: dir, path: mf.Module.Mod.Path, file: mf})
	}
	err := checkModules(root, mods, "v0.1.0")
	if err == nil {
		t.Fatal("no error")
	}
	t.Log(err)
	for _, want := range []string{
		"cmd/keyvalue/go.mod: replace " + prefix + ": go install refuses a module with a replace directive",
		"cmd/keyvalue/go.mod: requires " + prefix + " v0.0.9; the release requires its own modules at v0.1.0",
		"cmd/keyvalue: no LICENSE",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q", want)
		}
	}
	if strings.Contains(err.Error(), "\n.: no LICENSE") || strings.HasPrefix(err.Error(), ".: no LICENSE") {
		t.Error("the root has a LICENSE but was reported")
	}
}
