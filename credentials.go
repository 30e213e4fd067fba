package keyvalue

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/valkey-io/valkey-go"
)

// Credentials are what a connection authenticates with (HELLO ... AUTH).
type Credentials struct {
	// Username is the ACL user; empty means the default user.
	Username string
	Password string
	// ReauthAt, when set, is when the connection authenticates again (AUTH
	// on the open connection) with fresh credentials from the provider,
	// before short-lived ones expire: ElastiCache's and MemoryDB's IAM
	// tokens, Entra ID tokens. Zero: never.
	ReauthAt time.Time
}

// A CredentialsProvider returns the credentials for a new connection. The
// client calls it for every connection it dials (and again at the
// ReauthAt of the credentials it returned), with a context bounded by
// DialTimeout. An error fails that dial, which is retried with backoff
// like any failed dial.
type CredentialsProvider func(ctx context.Context) (Credentials, error)

// ResolveCredentials returns what a new connection to a data node
// authenticates with now: the provider's answer (Config.Credentials), the
// password read from PasswordFile this moment, or Username and Password.
func (c Config) ResolveCredentials(ctx context.Context) (Credentials, error) {
	switch {
	case c.Credentials != nil:
		return c.Credentials(ctx)
	case c.PasswordFile != "":
		pw, err := readPasswordFile(c.PasswordFile)
		if err != nil {
			return Credentials{}, cfgErr("password_file", "%v", err)
		}
		return Credentials{Username: c.Username, Password: pw}, nil
	}
	return Credentials{Username: c.Username, Password: c.Password}, nil
}

// readPasswordFile reads a password file: one trailing newline is
// ignored, an empty password is an error.
func readPasswordFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("cannot be read: %w", err)
	}
	pw := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if pw == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return pw, nil
}

// sentinelDialMark is the FallbackDelay of the dialer valkey-go uses for
// connections to the sentinels, and only for those: it tells the dial
// function (and through it the credentials function) which kind of
// connection it serves. 300ms is the standard library's default, so the
// mark changes nothing about how the dial behaves.
const sentinelDialMark = 300 * time.Millisecond

// connRoles remembers the remote addresses of the connections dialled to
// sentinels: valkey-go calls one credentials function for the data nodes
// and the sentinels alike, with the remote address only.
type connRoles struct{ sentinels sync.Map }

func (r *connRoles) markSentinel(addr net.Addr) {
	if addr != nil {
		r.sentinels.Store(addr.String(), struct{}{})
	}
}

func (r *connRoles) isSentinel(addr net.Addr) bool {
	if addr == nil {
		return false
	}
	_, ok := r.sentinels.Load(addr.String())
	return ok
}

// authFunc returns valkey-go's credentials function for n, or nil when
// every connection authenticates with fixed credentials (valkey-go then
// uses the option's Username and Password).
func authFunc(n Config, roles *connRoles) func(valkey.AuthCredentialsContext) (valkey.AuthCredentials, error) {
	sentinelDynamic := n.Mode == ModeSentinel && n.Sentinel.Credentials != nil
	if n.Credentials == nil && n.PasswordFile == "" && !sentinelDynamic {
		return nil
	}
	sentinel := func(ctx context.Context) (Credentials, error) {
		if n.Sentinel.Credentials != nil {
			return n.Sentinel.Credentials(ctx)
		}
		return Credentials{Username: n.Sentinel.Username, Password: n.Sentinel.Password}, nil
	}
	return func(ac valkey.AuthCredentialsContext) (valkey.AuthCredentials, error) {
		ctx, cancel := context.WithTimeout(context.Background(), n.DialTimeout)
		defer cancel()
		resolve, what := n.ResolveCredentials, "credentials"
		if n.Mode == ModeSentinel && roles.isSentinel(ac.Address) {
			resolve, what = sentinel, "sentinel credentials"
		}
		c, err := resolve(ctx)
		if err != nil {
			return valkey.AuthCredentials{}, fmt.Errorf("keyvalue: %s for %v: %w", what, ac.Address, err)
		}
		return valkey.AuthCredentials{Username: c.Username, Password: c.Password, RefreshAfter: c.ReauthAt}, nil
	}
}
