package keyvalue

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/valkey-io/valkey-go"
)

// ErrNoPermission matches a command the server refused because the
// connection's ACL user may not run it, or may not touch one of its keys
// (NOPERM; for a script, the refusal of a command it called). It is never
// retried: fix the user's rules (keyvalue acl prints them).
var ErrNoPermission = fmt.Errorf("no permission")

// PermissionError is a command the server refused with NOPERM. It matches
// ErrNoPermission and unwraps to the server's reply.
type PermissionError struct {
	// User is the ACL user the connection authenticated as ("default"
	// when none was configured).
	User string
	// Sent is the command as sent (EVALSHA for a script), Command the one
	// the server refused (a script's own command), when the reply says.
	Sent, Command string
	// Key is the key the command named (a script's first key), or "".
	Key string
	// Rule is what the user lacks, as an ACL rule ("+zadd", or the key
	// pattern "~kv:{c:pages}:*"), when it can be told from the reply.
	Rule string
	// Fix says how to grant the component's rules.
	Fix string
	// Err is the server's reply.
	Err error
}

// Error names the command, the key, what the user lacks and the fix.
func (e *PermissionError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "keyvalue: %v: the server refused %s", ErrNoPermission, e.Sent)
	switch {
	case e.Command != "" && !strings.EqualFold(e.Command, e.Sent):
		fmt.Fprintf(&b, " (its %s)", strings.ToUpper(e.Command))
	case e.Command == "" && e.Rule == "" && strings.HasPrefix(e.Sent, "EVAL"):
		b.WriteString(" (a command of the script; the server does not say which)")
	}
	if e.Key != "" {
		fmt.Fprintf(&b, " on %s", e.Key)
	}
	fmt.Fprintf(&b, " to ACL user %q", e.User)
	if e.Rule != "" {
		fmt.Fprintf(&b, ", which lacks %s", e.Rule)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	if e.Fix != "" {
		b.WriteString("; " + e.Fix)
	}
	return b.String()
}

// Unwrap returns ErrNoPermission and the server's reply.
func (e *PermissionError) Unwrap() []error { return []error{ErrNoPermission, e.Err} }

var (
	// A command refused: "NOPERM this user has no permissions to run the
	// 'zadd' command" (Redis 7.0), "User app has no permissions to run
	// the 'zadd' command" (Valkey 8, a script's too).
	deniedCommand = regexp.MustCompile(`permissions to run the '([^']+)' command`)
	// A key refused: "No permissions to access a key" (Valkey 8),
	// "permissions to access one of the keys used as arguments", "can't
	// access at least one of the keys" (Redis 7.0, a script's), "access
	// the 'k' key".
	deniedKey = regexp.MustCompile(`(?:permissions to|can't) access (?:a key|one of the keys|at least one of the keys|the '([^']*)' key)`)
)

// isPermissionReply reports whether a server's error reply is an ACL
// refusal: NOPERM for a command sent, or for a command a script called
// ("ACL failure in script" on Valkey 8, "The user executing the script
// can't ..." on Redis 7.0, both with the ERR prefix).
func isPermissionReply(msg string) bool {
	return strings.HasPrefix(msg, "NOPERM") || strings.Contains(msg, "ACL failure in script") ||
		strings.Contains(msg, "user executing the script can't")
}

// sent is what an error report needs of a command as sent: valkey-go
// recycles a command's words once it has a reply, so its first words are
// taken before it is sent (string headers only: no copy of the strings,
// no allocation), and read only if the reply is an error.
type sent [4]string

// sentOf takes a command's first words.
func sentOf(words []string) (s sent) {
	copy(s[:], words)
	return s
}

// words are the words taken, without the empty tail.
func (s sent) words() []string {
	n := len(s)
	for n > 0 && s[n-1] == "" {
		n--
	}
	return s[:n]
}

// permissionError returns a *PermissionError for a NOPERM reply to cmd,
// or nil for any other error.
func (s *lazy) permissionError(cmd sent, err error) error {
	ve, ok := valkey.IsValkeyErr(err)
	if !ok || !isPermissionReply(ve.Error()) {
		return nil
	}
	user := s.cfg.Username
	if user == "" {
		user = "default"
	}
	words := cmd.words()
	if len(words) == 0 {
		return nil
	}
	pe := &PermissionError{User: user, Sent: strings.ToUpper(words[0]), Key: firstKey(words), Err: err}
	msg := ve.Error()
	if m := deniedCommand.FindStringSubmatch(msg); m != nil {
		pe.Command = m[1]
		pe.Rule = "+" + strings.ToLower(m[1])
	}
	if m := deniedKey.FindStringSubmatch(msg); m != nil {
		key := m[1]
		if key == "" {
			key = pe.Key
		}
		if p := keyPattern(key); p != "" {
			pe.Rule = "~" + p
		} else if key != "" {
			pe.Rule = "access to " + key
		}
	}
	pe.Fix = aclFix(pe.Key)
	return pe
}

// firstKey returns the key a command names: the first key of a script
// (EVALSHA sha numkeys key...), else the first of its first three
// arguments that looks like one of keyvalue's keys.
func firstKey(cmd []string) string {
	switch strings.ToUpper(cmd[0]) {
	case "EVALSHA", "EVAL", "EVALSHA_RO", "EVAL_RO", "FCALL", "FCALL_RO":
		if len(cmd) > 3 && cmd[2] != "0" {
			return cmd[3]
		}
		return ""
	}
	for _, a := range cmd[1:min(len(cmd), 4)] {
		if strings.HasPrefix(a, "kv:") {
			return a
		}
	}
	return ""
}

// keyPattern returns the ACL key pattern of the component that owns key
// (the layouts of the cache, session and lock packages), or "".
func keyPattern(key string) string {
	for _, prefix := range []string{"kv:{c:", "kv:{s:", "kv:{l:"} {
		if rest, ok := strings.CutPrefix(key, prefix); ok {
			if name, _, ok := strings.Cut(rest, "}"); ok {
				if prefix == "kv:{l:" {
					return "kv:{l:" + name + "}*"
				}
				return prefix + name + "}:*"
			}
		}
	}
	if rest, ok := strings.CutPrefix(key, "kv:c:"); ok { // a sharded cache
		if name, _, ok := strings.Cut(rest, ":"); ok {
			return "kv:c:" + name + ":*"
		}
	}
	return ""
}

// aclFix says which keyvalue acl flags print the rules the component that
// owns key needs (all of them when the key does not tell).
func aclFix(key string) string {
	flag := ""
	switch p := keyPattern(key); {
	case strings.HasPrefix(p, "kv:{c:"):
		flag = " --cache " + strings.TrimSuffix(strings.TrimPrefix(p, "kv:{c:"), "}:*")
	case strings.HasPrefix(p, "kv:c:"):
		flag = " --cache " + strings.TrimSuffix(strings.TrimPrefix(p, "kv:c:"), ":*") + " --sharded"
	case strings.HasPrefix(p, "kv:{s:"):
		flag = " --sessions " + strings.TrimSuffix(strings.TrimPrefix(p, "kv:{s:"), "}:*")
	case strings.HasPrefix(p, "kv:{l:"):
		flag = " --locks"
	}
	return "grant the rules keyvalue acl" + flag + " prints (with the flags of every component the application uses), or see \"Least privilege\" in the README"
}
