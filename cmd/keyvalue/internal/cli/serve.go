package cli

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/admin"
	"github.com/keyvalue-go/keyvalue/cache"
	"github.com/keyvalue-go/keyvalue/lock"
	"github.com/keyvalue-go/keyvalue/session"
	"github.com/spf13/cobra"
)

// serveFlags configure keyvalue serve.
type serveFlags struct {
	listen, tokenFile    string
	insecureLocal        bool
	readOnly             bool
	caches, sharded      []string
	sessions             []string // PREFIX=KEY_FILE
	locks                bool
	shutdownGracePeriod  time.Duration
	refresh, surveyEvery time.Duration
}

// Time limits of the page's HTTP server: a client that sends its headers
// slowly, a form, a response (an action may run five minutes), an idle
// connection.
const (
	serveReadHeaderTimeout = 10 * time.Second
	serveReadTimeout       = time.Minute
	serveWriteTimeout      = 6 * time.Minute
	serveIdleTimeout       = 2 * time.Minute
)

func newServeCmd(ep *endpointFlags) *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the operations page (server, caches, sessions, locks) over HTTP",
		Long: `serve runs the admin package's operations page on its own: the server's health,
the caches (survey, tag search, entry lookup, flush by tags, flush all, GC), the session
stores (listing, a user's devices, revocation) and the locks (holders, forced release).

Every request must carry the token in --token-file: as a bearer token
(Authorization: Bearer TOKEN) or as the password of HTTP Basic authentication (any user
name; a browser asks for it). Without --token-file serve refuses to start, unless --listen
is a loopback address and --insecure-local is given. Serve it over TLS (a reverse proxy)
beyond one machine: the token travels with every request.

Caches are the ones --config declares plus --cache/--sharded-cache; session stores need
their secret key: --sessions PREFIX=KEY_FILE. Actions are logged to standard error.`,
		Example: `  openssl rand -hex 32 > ~/.keyvalue-token
  keyvalue serve --url redis://cache.internal:6379 --token-file ~/.keyvalue-token \
      --cache pages --sessions web=/run/secrets/session-key --locks
  keyvalue serve --config keyvalue.yaml --insecure-local --read-only`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return serve(cmd, ep, f) },
	}
	fs := cmd.Flags()
	fs.StringVar(&f.listen, "listen", "127.0.0.1:8090", "address to listen on")
	fs.StringVar(&f.tokenFile, "token-file", "", "file holding the token every request must present (required unless --insecure-local)")
	fs.BoolVar(&f.insecureLocal, "insecure-local", false, "serve without a token: only with a loopback --listen address")
	fs.BoolVar(&f.readOnly, "read-only", false, "show the pages without any action")
	fs.StringArrayVar(&f.caches, "cache", nil, "a cache to show (repeatable); caches declared in --config are shown too")
	fs.StringArrayVar(&f.sharded, "sharded-cache", nil, "a cache in sharded mode to show (repeatable)")
	fs.StringArrayVar(&f.sessions, "sessions", nil, "a session store to show, as PREFIX=KEY_FILE (repeatable)")
	fs.BoolVar(&f.locks, "locks", false, "show the locks")
	fs.DurationVar(&f.refresh, "refresh", 5*time.Second, "how often the Server page reloads itself")
	fs.DurationVar(&f.surveyEvery, "survey-interval", 30*time.Second, "how old a cache's counts may get before a page view counts again")
	fs.DurationVar(&f.shutdownGracePeriod, "shutdown-grace", 10*time.Second, "on SIGINT/SIGTERM, how long requests under way may finish")
	return cmd
}

// serve runs the page until the command's context ends (SIGINT, SIGTERM).
func serve(cmd *cobra.Command, ep *endpointFlags, f serveFlags) error {
	authorize, err := f.authorization()
	if err != nil {
		return err
	}
	stores, err := f.sessionStores()
	if err != nil {
		return err
	}
	e, err := ep.resolveRequired(cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	defer e.close()
	cfg := e.cfg
	if cfg.Caches == nil {
		cfg.Caches = map[string]cache.Spec{}
	}
	for _, name := range f.caches {
		cfg.Caches[name] = cfg.Caches[name]
	}
	for _, name := range f.sharded {
		spec := cfg.Caches[name]
		spec.Sharded = true
		cfg.Caches[name] = spec
	}
	group, err := cache.Open(cfg)
	if err != nil {
		return err
	}
	defer group.Close()
	// The Server page, the session stores and the locks use the
	// configuration's database; each cache uses its own (cache.Spec.DB).
	client, err := keyvalue.Open(cfg.Config)
	if err != nil {
		return err
	}
	defer client.Close()
	o := admin.Options{
		Client: client, Authorize: authorize, Challenge: `Basic realm="keyvalue"`, ReadOnly: f.readOnly,
		Logger:  slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil)),
		Refresh: f.refresh, SurveyInterval: f.surveyEvery,
		Who: func(r *http.Request) string {
			if u, _, ok := r.BasicAuth(); ok && u != "" {
				return u + " (token)"
			}
			return "token"
		},
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.Caches)) {
		b, err := group.Backend(name)
		if err != nil {
			return err
		}
		o.Caches = append(o.Caches, b)
	}
	for _, s := range stores {
		st, err := session.New(client, session.Options{Prefix: s.prefix, KeyFile: s.keyFile, Logger: cfg.Logger})
		if err != nil {
			return fmt.Errorf("--sessions %s=%s: %w", s.prefix, s.keyFile, err)
		}
		o.Sessions = append(o.Sessions, st)
	}
	if f.locks {
		o.Locks = lock.New(client, lock.Options{Logger: cfg.Logger})
	}
	h, err := admin.New(o)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", f.listen, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: serveReadHeaderTimeout, ReadTimeout: serveReadTimeout,
		WriteTimeout: serveWriteTimeout, IdleTimeout: serveIdleTimeout,
		ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn)}
	auth := "requests must present the token in " + f.tokenFile + " (bearer token, or the password of Basic authentication)"
	if f.tokenFile == "" {
		auth = "no token: --insecure-local"
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "keyvalue serve: http://%s/ for %s (%s); %s\n", ln.Addr(), cfg.String(), e.source, auth)

	ctx := cmd.Context()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.shutdownGracePeriod)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		_ = srv.Close()
		return fmt.Errorf("shut down: requests still under way after %s: %w", f.shutdownGracePeriod, err)
	}
	fmt.Fprintln(cmd.ErrOrStderr(), "keyvalue serve: stopped")
	return nil
}

// minTokenLen is the shortest token serve accepts (16 bytes of hex).
const minTokenLen = 32

// authorization returns the decision every request gets: the token from
// --token-file, compared in constant time; or, with --insecure-local on a
// loopback address, yes.
func (f serveFlags) authorization() (func(*http.Request) bool, error) {
	if f.tokenFile == "" {
		if !f.insecureLocal {
			return nil, errors.New("no --token-file: every request must present a token; create one (openssl rand -hex 32 > FILE) and pass --token-file FILE, or serve on a loopback --listen address with --insecure-local")
		}
		if !loopback(f.listen) {
			return nil, fmt.Errorf("--insecure-local serves without a token, so only on a loopback address; --listen %s is not one: use --token-file", f.listen)
		}
		return func(*http.Request) bool { return true }, nil
	}
	if f.insecureLocal {
		return nil, errors.New("--token-file and --insecure-local both given: use one")
	}
	b, err := os.ReadFile(f.tokenFile)
	if err != nil {
		return nil, fmt.Errorf("--token-file: %w", err)
	}
	token := bytes.TrimSpace(b)
	if len(token) < minTokenLen || bytes.ContainsAny(token, " \t\r\n") {
		return nil, fmt.Errorf("--token-file %s: the token must be one line of at least %d characters without spaces (openssl rand -hex 32 makes one)", f.tokenFile, minTokenLen)
	}
	return func(r *http.Request) bool {
		got := ""
		if a, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			got = a
		} else if _, p, ok := r.BasicAuth(); ok {
			got = p
		}
		return subtle.ConstantTimeCompare([]byte(got), token) == 1
	}, nil
}

// loopback reports whether addr (host:port) listens on loopback only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// storeFlag is one --sessions PREFIX=KEY_FILE.
type storeFlag struct{ prefix, keyFile string }

func (f serveFlags) sessionStores() ([]storeFlag, error) {
	var out []storeFlag
	for _, s := range f.sessions {
		prefix, file, ok := strings.Cut(s, "=")
		if !ok || prefix == "" || file == "" {
			return nil, fmt.Errorf("--sessions %q: use PREFIX=KEY_FILE (the store's prefix and the file holding its secret key)", s)
		}
		out = append(out, storeFlag{prefix, file})
	}
	return out, nil
}
