package cli

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/cmd/keyvalue/internal/benchrun"
	"github.com/keyvalue-go/keyvalue/internal/scripts"
	"github.com/keyvalue-go/keyvalue/internal/serverstatus"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"github.com/valkey-io/valkey-go"
	"golang.org/x/term"
)

func newBenchCmd(ep *endpointFlags, peers []benchrun.Peer) *cobra.Command {
	var (
		quick, iKnow, list bool
		repeats            int
		jsonFile, htmlFile string
		svgFile            string
		only               []string
		rtts               []time.Duration
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Side-by-side benchmark: keyvalue vs a naive baseline, peer libraries and the limit",
		Long: `bench runs every scenario against one server for the naive baseline (the way the usual
integrations do it), keyvalue, and the peer libraries compiled into this binary, and prints
a table with the ratio baseline/keyvalue and, where defined, the limit: the cheapest raw
commands doing the same server work.

The peer libraries (go-redis/cache, scs's redisstore, redislock, redsync, valkeylock) are
linked only with the build tag peers:

  go install -tags peers github.com/keyvalue-go/keyvalue/cmd/keyvalue@latest

(make build and make demo set it in a checkout). Without it, bench compares keyvalue with
the baseline and the limit. After one untimed warm-up run each (not for the scenarios that
fill a large cache to measure a stall, memory or an index's size), the implementations run
interleaved in rounds (--repeat), so that noise hits them alike; the median is reported, and
a ratio whose runs' spreads cross 1.0 is shown as within noise. An index's size and the memory
per entry, counts the server reports that the same writes give in every run, are measured
once per implementation. Throughput scenarios run
each implementation for the same time (0.3 s with --quick, 2 s otherwise). A run that takes
longer than 90 s (10 s with --quick) is reported as an error and that implementation is
left out of the scenario. --json and --html write the full report.

--rtt measures at round trips other than loopback's: every implementation (baseline,
keyvalue, peers and the limit alike) then reaches the server through a latency-adding
TCP proxy (Toxiproxy, in this process; half the round trip each way), as an
application reaches a server one hop away (≈250µs in one zone, ≈1ms across zones). The
report shows each round trip, and what a PING costs through the proxy and directly.

Without --url/--config/KEYVALUE_* it starts a throwaway local server and removes it
afterwards. Against a real deployment it works in its own namespace (keys containing
kvbench-XXXXXXXX), deletes them at the end, and refuses a non-empty database unless
--i-know is given. After every run of every implementation (untimed) it removes the keys of
the namespace that run left, so that each run starts from the same database whatever ran
before it (-v lists them).`,
		Example: `  keyvalue bench --quick
  keyvalue bench --json report.json --html report.html
  keyvalue bench --tls --quick                     # the same over mutual TLS
  keyvalue bench --quick --rtt 0,250us             # loopback, then a 250µs round trip
  keyvalue bench --url rediss://bench:pw@cache:6380?tls_ca_file=ca.crt --i-know --scenario cache/flush-stall-100k`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			scenarios, err := benchrun.Select(benchrun.Scenarios(), only)
			if err != nil {
				return err
			}
			if quick && len(only) == 0 {
				scenarios = slices.DeleteFunc(scenarios, func(s benchrun.Scenario) bool { return s.Large })
			}
			if list {
				for _, s := range scenarios {
					fmt.Fprintf(cmd.OutOrStdout(), "%-28s %-6s %s\n", s.Name, s.Unit, s.What)
				}
				return nil
			}
			if repeats <= 0 {
				repeats = 5
				if quick {
					repeats = 3
				}
			}
			e, err := ep.resolve(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer e.close()
			for _, d := range rtts {
				if d < 0 || d > 100*time.Millisecond {
					return fmt.Errorf("--rtt %s: use round trips from 0 (loopback) to 100ms", d)
				}
			}
			if len(rtts) == 0 {
				rtts = []time.Duration{0}
			}
			return runBench(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), e, scenarios, peers, benchOpts{quick, iKnow, repeats, jsonFile, htmlFile, svgFile, rtts})
		},
	}
	f := cmd.Flags()
	f.BoolVar(&ep.localTLS, "tls", false, "start the throwaway local server with TLS and client certificates generated on the fly (mutual TLS); every implementation connects with them")
	f.BoolVar(&quick, "quick", false, "small sizes and three rounds per scenario")
	f.IntVar(&repeats, "repeat", 0, "rounds per scenario (each implementation once per round, after a warm-up); the median is reported (default 5, 3 with --quick)")
	f.StringVar(&jsonFile, "json", "", "write the report as JSON to this file")
	f.StringVar(&htmlFile, "html", "", "write a self-contained HTML report with a bar chart per scenario (default: a file in the temp directory)")
	f.StringVar(&svgFile, "svg", "", "write an SVG chart of the ratios (for Markdown)")
	f.StringSliceVar(&only, "scenario", nil, "run only these scenarios (repeatable; see --list)")
	f.DurationSliceVar(&rtts, "rtt", nil, "round trips to measure at, e.g. 0,250us,1ms (0: loopback, directly; others through a latency-adding proxy); default 0")
	f.BoolVar(&iKnow, "i-know", false, "run against a database that already holds keys")
	f.BoolVar(&list, "list", false, "list the scenarios and exit")
	return cmd
}

type benchOpts struct {
	quick, iKnow       bool
	repeats            int
	jsonFile, htmlFile string
	svgFile            string
	rtts               []time.Duration
}

func runBench(ctx context.Context, out, errOut io.Writer, e *endpoint, scenarios []benchrun.Scenario, peers []benchrun.Peer, o benchOpts) error {
	cfg, err := e.cfg.Config.Normalize()
	if err != nil {
		return err
	}
	client, err := keyvalue.Open(cfg)
	if err != nil {
		return err
	}
	defer client.Close()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := client.Connect(cctx); err != nil {
		return err
	}
	info, err := client.Do(cctx, client.B().Info().Section("server").Build()).ToString()
	if err != nil {
		return fmt.Errorf("INFO server: %w", err)
	}
	f := serverstatus.InfoFields(info)
	server := benchrun.ServerInfo{Product: "redis", Version: f["redis_version"], Mode: string(cfg.Mode), TLS: cfg.TLS.Enabled, Local: e.local != nil}
	if v, ok := f["valkey_version"]; ok {
		server.Product, server.Version = "valkey", v
	}
	if e.local == nil && !o.iKnow {
		n, err := client.Do(cctx, client.B().Dbsize().Build()).AsInt64()
		if err != nil {
			return fmt.Errorf("DBSIZE: %w", err)
		}
		if n > 0 {
			return fmt.Errorf("%s holds %d keys: bench writes and deletes keys in its own namespace (kvbench-…) but will not run next to data unless you pass --i-know", cfg, n)
		}
	}
	if err := scripts.Preload(cctx, client); err != nil {
		return err
	}
	tlsConf, err := cfg.TLS.ClientConfig()
	if err != nil {
		return err
	}
	// The plain clients (baselines, peers) take a fixed password: the one
	// the password file or the provider gives now.
	creds, err := cfg.ResolveCredentials(cctx)
	if err != nil {
		return err
	}
	plainCfg := cfg
	plainCfg.Username, plainCfg.Password, plainCfg.PasswordFile = creds.Username, creds.Password, ""
	env := &benchrun.Env{Cfg: plainCfg, NS: benchrun.NewNamespace(), Quick: o.quick, TLS: tlsConf,
		Plain: cfg.Mode == keyvalue.ModeStandalone && cfg.DB == 0}
	log := cmp.Or(e.cfg.Logger, slog.New(slog.DiscardHandler)) // -v shows what each run left behind
	env.Sweep = func(ctx context.Context, scenario, impl string) {
		n, err := benchrun.Cleanup(ctx, client, env.NS)
		switch {
		case err != nil:
			log.Warn("bench: could not remove the keys a run left", "scenario", scenario, "impl", impl, "removed", n, "error", err)
		case n > 0:
			log.Debug("bench: a run left keys behind; removed before the next run", "scenario", scenario, "impl", impl, "keys", n)
		}
	}
	fmt.Fprintf(out, "keyvalue bench: %s %s (%s), %d scenarios × median of %d, namespace %s\n", server.Product, server.Version, cfg, len(scenarios), o.repeats, env.NS)
	steps := len(scenarios) * len(o.rtts) // an upper bound: some run at the first round trip only
	var bar *progressbar.ProgressBar
	if isTerminal(errOut) {
		bar = progressbar.NewOptions(steps, progressbar.OptionSetWriter(errOut), progressbar.OptionShowCount(),
			progressbar.OptionSetWidth(30), progressbar.OptionClearOnFinish(), progressbar.OptionThrottle(50*time.Millisecond))
	}
	start := time.Now()
	var results []benchrun.Result
	var rttInfos []benchrun.RTTInfo
	var runErr error
	for k, rtt := range o.rtts {
		label := benchrun.RTTInfo{RTTMicros: rtt.Microseconds()}.Label()
		scenarios := scenarios
		if k > 0 {
			// Figures that do not depend on the round trip are measured once.
			scenarios = slices.DeleteFunc(slices.Clone(scenarios), func(s benchrun.Scenario) bool {
				return s.LoopbackOnly || s.QuickLoopbackOnly && o.quick
			})
		}
		done := len(results)
		progress := func(i int, name string) {
			fmt.Fprintf(errOut, "[%d/%d] %s (%s)\n", done+i+1, steps, name, label)
		}
		if bar != nil {
			progress = func(i int, name string) {
				bar.Describe(fmt.Sprintf("%-28s %-9s", name, label))
				_ = bar.Set(done + i)
			}
		}
		renv := *env
		info := benchrun.RTTInfo{RTTMicros: rtt.Microseconds()}
		if rtt > 0 {
			if cfg.Mode != keyvalue.ModeStandalone || isSocketPath(cfg.Addrs[0]) {
				return fmt.Errorf("--rtt %s: the round-trip proxy serves a standalone server over TCP (this one is %s)", rtt, cfg)
			}
			proxy, err := benchrun.StartRTTProxy(cfg.Addrs[0], rtt)
			if err != nil {
				return err
			}
			renv.Cfg.Addrs, renv.RTT = []string{proxy.Addr()}, rtt
			opt := valkey.ClientOption{ForceSingleClient: true, DisableCache: true, Username: creds.Username, Password: creds.Password, TLSConfig: tlsConf}
			pctx, pcancel := context.WithTimeout(ctx, 30*time.Second)
			through, direct, err := benchrun.ProxyCost(pctx, opt, cfg.Addrs[0], proxy.Addr(), 200)
			pcancel()
			if err != nil {
				proxy.Stop()
				return fmt.Errorf("measure the round-trip proxy: %w", err)
			}
			info.ProxyPingUs, info.DirectPingUs = float64(through)/1e3, float64(direct)/1e3
			var rs []benchrun.Result
			rs, runErr = benchrun.Run(ctx, &renv, scenarios, peers, o.repeats, progress)
			proxy.Stop()
			results = append(results, rs...)
		} else {
			var rs []benchrun.Result
			rs, runErr = benchrun.Run(ctx, &renv, scenarios, peers, o.repeats, progress)
			results = append(results, rs...)
		}
		rttInfos = append(rttInfos, info)
		if runErr != nil {
			break
		}
	}
	if bar != nil {
		_ = bar.Finish()
	}
	cleanCtx, cancelClean := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancelClean()
	if _, err := benchrun.Cleanup(cleanCtx, client, env.NS); err != nil {
		fmt.Fprintf(errOut, "warning: %v\n", err)
	}
	peerNames := benchrun.PeerNames(results)
	fmt.Fprintln(out)
	benchrun.WriteTable(out, results, peerNames, rttInfos)
	for _, r := range results {
		for impl, msg := range r.Errors {
			fmt.Fprintf(out, "error: %s / %s: %s\n", r.Scenario.Name, impl, msg)
		}
	}
	report := benchrun.BuildReport(results, peerNames, server, o.quick, o.repeats, rttInfos)
	if o.jsonFile != "" {
		if err := writeFileWith(o.jsonFile, func(w io.Writer) error { return benchrun.WriteJSON(w, report) }); err != nil {
			return err
		}
		fmt.Fprintf(out, "JSON report: %s\n", o.jsonFile)
	}
	if o.svgFile != "" {
		if err := writeFileWith(o.svgFile, func(w io.Writer) error { return benchrun.WriteRatioSVG(w, report) }); err != nil {
			return err
		}
		fmt.Fprintf(out, "SVG chart: %s\n", o.svgFile)
	}
	html := o.htmlFile
	if html == "" {
		html = filepath.Join(os.TempDir(), "keyvalue-bench-"+time.Now().Format("20060102-150405")+".html")
	}
	if err := writeFileWith(html, func(w io.Writer) error { return benchrun.WriteHTML(w, report) }); err != nil {
		return err
	}
	fmt.Fprintf(out, "HTML report: %s (took %s)\n", html, time.Since(start).Round(time.Second))
	if runErr != nil {
		return runErr
	}
	if len(peers) == 0 {
		fmt.Fprintln(out, "peer libraries (go-redis/cache, scs redisstore, redislock, redsync, valkeylock) are not in this binary: install it with -tags peers (see keyvalue bench --help).")
	}
	return nil
}

// isSocketPath reports whether addr names a Unix socket (a path).
func isSocketPath(addr string) bool {
	return strings.HasPrefix(addr, "/") || strings.HasPrefix(addr, "./")
}

// isTerminal reports whether w is a terminal (progress bars need one;
// logs and CI get a line per step instead).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func writeFileWith(path string, write func(io.Writer) error) error {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
