package keyvaluetest_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/keyvaluetest"
)

func TestStart(t *testing.T) {
	srv := keyvaluetest.Start(t)
	client := srv.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := client.Do(ctx, client.B().Set().Key("k").Value("v").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	byURL, err := keyvalue.OpenURL(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer byURL.Close()
	if v, err := byURL.Do(ctx, byURL.B().Get().Key("k").Build()).ToString(); err != nil || v != "v" {
		t.Errorf("GET through the URL %s = %q, %v", srv.URL(), v, err)
	}
	srv.Stop()
	if err := client.Do(ctx, client.B().Ping().Build()).Error(); err == nil {
		t.Error("PING after Stop succeeded")
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for client.Do(ctx, client.B().Ping().Build()).Error() != nil {
		if time.Now().After(deadline) {
			t.Fatal("no PONG 10 s after Restart")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fakeTB records what Start does when there is no server binary.
type fakeTB struct {
	testing.TB
	skipped, fatal string
}

type stopped struct{}

func (f *fakeTB) Skipf(format string, args ...any) {
	f.skipped = sprintf(format, args...)
	panic(stopped{})
}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.fatal = sprintf(format, args...)
	panic(stopped{})
}

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

func startWithout(t *testing.T) *fakeTB {
	f := &fakeTB{TB: t}
	func() {
		defer func() {
			if r := recover(); r != nil {
				if _, ok := r.(stopped); !ok {
					panic(r)
				}
			}
		}()
		keyvaluetest.Start(f)
	}()
	return f
}

// TestMissingBinary: without a server binary the test is skipped with one
// line that says what to install; KEYVALUETEST_REQUIRE_SERVER=1 fails it.
func TestMissingBinary(t *testing.T) {
	t.Setenv(keyvaluetest.RequireEnv, "")
	t.Setenv("KV_SERVER_BIN", t.TempDir()+"/no-such-server")
	f := startWithout(t)
	t.Logf("skip line: %s", f.skipped)
	if !strings.HasPrefix(f.skipped, "keyvaluetest: skipped: KV_SERVER_BIN=") || !strings.HasSuffix(f.skipped, "no-such-server does not exist") || strings.Contains(f.skipped, "\n") {
		t.Errorf("skip line = %q", f.skipped)
	}
	t.Setenv("KV_SERVER_BIN", "")
	t.Setenv("PATH", t.TempDir())
	f = startWithout(t)
	t.Logf("skip line without a binary on PATH: %s", f.skipped)
	if f.skipped != "keyvaluetest: skipped: no valkey-server or redis-server on PATH (Debian: apt-get install redis-server)" {
		t.Errorf("skip line = %q", f.skipped)
	}
	t.Setenv(keyvaluetest.RequireEnv, "1")
	f = startWithout(t)
	t.Logf("failure with %s=1: %s", keyvaluetest.RequireEnv, f.fatal)
	if f.skipped != "" || !strings.HasSuffix(f.fatal, keyvaluetest.RequireEnv+"=1 requires a server") {
		t.Errorf("with %s=1: skipped %q, failed %q", keyvaluetest.RequireEnv, f.skipped, f.fatal)
	}
}

// TestVariablesDoNotCollide: the variables keyvaluetest reads are not
// KEYVALUE_* variables, which keyvalue.LoadEnv refuses when it does not
// know them: an application's own LoadEnv keeps working in a test run
// that sets them.
func TestVariablesDoNotCollide(t *testing.T) {
	t.Setenv(keyvaluetest.RequireEnv, "1")
	t.Setenv("KV_SERVER_BIN", "/usr/bin/redis-server")
	t.Setenv("KEYVALUE_URL", "redis://127.0.0.1:6379")
	var cfg keyvalue.Config
	if _, err := keyvalue.LoadEnv(os.Environ(), &cfg); err != nil {
		t.Errorf("LoadEnv with keyvaluetest's variables set: %v", err)
	}
}
