package cli

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keyvalue-go/keyvalue/internal/localserver"
)

// TestBenchThrowawayServerIsGone runs keyvalue bench without an endpoint:
// it must start its own server, report, and leave no process, temp
// directory or key behind.
func TestBenchThrowawayServerIsGone(t *testing.T) {
	for _, kv := range os.Environ() {
		if k, v, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "KEYVALUE_") && !strings.HasSuffix(k, "_BIN") {
			os.Unsetenv(k)
			t.Cleanup(func() { os.Setenv(k, v) })
		}
	}
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	out := filepath.Join(t.TempDir(), "out")
	stdout, err := run(t, "bench", "--quick", "--scenario", "cache/set-5-tags", "--scenario", "lock/handoff",
		"--json", filepath.Join(out, "r.json"), "--html", filepath.Join(out, "r.html"))
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, stdout, "cache/set-5-tags", "lock/handoff", "JSON report:", "HTML report:")
	for _, f := range []string{"r.json", "r.html"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s not written: %v", f, err)
		}
	}
	port := regexp.MustCompile(`127\.0\.0\.1:(\d+)`).FindStringSubmatch(stdout)
	if port == nil {
		t.Fatalf("no server address in the output")
	}
	if c, err := net.DialTimeout("tcp", port[0], time.Second); err == nil {
		c.Close()
		t.Errorf("the throwaway server at %s still accepts connections", port[0])
	}
	if procs, _ := filepath.Glob("/proc/[0-9]*/cmdline"); len(procs) > 0 {
		for _, p := range procs {
			b, _ := os.ReadFile(p)
			if strings.Contains(string(b), "--port\x00"+port[1]+"\x00") || strings.Contains(string(b), "port "+port[1]) {
				t.Errorf("a server process for port %s is still running: %s", port[1], p)
			}
		}
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("temp files left behind: %v", left)
	}
}

func TestBenchRefusesNonEmptyDatabase(t *testing.T) {
	t.Parallel()
	s := startWithKey(t)
	_, err := run(t, "bench", "--quick", "--scenario", "cache/set-1-tag", "--url", "redis://"+s)
	if err == nil || !strings.Contains(err.Error(), "holds 1 keys") || !strings.Contains(err.Error(), "--i-know") {
		t.Fatalf("bench on a non-empty database: %v", err)
	}
	stdout, err := run(t, "bench", "--quick", "--scenario", "cache/set-1-tag", "--url", "redis://"+s, "--i-know", "--html", filepath.Join(t.TempDir(), "r.html"))
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, stdout, "cache/set-1-tag")
	if v, err := localserver.Do(s, nil, time.Second, "GET", "someone-elses"); err != nil || v != "data" {
		t.Errorf("bench touched a key outside its namespace: %q, %v", v, err)
	}
}

// TestBenchOverMutualTLS: --tls starts the throwaway server with TLS and
// generated client certificates; keyvalue, the baseline and the peers all
// connect with them. With --url it is refused with a clear message.
func TestBenchOverMutualTLS(t *testing.T) {
	for _, kv := range os.Environ() {
		if k, v, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "KEYVALUE_") && !strings.HasSuffix(k, "_BIN") {
			os.Unsetenv(k)
			t.Cleanup(func() { os.Setenv(k, v) })
		}
	}
	t.Setenv("TMPDIR", t.TempDir())
	stdout, err := run(t, "bench", "--tls", "--quick", "--repeat", "1", "--scenario", "session/renew", "--html", filepath.Join(t.TempDir(), "r.html"))
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, stdout, "tls=on", "session/renew")
	row := regexp.MustCompile(`(?m)^session/renew .*$`).FindString(stdout)
	if strings.Count(row, "—") > 0 {
		t.Errorf("an implementation did not run over TLS: %q", row)
	}
	_, err = run(t, "bench", "--tls", "--url", "redis://127.0.0.1:1")
	if err == nil || !strings.Contains(err.Error(), "--tls starts a throwaway local server with TLS; for your own server put TLS in --url") {
		t.Errorf("--tls with --url: %v", err)
	}
}
