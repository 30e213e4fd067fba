package cli

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/kvtest"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/servertest"
	"github.com/keyvalue-go/keyvalue/session"
)

func TestSessionCommands(t *testing.T) {
	t.Parallel()
	s := servertest.Standalone(t)
	c := kvtest.Open(t, keyvalue.Config{Addrs: []string{s.Addr()}})
	secret := "0123456789abcdef0123456789abcdef"
	st, _ := session.New(c, session.Options{Prefix: "be", Key: []byte(secret), Logger: slog.New(slog.DiscardHandler)})
	ctx := context.Background()
	var one, dan string
	var danRef string
	for i, u := range []string{"alice", "alice", "bob", "dan"} {
		r, err := st.Create(ctx, session.Record{UserID: u})
		if err != nil {
			t.Fatal(err)
		}
		switch i {
		case 2:
			one = r.ID
		case 3:
			dan, danRef = r.ID, r.Ref
		}
	}
	flags := []string{"--url=redis://" + s.Addr(), "--prefix=be", "--key-file=" + writeFile(t, secret+"\n")}

	out, err := run(t, append([]string{"session", "list"}, flags...)...)
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, out, "REF ", "alice", "bob", "4 sessions")
	if strings.Contains(out, one) || strings.Contains(out, dan) {
		t.Error("list prints session ids")
	}
	// A session is revoked by the REF the listing prints, which is not
	// its id.
	var listed string
	for line := range strings.Lines(out) {
		if f := strings.Fields(line); len(f) > 1 && f[1] == "dan" {
			listed = f[0]
		}
	}
	if listed != danRef {
		t.Fatalf("list names dan's session %q, want its Record.Ref %q", listed, danRef)
	}
	out, err = run(t, append([]string{"session", "revoke", "--ref", listed}, flags...)...)
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, out, "revoked session "+danRef)
	if _, err := st.Get(ctx, dan); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("after revoke --ref, Get of the session = %v, want ErrNotFound", err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--ref", listed}, "no session with ref " + danRef + " in store be (already revoked or expired?)"},
		{[]string{"--ref", "dan"}, `session: invalid session reference "dan": use a Record.Ref (64 lower-case hex digits) from a listing`},
		{[]string{"--ref", listed, "--user", "dan"}, "give one of: --ref REF (from 'session list'), --user U, or a session ID"},
		{nil, "give one of: --ref REF (from 'session list'), --user U, or a session ID"},
	} {
		_, err := run(t, append(append([]string{"session", "revoke"}, flags...), tc.args...)...)
		if err == nil || err.Error() != tc.want {
			t.Errorf("revoke %q: %v, want the error %q", tc.args, err, tc.want)
		}
	}
	// With another key the records still list, but their ids cannot be
	// read: a warning says so. A user id with a newline stays on one line.
	if _, err := st.Create(ctx, session.Record{UserID: "eve\nmallory"}); err != nil {
		t.Fatal(err)
	}
	wrong := []string{"--url=redis://" + s.Addr(), "--prefix=be", "--key-file=" + writeFile(t, "fedcba9876543210fedcba9876543210")}
	out, err = run(t, append([]string{"session", "list"}, wrong...)...)
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, out, "(id unreadable with this key)", `"eve\nmallory"`, "warning: the ids of 4 of 4 sessions cannot be read with this key")
	out, err = run(t, append([]string{"session", "list", "--user", "alice"}, flags...)...)
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, out, "2 sessions")
	out, err = run(t, append([]string{"session", "revoke", "--user", "alice"}, flags...)...)
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, out, "revoked 2 sessions of user alice")
	// Ids may start with '-' (base64url): "--" ends the flags.
	out, err = run(t, append(append([]string{"session", "revoke"}, flags...), "--", one)...)
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, out, "revoked session "+one[:8])
	out, err = run(t, append([]string{"session", "gc"}, flags...)...)
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, out, "dropped 0 expired index entries")
	if _, err := run(t, "session", "list", "--url=redis://"+s.Addr()); err == nil || !strings.Contains(err.Error(), "--prefix and --key-file are required") {
		t.Errorf("missing flags: %v", err)
	}
}

// TestSessionRekeyAndDevices: sessions created under an old key are moved
// by `session rekey` and then found with the new key alone; `session
// devices` lists a user's sessions with their devices.
func TestSessionRekeyAndDevices(t *testing.T) {
	t.Parallel()
	s := servertest.Standalone(t)
	c := kvtest.Open(t, keyvalue.Config{Addrs: []string{s.Addr()}})
	oldKey, newKey := "0ld456789abcdef0123456789abcdef0", "n3w456789abcdef0123456789abcdef0"
	old, _ := session.New(c, session.Options{Prefix: "fe", Key: []byte(oldKey), Logger: slog.New(slog.DiscardHandler)})
	ctx := context.Background()
	var ids []string
	for _, dev := range []string{"Firefox on Linux", "Safari on iPhone"} {
		r, err := old.Create(ctx, session.Record{UserID: "carol", Device: dev})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	flags := []string{"--url=redis://" + s.Addr(), "--prefix=fe", "--key-file=" + writeFile(t, newKey)}
	if _, err := run(t, append([]string{"session", "rekey"}, flags...)...); err == nil || !strings.Contains(err.Error(), "rekey needs the old key: give it with --previous-key-file") {
		t.Errorf("rekey without the old key: %v", err)
	}
	out, err := run(t, append([]string{"session", "rekey", "--previous-key-file=" + writeFile(t, oldKey+"\n")}, flags...)...)
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, out, "moved 2 sessions to the current key")
	current, _ := session.New(c, session.Options{Prefix: "fe", Key: []byte(newKey), Logger: slog.New(slog.DiscardHandler)})
	for _, id := range ids {
		if _, err := current.Get(ctx, id); err != nil {
			t.Errorf("after rekey, the new key alone finds %s: %v", id[:8], err)
		}
	}
	out, err = run(t, append([]string{"session", "devices", "--user", "carol"}, flags...)...)
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, out, "REF ", "Firefox on Linux", "Safari on iPhone", "2 sessions of user carol")
	for _, id := range ids {
		if strings.Contains(out, id) {
			t.Errorf("devices prints the session id %s…", id[:8])
		}
	}
}
