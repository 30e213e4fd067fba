package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/cache"
	"github.com/keyvalue-go/keyvalue/internal/localserver"
	"github.com/spf13/cobra"
)

// endpointFlags are the persistent flags that choose the server.
type endpointFlags struct {
	url, config string
	verbose     bool
	timeout     time.Duration
	// localTLS starts the throwaway server with TLS and client
	// certificates generated on the fly (keyvalue bench --tls).
	localTLS bool
}

func (f *endpointFlags) register(cmd *cobra.Command) {
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.url, "url", "", "connection URL: redis://, rediss://, redis+sentinel://host/MASTER, redis+cluster://... (default $KEYVALUE_URL)")
	pf.StringVar(&f.config, "config", "", "YAML or JSON configuration file (default $KEYVALUE_CONFIG)")
	pf.BoolVarP(&f.verbose, "verbose", "v", false, "log connection events (retries, fallbacks) to stderr")
	pf.DurationVar(&f.timeout, "timeout", 2*time.Minute, "give up after this long (cache, lock and session commands)")
}

// endpoint is a resolved configuration, possibly backed by a throwaway
// local server that close stops.
type endpoint struct {
	cfg    cache.Config // the connection and any named caches declared with it
	source string       // where the configuration came from
	local  *localserver.Server
	dir    string
}

func (e *endpoint) close() {
	if e.local != nil {
		e.local.Stop()
	}
	if e.dir != "" {
		os.RemoveAll(e.dir)
	}
}

// resolve picks the configuration: --url, --config, KEYVALUE_* variables,
// or else a throwaway local server.
func (f *endpointFlags) resolve(stderr io.Writer) (*endpoint, error) {
	var (
		ep  = &endpoint{}
		err error
	)
	switch {
	case f.url != "" && f.config != "":
		return nil, errors.New("--url and --config both given: use one")
	case f.localTLS && (f.url != "" || f.config != ""):
		return nil, errors.New("--tls starts a throwaway local server with TLS; for your own server put TLS in --url (rediss://...) or --config instead")
	case f.url != "":
		err = keyvalue.LoadURL(f.url, &ep.cfg)
		ep.source = "--url"
	case f.config != "":
		err = keyvalue.LoadFile(f.config, &ep.cfg)
		ep.source = "--config " + f.config
	default:
		var found bool
		found, err = keyvalue.LoadEnv(os.Environ(), &ep.cfg)
		ep.source = "environment (KEYVALUE_*)"
		if err == nil && found && f.localTLS {
			return nil, errors.New("--tls starts a throwaway local server with TLS, but KEYVALUE_* variables name a server: unset them, or put TLS in them")
		}
		if err == nil && !found {
			if err := ep.startLocal(f.localTLS); err != nil {
				return nil, err
			}
		}
	}
	if err != nil {
		return nil, err
	}
	level := slog.LevelError
	if f.verbose {
		level = slog.LevelDebug
	}
	ep.cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	return ep, nil
}

// configOnly reads the configuration from --url, --config or the
// KEYVALUE_* variables without contacting anything (the zero
// configuration when none is given).
func (f *endpointFlags) configOnly() (cache.Config, error) {
	var cfg cache.Config
	var err error
	switch {
	case f.url != "" && f.config != "":
		return cfg, errors.New("--url and --config both given: use one")
	case f.url != "":
		err = keyvalue.LoadURL(f.url, &cfg)
	case f.config != "":
		err = keyvalue.LoadFile(f.config, &cfg)
	default:
		_, err = keyvalue.LoadEnv(os.Environ(), &cfg)
	}
	return cfg, err
}

// resolveRequired is resolve for commands that act on a real deployment:
// it refuses to fall back to a throwaway server.
func (f *endpointFlags) resolveRequired(stderr io.Writer) (*endpoint, error) {
	if f.url == "" && f.config == "" {
		var probe cache.Config
		if found, err := keyvalue.LoadEnv(os.Environ(), &probe); err != nil {
			return nil, err
		} else if !found {
			return nil, errors.New("no server given: use --url, --config or KEYVALUE_URL")
		}
	}
	return f.resolve(stderr)
}

// startLocal starts a throwaway server on a free loopback port; with
// mutualTLS it accepts TLS only, from clients presenting a certificate of
// a CA generated for it.
func (e *endpoint) startLocal(mutualTLS bool) error {
	dir, err := os.MkdirTemp("", "keyvalue-local-")
	if err != nil {
		return err
	}
	opts := localserver.Options{Dir: dir, Name: "throwaway"}
	var tlsConf keyvalue.TLSConfig
	if mutualTLS {
		certs, err := localserver.GenerateCerts(dir)
		if err == nil {
			opts.PingTLS, err = certs.ClientTLS()
		}
		if err != nil {
			os.RemoveAll(dir)
			return err
		}
		opts.TLS = certs.ServerFiles(true)
		tlsConf = keyvalue.TLSConfig{Enabled: true, CAFile: certs.CAFile, CertFile: certs.ClientCertFile, KeyFile: certs.ClientKeyFile}
	}
	s, err := localserver.Start(opts)
	if err != nil {
		os.RemoveAll(dir)
		if errors.Is(err, localserver.ErrMissingBinary) {
			return fmt.Errorf("no --url, --config or KEYVALUE_URL given, and no local server to start: %w", err)
		}
		return fmt.Errorf("start a throwaway local server: %w", err)
	}
	e.local, e.dir = s, dir
	e.cfg = cache.Config{Config: keyvalue.Config{Addrs: []string{s.Addr()}, TLS: tlsConf}}
	e.source = "throwaway local server (no --url, --config or KEYVALUE_URL given)"
	return nil
}

// withClient resolves a real endpoint (no throwaway server), opens a client
// on it, runs fn and cleans up.
func withClient(cmd *cobra.Command, ep *endpointFlags, fn func(context.Context, *keyvalue.Client, keyvalue.Config) error) error {
	e, err := ep.resolveRequired(cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	defer e.close()
	cfg := e.cfg
	client, err := keyvalue.Open(cfg.Config)
	if err != nil {
		return err
	}
	defer client.Close()
	ctx, cancel := ep.context(cmd)
	defer cancel()
	return fn(ctx, client, cfg.Config)
}

// context is the command's context, bounded by --timeout.
func (f *endpointFlags) context(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	if f.timeout > 0 {
		return context.WithTimeout(cmd.Context(), f.timeout)
	}
	return context.WithCancel(cmd.Context())
}
