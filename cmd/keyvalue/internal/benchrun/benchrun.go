// Package benchrun runs keyvalue's side-by-side benchmark: each scenario
// for the naive baseline, keyvalue and any peer libraries, against one
// server, repeated, reporting medians and spread. cmd keyvalue bench uses
// it with keyvalue and the baseline; bench/cmd/keyvalue adds the peers
// (whose dependencies stay in bench/'s go.mod).
package benchrun

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"time"

	"github.com/keyvalue-go/keyvalue"
)

// Run timeouts bound one run of one implementation: a run that takes longer is reported as an error, that implementation is
// dropped from the scenario, and the benchmark moves on. A --quick run's
// longest legitimate run takes about two seconds here (filling 100,000
// entries), so a hung peer costs make demo 10 s, not a minute and a half.
const (
	DefaultRunTimeout = 90 * time.Second
	QuickRunTimeout   = 10 * time.Second
)

// ErrSkip is returned by an implementation that cannot run a scenario in
// this environment (for example a peer that does not speak TLS).
var ErrSkip = errors.New("benchrun: scenario not applicable here")

// Env is what an implementation gets to run against.
type Env struct {
	// Cfg is the server's configuration (keyvalue connects with it).
	Cfg keyvalue.Config
	// Plain is set when the server is a standalone, database-0 server
	// that simple peer clients can reach at Cfg.Addrs[0] (with TLS when
	// TLS is set).
	Plain bool
	// TLS is Cfg's client TLS configuration (nil without TLS): the
	// baseline and the peers connect with the same settings as keyvalue.
	TLS *tls.Config
	// NS prefixes every key and name a run creates; it is cleaned up after.
	NS string
	// Quick selects small sizes; Tiny (tests) shrinks every size.
	Quick, Tiny bool
	// RTT is the round trip a proxy adds between every implementation
	// and the server (0: none; see rtt.go).
	RTT time.Duration
	// Sweep, if set, removes every key of NS that the run of impl in
	// scenario left behind (and may report them); Run calls it after
	// every run, untimed and bounded by a minute, so that each run starts
	// from the same database whatever ran before it (a flush or a SCAN
	// costs what the database holds).
	Sweep func(ctx context.Context, scenario, impl string)
}

// runTimeout is how long one run may take.
func (e *Env) runTimeout() time.Duration {
	if e.Quick || e.Tiny {
		return QuickRunTimeout
	}
	return DefaultRunTimeout
}

// Measure is one run's result: Value in the scenario's unit; Extra holds
// secondary figures (lock/handoff reports its p99 there).
type Measure struct {
	Value float64
	Extra map[string]float64
}

// Impl runs a scenario once.
type Impl func(ctx context.Context, env *Env) (Measure, error)

// Scenario is one line of the report.
type Scenario struct {
	Name   string // e.g. cache/set-5-tags
	Unit   string // µs, ms, ns or ops/s
	Higher bool   // higher is better (ops/s)
	What   string
	// Baseline is the naive implementation; Keyvalue is ours.
	Baseline, Keyvalue Impl
	// Large scenarios run only in full runs (not with --quick) unless
	// named with --scenario.
	Large bool
	// Limit, if set, is the cheapest raw-command equivalent of the same
	// server work (see limits.go): what the wire and the server allow.
	Limit Impl
	// NoBaseline says why a scenario has no baseline (the naive way has
	// nothing to compare), for the report.
	NoBaseline string
	// LoopbackOnly scenarios run at the first round trip of a run only:
	// their figure (a server's stall, memory, an index's size) does not
	// depend on the round trip, and filling them through a slow link costs
	// minutes. QuickLoopbackOnly ones too, with --quick.
	LoopbackOnly, QuickLoopbackOnly bool
	// NoWarmUp scenarios skip the untimed warm-up run: their figure is a
	// server's quantity (a stall, memory, an index's size) that cold
	// connections and caches do not change, and each run fills thousands
	// of entries (seconds of a make demo).
	NoWarmUp bool
	// Once scenarios run once per implementation whatever the rounds
	// asked for: their figure is a count or a size the server reports
	// (an index's members per live entry, bytes per entry), which the same
	// writes give again in every run.
	Once bool
}

// Peer contributes implementations of some scenarios, by scenario name.
type Peer struct {
	Name  string
	Impls map[string]Impl
}

// Stats summarizes the repetitions of one implementation.
type Stats struct {
	Median, Min, Max float64
	Extra            map[string]float64 // medians of Measure.Extra
	Runs             int
}

// Result is a scenario's outcome for every implementation; nil means the
// implementation does not do this scenario (shown as "—").
type Result struct {
	Scenario Scenario
	// RTT is the round trip the proxy added (0: the server directly).
	RTT      time.Duration
	Baseline *Stats
	Keyvalue *Stats
	Limit    *Stats
	Peers    map[string]*Stats
	Errors   map[string]string
}

// Ratio is how many times better keyvalue is than the baseline (>1 means
// better), or 0 when either is missing.
func (r Result) Ratio() float64 {
	if r.Baseline == nil || r.Keyvalue == nil || r.Baseline.Median == 0 || r.Keyvalue.Median == 0 {
		return 0
	}
	if r.Scenario.Higher {
		return r.Keyvalue.Median / r.Baseline.Median
	}
	return r.Baseline.Median / r.Keyvalue.Median
}

// LimitRatio is how many times keyvalue's cost is the limit's (1 means
// keyvalue is at the limit; 2 means it takes twice what the server and the
// wire need), or 0 when either is missing.
func (r Result) LimitRatio() float64 {
	if r.Limit == nil || r.Keyvalue == nil || r.Limit.Median == 0 || r.Keyvalue.Median == 0 {
		return 0
	}
	if r.Scenario.Higher {
		return r.Limit.Median / r.Keyvalue.Median
	}
	return r.Keyvalue.Median / r.Limit.Median
}

// Run executes scenarios, each repeats times per implementation;
// progress is called before each scenario with its index.
//
// Noise must hit every implementation alike, so they run interleaved in
// rounds — baseline, keyvalue, the limit, the peers, then again in
// another order — after one untimed warm-up run each (connections
// dialled, scripts loaded, caches of the server and the runtime warm).
func Run(ctx context.Context, env *Env, scenarios []Scenario, peers []Peer, repeats int, progress func(i int, name string)) ([]Result, error) {
	var out []Result
	for i, sc := range scenarios {
		if progress != nil {
			progress(i, sc.Name)
		}
		res := Result{Scenario: sc, RTT: env.RTT, Peers: map[string]*Stats{}, Errors: map[string]string{}}
		type contender struct {
			name     string
			impl     Impl
			measures []Measure
			out      func(*Stats)
			dropped  bool
		}
		cs := []*contender{
			{name: "baseline", impl: sc.Baseline, out: func(st *Stats) { res.Baseline = st }},
			{name: "keyvalue", impl: sc.Keyvalue, out: func(st *Stats) { res.Keyvalue = st }},
			{name: "limit", impl: sc.Limit, out: func(st *Stats) { res.Limit = st }},
		}
		for _, p := range peers {
			if impl, ok := p.Impls[sc.Name]; ok {
				cs = append(cs, &contender{name: p.Name, impl: impl, out: func(st *Stats) { res.Peers[p.Name] = st }})
			}
		}
		once := func(c *contender) (Measure, bool) {
			if c.impl == nil || c.dropped {
				return Measure{}, false
			}
			if err := ctx.Err(); err != nil {
				res.Errors[c.name], c.dropped = err.Error(), true
				return Measure{}, false
			}
			// Each run starts with a collected heap (as testing.B's do): the
			// garbage of the run before it, another implementation's, is
			// not collected on this one's time.
			runtime.GC()
			limit := env.runTimeout()
			rctx, cancel := context.WithTimeout(ctx, limit)
			m, err := c.impl(rctx, env)
			timedOut := rctx.Err() != nil && ctx.Err() == nil
			cancel()
			env.sweep(ctx, sc.Name, c.name)
			switch {
			case timedOut:
				res.Errors[c.name], c.dropped = fmt.Sprintf("gave up after %s (a run must not hang the benchmark)", limit), true
			case errors.Is(err, ErrSkip):
				c.dropped = true
			case err != nil:
				res.Errors[c.name], c.dropped = err.Error(), true
			default:
				return m, true
			}
			return Measure{}, false
		}
		if !sc.NoWarmUp {
			for _, c := range cs {
				once(c) // warm-up, not counted
			}
		}
		rounds := max(repeats, 1)
		if sc.Once {
			rounds = 1
		}
		for round := range rounds {
			for k := range cs {
				c := cs[(k+round)%len(cs)] // another order each round
				if m, ok := once(c); ok {
					c.measures = append(c.measures, m)
				}
			}
		}
		for _, c := range cs {
			if !c.dropped && len(c.measures) > 0 {
				c.out(summarize(c.measures))
			}
		}
		out = append(out, res)
		if err := ctx.Err(); err != nil {
			return out, err
		}
	}
	return out, nil
}

// sweep runs env.Sweep, bounded in time (even after ctx ends: the keys
// must still go).
func (env *Env) sweep(ctx context.Context, scenario, impl string) {
	if env.Sweep == nil {
		return
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	env.Sweep(sctx, scenario, impl)
}

// WithinNoise reports whether the spreads of the baseline and keyvalue
// overlap so much that their ratio could be on either side of 1.0: the
// best of one run against the worst of the other crosses 1.
func (r Result) WithinNoise() bool { return r.crossesOne(r.Baseline, r.Keyvalue) }

// LimitWithinNoise is WithinNoise for keyvalue against the limit: a
// keyvalue ÷ limit whose runs could put it on either side of 1.0 (at the
// limit, or "cheaper than the limit", which only noise can make it).
func (r Result) LimitWithinNoise() bool { return r.crossesOne(r.Limit, r.Keyvalue) }

// crossesOne reports whether the ratio of ref to kv (ref's cost over kv's,
// by the scenario's direction) can fall on either side of 1.0 given both
// spreads.
func (r Result) crossesOne(ref, kv *Stats) bool {
	if ref == nil || kv == nil || ref.Runs < 2 || kv.Runs < 2 || ref.Min <= 0 || kv.Min <= 0 {
		return false
	}
	lo, hi := ref.Min/kv.Max, ref.Max/kv.Min // the ratio's range, lower is better
	if r.Scenario.Higher {
		lo, hi = kv.Min/ref.Max, kv.Max/ref.Min
	}
	return lo < 1 && hi > 1
}

func summarize(ms []Measure) *Stats {
	vals := make([]float64, len(ms))
	extra := map[string][]float64{}
	for i, m := range ms {
		vals[i] = m.Value
		for k, v := range m.Extra {
			extra[k] = append(extra[k], v)
		}
	}
	st := &Stats{Median: median(vals), Min: slices.Min(vals), Max: slices.Max(vals), Runs: len(ms)}
	if len(extra) > 0 {
		st.Extra = map[string]float64{}
		for k, v := range extra {
			st.Extra[k] = median(v)
		}
	}
	return st
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// PeerNames lists the peers that produced at least one result, sorted.
func PeerNames(results []Result) []string {
	seen := map[string]bool{}
	for _, r := range results {
		for p := range r.Peers {
			seen[p] = true
		}
	}
	var out []string
	for p := range seen {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// Select returns the scenarios whose names are listed (all when empty).
func Select(all []Scenario, names []string) ([]Scenario, error) {
	if len(names) == 0 {
		return all, nil
	}
	var out []Scenario
	for _, n := range names {
		i := slices.IndexFunc(all, func(s Scenario) bool { return s.Name == n })
		if i < 0 {
			return nil, fmt.Errorf("no scenario %q", n)
		}
		out = append(out, all[i])
	}
	return out, nil
}

// per returns the average duration of one of n operations, in unit.
func per(d time.Duration, n int, unit string) float64 {
	avg := float64(d) / float64(n)
	switch unit {
	case "ns":
		return avg
	case "µs":
		return avg / 1e3
	case "ms":
		return avg / 1e6
	}
	panic("benchrun: unknown unit " + unit)
}
