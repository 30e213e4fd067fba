// Command releasecheck tests a release of keyvalue's modules the way users
// will get it, before it is tagged (make release-check VERSION=vX.Y.Z):
//
//  1. It checks every module of the tree: no replace directive (go install
//     refuses a module that has one), a LICENSE, and every requirement on
//     another module of the tree at VERSION.
//  2. It builds a module proxy in a temporary directory (file://) holding
//     each module at VERSION, zipped from the working tree with
//     golang.org/x/mod/zip: the files git tracks or would track (ignored
//     files, such as bin/, are left out; so are nested modules' files).
//  3. With an empty GOPATH and module cache, that proxy first (then the
//     local module cache's downloads, then the usual GOPROXY), no
//     workspace, and the checksum database off for keyvalue's modules only,
//     it runs (a) go install github.com/keyvalue-go/keyvalue/cmd/keyvalue@VERSION
//     and checks that keyvalue version prints VERSION, and (b) go get of
//     the library and the gorilla adapter at VERSION in a throwaway consumer
//     module, then go build and go vet of a program that uses cache,
//     session, lock, httpcache and gorillastore, and go test of its test,
//     which starts a server with keyvaluetest (skipped without one).
//
// It prints each step and exits non-zero at the first failure.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	"golang.org/x/mod/zip"
)

// prefix is the module path every module of the tree shares.
const prefix = "github.com/keyvalue-go/keyvalue"

func main() {
	version := flag.String("version", "", "the version to check, e.g. v0.1.0")
	root := flag.String("root", ".", "the root of the tree (the library's module)")
	keep := flag.Bool("keep", false, "keep the temporary directory (its path is printed)")
	flag.Parse()
	if err := run(*root, *version, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "release-check: FAIL:", err)
		os.Exit(1)
	}
	fmt.Println("release-check: ok:", *version)
}

// mod is one module of the tree.
type mod struct {
	dir  string // relative to the root, "." for the library
	path string
	file *modfile.File
}

func run(root, version string, keep bool) error {
	if !semver.IsValid(version) || semver.Canonical(version) != version || semver.Build(version) != "" {
		return fmt.Errorf("-version %q is not a canonical semantic version such as v0.1.0", version)
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return err
	}
	mods, err := modules(root)
	if err != nil {
		return err
	}
	if err := checkModules(root, mods, version); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "keyvalue-release-check-")
	if err != nil {
		return err
	}
	if keep {
		fmt.Println("release-check: working in", tmp)
	} else {
		defer removeAll(tmp)
	}
	proxy := filepath.Join(tmp, "proxy")
	for _, m := range mods {
		if err := publish(root, proxy, m, version, mods); err != nil {
			return fmt.Errorf("%s: %w", m.path, err)
		}
	}
	env, err := userEnv(tmp, proxy)
	if err != nil {
		return err
	}
	if err := installCLI(tmp, env, version); err != nil {
		return err
	}
	return buildConsumer(tmp, env, version)
}

// modules lists the modules of the tree: every go.mod git knows of.
func modules(root string) ([]mod, error) {
	files, err := gitFiles(root, ".")
	if err != nil {
		return nil, err
	}
	var mods []mod
	for _, f := range files {
		if path.Base(f) != "go.mod" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			return nil, err
		}
		mf, err := modfile.Parse(f, data, nil)
		if err != nil {
			return nil, err
		}
		mods = append(mods, mod{dir: path.Dir(f), path: mf.Module.Mod.Path, file: mf})
	}
	slices.SortFunc(mods, func(a, b mod) int {
		return strings.Compare(strings.TrimPrefix(a.dir, "."), strings.TrimPrefix(b.dir, "."))
	})
	if len(mods) == 0 || mods[0].dir != "." {
		return nil, fmt.Errorf("%s holds no go.mod at its root: pass -root", root)
	}
	return mods, nil
}

// checkModules applies the rules every released module follows.
func checkModules(root string, mods []mod, version string) error {
	var errs []error
	for _, m := range mods {
		fmt.Printf("release-check: module %s (%s)\n", m.path, m.dir)
		if !strings.HasPrefix(m.path, prefix) {
			errs = append(errs, fmt.Errorf("%s/go.mod: module %s is not under %s", m.dir, m.path, prefix))
		}
		for _, r := range m.file.Replace {
			errs = append(errs, fmt.Errorf("%s/go.mod: replace %s: go install refuses a module with a replace directive; develop with the go.work instead", m.dir, r.Old.Path))
		}
		for _, r := range m.file.Require {
			if strings.HasPrefix(r.Mod.Path, prefix) && r.Mod.Version != version {
				errs = append(errs, fmt.Errorf("%s/go.mod: requires %s %s; the release requires its own modules at %s", m.dir, r.Mod.Path, r.Mod.Version, version))
			}
		}
		if _, err := os.Stat(filepath.Join(root, m.dir, "LICENSE")); err != nil {
			errs = append(errs, fmt.Errorf("%s: no LICENSE: every module ships its own copy", m.dir))
		}
	}
	return errors.Join(errs...)
}

// publish writes module m at version into the proxy directory: list,
// .info, .mod and .zip, as a GOPROXY serves them.
func publish(root, proxy string, m mod, version string, mods []mod) error {
	escaped, err := module.EscapePath(m.path)
	if err != nil {
		return err
	}
	dir := filepath.Join(proxy, filepath.FromSlash(escaped), "@v")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	files, err := moduleFiles(root, m, mods)
	if err != nil {
		return err
	}
	var zipped bytes.Buffer
	if err := zip.Create(&zipped, module.Version{Path: m.path, Version: version}, files); err != nil {
		return err
	}
	gomod, err := os.ReadFile(filepath.Join(root, m.dir, "go.mod"))
	if err != nil {
		return err
	}
	info, err := json.Marshal(struct {
		Version string
		Time    time.Time
	}{version, time.Now().UTC().Truncate(time.Second)})
	if err != nil {
		return err
	}
	for name, data := range map[string][]byte{
		"list": []byte(version + "\n"), version + ".info": info, version + ".mod": gomod, version + ".zip": zipped.Bytes(),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return err
		}
	}
	fmt.Printf("release-check: %s@%s: %d files, %d KiB zipped\n", m.path, version, len(files), zipped.Len()/1024)
	return nil
}

// moduleFiles lists the files of module m from the working tree: those git
// tracks or would track, outside the directories of other modules.
func moduleFiles(root string, m mod, mods []mod) ([]zip.File, error) {
	names, err := gitFiles(root, m.dir)
	if err != nil {
		return nil, err
	}
	var out []zip.File
	for _, name := range names {
		rel := name
		if m.dir != "." {
			rel = strings.TrimPrefix(name, m.dir+"/")
		}
		if slices.ContainsFunc(mods, func(o mod) bool { return o.dir != m.dir && inside(name, o.dir) && inside(o.dir, m.dir) }) {
			continue // another module's file
		}
		full := filepath.Join(root, name)
		if _, err := os.Lstat(full); errors.Is(err, fs.ErrNotExist) {
			continue // deleted in the working tree
		}
		out = append(out, file{rel: rel, full: full})
	}
	return out, nil
}

// inside reports whether the slash path name lies in directory dir.
func inside(name, dir string) bool {
	return dir == "." || name == dir || strings.HasPrefix(name, dir+"/")
}

// gitFiles lists the files under dir (relative to root) that git tracks or
// would track (untracked files that are not ignored), root-relative.
func gitFiles(root, dir string) ([]string, error) {
	cmd := exec.Command("git", "ls-files", "--cached", "--others", "--exclude-standard", "-z", "--", dir)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("git ls-files in %s: %w", root, err)
	}
	var names []string
	for n := range strings.SplitSeq(string(out), "\x00") {
		if n != "" {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// file is a working-tree file in a module zip.
type file struct{ rel, full string }

func (f file) Path() string                 { return f.rel }
func (f file) Lstat() (os.FileInfo, error)  { return os.Lstat(f.full) }
func (f file) Open() (io.ReadCloser, error) { return os.Open(f.full) }

// userEnv is the environment of a user who has never built keyvalue: an
// empty GOPATH and module cache, the release's proxy first.
func userEnv(tmp, proxy string) ([]string, error) {
	cache, err := goEnv("GOMODCACHE")
	if err != nil {
		return nil, err
	}
	usual, err := goEnv("GOPROXY")
	if err != nil {
		return nil, err
	}
	proxies := []string{"file://" + filepath.ToSlash(proxy)}
	if cache != "" {
		// Modules this machine downloaded before serve again without a
		// network round trip (the module cache has a proxy's layout).
		proxies = append(proxies, "file://"+filepath.ToSlash(filepath.Join(cache, "cache", "download")))
	}
	if usual != "" && usual != "off" {
		proxies = append(proxies, usual)
	}
	gopath := filepath.Join(tmp, "gopath")
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "GOPATH", "GOMODCACHE", "GOPROXY", "GONOSUMDB", "GONOSUMCHECK", "GOPRIVATE", "GONOPROXY", "GOWORK", "GOFLAGS", "GOBIN", "GO111MODULE":
			return true
		}
		return false
	})
	return append(env,
		"GOPATH="+gopath,
		"GOMODCACHE="+filepath.Join(gopath, "pkg", "mod"),
		"GOBIN="+filepath.Join(tmp, "bin"),
		"GOPROXY="+strings.Join(proxies, ","),
		"GONOSUMDB="+prefix, // the checksum database does not know an unreleased version
		"GOWORK=off",
		"GOFLAGS=-modcacherw",
		"GOTOOLCHAIN=local",
	), nil
}

func goEnv(key string) (string, error) {
	out, err := exec.Command("go", "env", key).Output()
	if err != nil {
		return "", fmt.Errorf("go env %s: %w", key, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// installCLI runs go install of the CLI at version and checks what
// keyvalue version says.
func installCLI(tmp string, env []string, version string) error {
	target := prefix + "/cmd/keyvalue@" + version
	if err := goCmd(tmp, env, "install", target); err != nil {
		return err
	}
	out, err := exec.Command(filepath.Join(tmp, "bin", "keyvalue"), "version").CombinedOutput()
	if err != nil {
		return fmt.Errorf("keyvalue version: %w\n%s", err, out)
	}
	fmt.Printf("release-check: keyvalue version:\n%s", out)
	for _, want := range []string{"keyvalue " + version + "\n", prefix + " " + version + "\n"} {
		if !strings.Contains(string(out), want) {
			return fmt.Errorf("keyvalue version does not say %q", strings.TrimSpace(want))
		}
	}
	return nil
}

// consumer is the program a user writes with keyvalue at the release.
const consumer = `package main

import (
	"context"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/gorilla/sessions"
	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/cache"
	"github.com/keyvalue-go/keyvalue/httpcache"
	"github.com/keyvalue-go/keyvalue/lock"
	"github.com/keyvalue-go/keyvalue/session"
	"github.com/keyvalue-go/keyvalue/session/gorillastore"
)

func main() {
	var cfg keyvalue.Config
	if _, err := keyvalue.LoadEnv(os.Environ(), &cfg); err != nil {
		log.Fatal(err)
	}
	client, err := keyvalue.Open(cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	pages, err := cache.New(client, "pages", cache.Options{DefaultLifetime: time.Hour})
	if err != nil {
		log.Fatal(err)
	}
	pageCache, err := httpcache.New(pages, httpcache.Options{DefaultTTL: time.Minute})
	if err != nil {
		log.Fatal(err)
	}
	sessionStore, err := session.New(client, session.Options{Prefix: "app", Key: []byte(os.Getenv("SESSION_KEY"))})
	if err != nil {
		log.Fatal(err)
	}
	var store sessions.Store = gorillastore.New(sessionStore)
	locker := lock.New(client, lock.Options{TTL: 30 * time.Second})
	mu, err := locker.Mutex("nightly-import")
	if err != nil {
		log.Fatal(err)
	}
	http.Handle("/", pageCache.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := store.Get(r, "app"); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		lease, err := mu.TryLock(r.Context())
		if err == nil {
			defer lease.Unlock(context.WithoutCancel(r.Context()))
		}
		w.Write([]byte("hello"))
	})))
	log.Fatal(http.ListenAndServe("127.0.0.1:8080", nil))
}
`

// consumerTest is the consumer's test, against a throwaway server from
// keyvaluetest (skipped where no server binary is installed).
const consumerTest = `package main

import (
	"context"
	"testing"

	"github.com/keyvalue-go/keyvalue/cache"
	"github.com/keyvalue-go/keyvalue/keyvaluetest"
)

func TestPages(t *testing.T) {
	client := keyvaluetest.Start(t).Client(t)
	pages, err := cache.New(client, "pages", cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := pages.SetMany(ctx, []cache.Entry{{ID: "home", Data: []byte("<h1>hi</h1>"), Tags: []string{"site"}}}); err != nil {
		t.Fatal(err)
	}
	got, err := pages.GetMany(ctx, []string{"home", "missing"})
	if err != nil || string(got["home"]) != "<h1>hi</h1>" || len(got) != 1 {
		t.Fatalf("GetMany = %q, %v", got, err)
	}
}
`

// buildConsumer creates a throwaway module that gets the library and the
// gorilla adapter at version, builds and vets a program using them, and
// runs its test (keyvaluetest).
func buildConsumer(tmp string, env []string, version string) error {
	dir := filepath.Join(tmp, "consumer")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(consumer), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "main_test.go"), []byte(consumerTest), 0o644); err != nil {
		return err
	}
	for _, args := range [][]string{
		{"mod", "init", "example.com/consumer"},
		{"get", prefix + "@" + version, prefix + "/session/gorillastore@" + version},
		{"mod", "tidy"},
		{"build", "./..."},
		{"vet", "./..."},
		{"test", "-count=1", "-v", "./..."},
	} {
		if err := goCmd(dir, env, args...); err != nil {
			return err
		}
	}
	gomod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return err
	}
	mf, err := modfile.Parse("go.mod", gomod, nil)
	if err != nil {
		return err
	}
	for _, r := range mf.Require {
		if strings.HasPrefix(r.Mod.Path, prefix) && r.Mod.Version != version {
			return fmt.Errorf("the consumer resolved %s %s, not %s", r.Mod.Path, r.Mod.Version, version)
		}
	}
	fmt.Printf("release-check: a consumer module built, vetted and tested with keyvalue %s and gorillastore %s\n", version, version)
	return nil
}

// goCmd runs the go command in dir with env, echoing it.
func goCmd(dir string, env []string, args ...string) error {
	fmt.Printf("release-check: (%s) go %s\n", filepath.Base(dir), strings.Join(args, " "))
	cmd := exec.Command("go", args...)
	cmd.Dir, cmd.Env = dir, env
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

// removeAll removes the temporary directory, whose module cache is
// read-only unless -modcacherw was in effect.
func removeAll(dir string) {
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o755)
		}
		return nil
	})
	_ = os.RemoveAll(dir)
}
