package benchrun_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyvalue-go/keyvalue"
	"github.com/keyvalue-go/keyvalue/cmd/keyvalue/internal/benchrun"
	"github.com/keyvalue-go/keyvalue/internal/scripts"
	"github.com/keyvalue-go/keyvalue/internal/testsupport/servertest"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// TestEveryScenarioRunsTiny runs each scenario once for the baseline and
// keyvalue at tiny sizes: each must produce a positive number, and the
// JSON report must validate against its schema.
func TestEveryScenarioRunsTiny(t *testing.T) {
	s := servertest.Standalone(t)
	cfg := keyvalue.Config{Addrs: []string{s.Addr()}}
	env := &benchrun.Env{Cfg: cfg, Plain: true, NS: benchrun.NewNamespace(), Tiny: true}
	c, err := keyvalue.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if err := scripts.Preload(ctx, c); err != nil {
		t.Fatal(err)
	}
	results, err := benchrun.Run(ctx, env, benchrun.Scenarios(), nil, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != len(benchrun.Scenarios()) {
		t.Fatalf("%d results, want all %d scenarios", len(results), len(benchrun.Scenarios()))
	}
	for _, r := range results {
		for impl, st := range map[string]*benchrun.Stats{"baseline": r.Baseline, "keyvalue": r.Keyvalue, "limit": r.Limit} {
			if impl == "baseline" && r.Scenario.Baseline == nil || impl == "limit" && r.Scenario.Limit == nil {
				continue // a scenario only keyvalue can run (cache/local-staleness), or without a defined limit
			}
			if st == nil || st.Median <= 0 {
				t.Errorf("%s / %s: no positive result (errors: %v)", r.Scenario.Name, impl, r.Errors)
			}
		}
	}
	var table bytes.Buffer
	benchrun.WriteTable(&table, results, nil, nil)
	t.Logf("\n%s", table.String())

	report := benchrun.BuildReport(results, nil, benchrun.ServerInfo{Product: "redis", Version: "7", Mode: "standalone"}, false, 1, nil)
	var doc bytes.Buffer
	if err := benchrun.WriteJSON(&doc, report); err != nil {
		t.Fatal(err)
	}
	validate(t, doc.Bytes())

	// Cleanup leaves nothing of the run on the server (lock fencing
	// counters, for one, outlive their locks by design).
	if _, err := benchrun.Cleanup(ctx, c, env.NS); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Do(ctx, c.B().Dbsize().Build()).AsInt64(); err != nil || n != 0 {
		t.Errorf("after Cleanup the server holds %d keys (%v)", n, err)
	}
	var html bytes.Buffer
	if err := benchrun.WriteHTML(&html, report); err != nil {
		t.Fatal(err)
	}
	var svg bytes.Buffer
	if err := benchrun.WriteRatioSVG(&svg, report); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(svg.String(), "lock/handoff") || !strings.Contains(svg.String(), "×") || !strings.Contains(svg.String(), "the limit)") {
		t.Error("ratio SVG lacks scenarios, ratios or limit ratios")
	}
	if !strings.Contains(table.String(), "keyvalue/limit") {
		t.Error("the table lacks the limit column")
	}
	if h := html.String(); !strings.Contains(h, "<svg") || !strings.Contains(h, "cache/flush-stall-100k") || strings.Contains(h, "<script") {
		t.Error("HTML report lacks charts or pulls in scripts")
	}
	h := html.String()
	if !strings.Contains(h, "<h2>Summary</h2>") || !strings.Contains(h, "× the limit") || !strings.Contains(h, "stroke-dasharray") {
		t.Error("HTML report lacks the summary chart or the limit lines")
	}
	if strings.Contains(h, ">—<") {
		t.Error("HTML report draws rows for implementations that did not run")
	}
}

func validate(t *testing.T, report []byte) {
	t.Helper()
	schemaDoc, err := jsonschema.UnmarshalJSON(bytes.NewReader(benchrun.SchemaJSON))
	if err != nil {
		t.Fatal(err)
	}
	comp := jsonschema.NewCompiler()
	if err := comp.AddResource("bench.schema.json", schemaDoc); err != nil {
		t.Fatal(err)
	}
	sch, err := comp.Compile("bench.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(report))
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(inst); err != nil {
		t.Fatalf("report does not validate against bench.schema.json: %v", err)
	}
	// And a broken report does not.
	var m map[string]any
	_ = json.Unmarshal(report, &m)
	m["results"].([]any)[0].(map[string]any)["keyvalue"] = "fast"
	bad, _ := json.Marshal(m)
	inst, _ = jsonschema.UnmarshalJSON(bytes.NewReader(bad))
	if sch.Validate(inst) == nil {
		t.Error("the schema accepts a string where a number belongs")
	}
}

// TestRatiosWithinNoise: a ratio whose runs could fall on either side of
// 1.0 is printed as noise, for baseline ÷ keyvalue and for keyvalue ÷
// limit alike (a keyvalue "cheaper than the limit" is only noise), and
// printed plainly when the spreads are apart.
func TestRatiosWithinNoise(t *testing.T) {
	st := func(median, lo, hi float64) *benchrun.Stats {
		return &benchrun.Stats{Median: median, Min: lo, Max: hi, Runs: 3}
	}
	cases := []struct {
		name                string
		higher              bool
		baseline, kv, limit *benchrun.Stats
		noise, limitNoise   bool
		wantBase, wantLimit string
	}{
		{"apart", false, st(200, 190, 210), st(100, 95, 105), st(50, 48, 52), false, false, "2.0x", "2.0x"},
		{"kv below the limit by noise", false, st(200, 190, 210), st(90, 80, 120), st(100, 95, 110), false, true, "2.2x", "≈ (0.9x, noise)"},
		{"baseline overlapping", false, st(110, 90, 130), st(100, 95, 105), st(50, 48, 52), true, false, "≈ (1.1x, noise)", "2.0x"},
		{"ops/s at the limit", true, st(100, 95, 105), st(120, 110, 130), st(125, 115, 135), false, true, "1.2x", "≈ (1.0x, noise)"},
		{"ops/s apart", true, st(100, 95, 105), st(120, 118, 122), st(150, 148, 152), false, false, "1.2x", "1.2x"},
	}
	for _, tc := range cases {
		r := benchrun.Result{Scenario: benchrun.Scenario{Name: "s", Unit: "µs", Higher: tc.higher}, Baseline: tc.baseline, Keyvalue: tc.kv, Limit: tc.limit}
		if r.WithinNoise() != tc.noise || r.LimitWithinNoise() != tc.limitNoise {
			t.Errorf("%s: WithinNoise %v, LimitWithinNoise %v; want %v, %v", tc.name, r.WithinNoise(), r.LimitWithinNoise(), tc.noise, tc.limitNoise)
		}
		var b bytes.Buffer
		benchrun.WriteTable(&b, []benchrun.Result{r}, nil, nil)
		row := strings.Split(b.String(), "\n")[2]
		cells := regexp.MustCompile(`\s{2,}`).Split(strings.TrimSpace(row), -1)
		if got := cells[len(cells)-2:]; got[0] != tc.wantBase || got[1] != tc.wantLimit {
			t.Errorf("%s: row %q; want ratios %q and %q", tc.name, row, tc.wantBase, tc.wantLimit)
		}
	}
}

// TestReportByRTT: results at two round trips make one table per round
// trip (saying what the proxy costs), a JSON report that names each
// result's round trip and validates, and an HTML page with a summary per
// round trip, the chart against the round trip, and the reason a scenario
// has no baseline; its captions are paragraphs, not text cut at the
// chart's width.
func TestReportByRTT(t *testing.T) {
	sc := benchrun.Scenario{Name: "cache/set-1-tag", Unit: "µs", What: "one set"}
	nb := benchrun.Scenario{Name: "http/purge-100", Unit: "ms", What: "purge", NoBaseline: "the naive page cache has no purge by tag"}
	st := func(v float64) *benchrun.Stats { return &benchrun.Stats{Median: v, Min: v, Max: v, Runs: 3} }
	var results []benchrun.Result
	for _, rtt := range []time.Duration{0, 250 * time.Microsecond} {
		k := 1 + float64(rtt.Microseconds())/100
		results = append(results,
			benchrun.Result{Scenario: sc, RTT: rtt, Baseline: st(100 * k), Keyvalue: st(50 * k), Limit: st(40 * k)},
			benchrun.Result{Scenario: nb, RTT: rtt, Keyvalue: st(2 * k), Limit: st(1)})
	}
	rtts := []benchrun.RTTInfo{{}, {RTTMicros: 250, ProxyPingUs: 310, DirectPingUs: 30}}
	var table bytes.Buffer
	benchrun.WriteTable(&table, results, nil, rtts)
	t.Logf("\n%s", table.String())
	for _, want := range []string{"round trip: loopback", "round trip: +250µs (Toxiproxy in this process; a PING: 310 µs through it, 30 µs directly)"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q", want)
		}
	}
	report := benchrun.BuildReport(results, nil, benchrun.ServerInfo{Product: "redis", Version: "7", Mode: "standalone"}, true, 3, rtts)
	var doc bytes.Buffer
	if err := benchrun.WriteJSON(&doc, report); err != nil {
		t.Fatal(err)
	}
	validate(t, doc.Bytes())
	if !strings.Contains(doc.String(), `"rtt_us": 250`) || !strings.Contains(doc.String(), `"proxy_ping_us": 310`) {
		t.Error("JSON lacks the round trips")
	}
	var html bytes.Buffer
	if err := benchrun.WriteHTML(&html, report); err != nil {
		t.Fatal(err)
	}
	h := html.String()
	h = strings.ReplaceAll(h, "&#43;", "+") // html/template escapes the plus sign
	for _, want := range []string{"<h2>Summary, round trip loopback</h2>", "<h2>Summary, round trip +250µs</h2>",
		"Baseline ÷ keyvalue against the round trip", "no baseline: the naive page cache has no purge by tag",
		"cache/set-1-tag at +250µs", `<p class="caption">Green or red`} {
		if !strings.Contains(h, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	if strings.Contains(h, `<text x="0" y="`+"") && strings.Contains(h, "Log scale.</text>") {
		t.Error("a caption is still SVG text (cut at the chart's width)")
	}
	var svg bytes.Buffer
	if err := benchrun.WriteRatioSVG(&svg, report); err != nil {
		t.Fatal(err)
	}
	if sv := strings.ReplaceAll(svg.String(), "&#43;", "+"); !strings.Contains(sv, "cache/set-1-tag @ +250µs") || !strings.Contains(sv, "no baseline:") {
		t.Error("SVG lacks the round trips or the no-baseline reason")
	}
}

// TestEveryRunStartsClean: with Env.Sweep set, each run starts without the
// keys earlier runs left (a flush's or a SCAN's cost depends on what the
// database holds), and the sweep knows who left how many.
func TestEveryRunStartsClean(t *testing.T) {
	s := servertest.Standalone(t)
	cfg := keyvalue.Config{Addrs: []string{s.Addr()}}
	c, err := keyvalue.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	env := &benchrun.Env{Cfg: cfg, Plain: true, NS: benchrun.NewNamespace(), Tiny: true}
	left := map[string]int{}
	env.Sweep = func(ctx context.Context, scenario, impl string) {
		n, err := benchrun.Cleanup(ctx, c, env.NS)
		if err != nil {
			t.Errorf("sweep after %s/%s: %v", scenario, impl, err)
		}
		left[scenario+"/"+impl] += n
	}
	var seen []int64
	// Each implementation counts the keys it finds, then leaves 3 (the
	// baseline) or none (keyvalue) behind.
	run := func(leave int) benchrun.Impl {
		return func(ctx context.Context, env *benchrun.Env) (benchrun.Measure, error) {
			n, err := c.Do(ctx, c.B().Dbsize().Build()).AsInt64()
			if err != nil {
				return benchrun.Measure{}, err
			}
			seen = append(seen, n)
			for i := range leave {
				key := env.NS + ":left:" + string(rune('a'+i))
				if err := c.Do(ctx, c.B().Set().Key(key).Value("x").Build()).Error(); err != nil {
					return benchrun.Measure{}, err
				}
			}
			return benchrun.Measure{Value: 1}, nil
		}
	}
	sc := benchrun.Scenario{Name: "test/leftovers", Unit: "µs", Baseline: run(3), Keyvalue: run(0)}
	if _, err := benchrun.Run(ctx, env, []benchrun.Scenario{sc}, nil, 2, nil); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 6 { // a warm-up and two rounds each
		t.Fatalf("%d runs, want 6", len(seen))
	}
	for i, n := range seen {
		if n != 0 {
			t.Errorf("run %d found %d keys of earlier runs", i, n)
		}
	}
	if left["test/leftovers/baseline"] != 9 || left["test/leftovers/keyvalue"] != 0 {
		t.Errorf("leftovers reported: %v, want 9 keys from the baseline's three runs and none from keyvalue", left)
	}
}

// TestOnceAndNoWarmUp: a NoWarmUp scenario skips the warm-up run, a Once
// scenario runs once per implementation whatever the rounds.
func TestOnceAndNoWarmUp(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	env := &benchrun.Env{Plain: true, NS: benchrun.NewNamespace(), Tiny: true}
	for _, tc := range []struct {
		noWarmUp, once bool
		want           int // runs of each implementation
	}{{false, false, 4}, {true, false, 3}, {false, true, 2}, {true, true, 1}} {
		runs := map[string]int{}
		count := func(name string) benchrun.Impl {
			return func(context.Context, *benchrun.Env) (benchrun.Measure, error) {
				runs[name]++
				return benchrun.Measure{Value: 1}, nil
			}
		}
		sc := benchrun.Scenario{Name: "test/runs", Unit: "×", Baseline: count("baseline"), Keyvalue: count("keyvalue"), NoWarmUp: tc.noWarmUp, Once: tc.once}
		res, err := benchrun.Run(ctx, env, []benchrun.Scenario{sc}, nil, 3, nil)
		if err != nil {
			t.Fatal(err)
		}
		if runs["baseline"] != tc.want || runs["keyvalue"] != tc.want {
			t.Errorf("NoWarmUp %v, Once %v: ran %v, want %d each", tc.noWarmUp, tc.once, runs, tc.want)
		}
		if rounds := tc.want - map[bool]int{false: 1, true: 0}[tc.noWarmUp]; res[0].Keyvalue.Runs != rounds {
			t.Errorf("NoWarmUp %v, Once %v: %d runs reported, want %d", tc.noWarmUp, tc.once, res[0].Keyvalue.Runs, rounds)
		}
	}
}

// TestThroughput: calls run for about the window and are counted; the
// first error stops every worker and is returned.
func TestThroughput(t *testing.T) {
	start := time.Now()
	ops, err := benchrun.Throughput(4, 100*time.Millisecond, func() error { time.Sleep(2 * time.Millisecond); return nil })
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	// 4 workers of one call per 2 ms (or a little more): at most 2,000/s.
	if ops <= 0 || ops > 2100 {
		t.Errorf("%.0f calls/s, want between 0 and 2,000", ops)
	}
	if took < 100*time.Millisecond || took > 2*time.Second {
		t.Errorf("took %s for a 100ms window", took)
	}
	boom := errors.New("boom")
	var calls atomic.Int64
	_, err = benchrun.Throughput(8, time.Minute, func() error {
		if calls.Add(1) == 50 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Errorf("Throughput = %v, want the first error", err)
	}
	// Workers failing at once with errors of different types: one of them
	// is returned (an atomic.Value would panic on the second type).
	var n atomic.Int64
	start2 := make(chan struct{})
	go func() { time.Sleep(10 * time.Millisecond); close(start2) }()
	_, err = benchrun.Parallel(8, 1000, func() error {
		<-start2
		if n.Add(1)%2 == 0 {
			return boom
		}
		return &net.OpError{Op: "read", Err: boom}
	})
	if !errors.Is(err, boom) {
		t.Errorf("Parallel = %v, want one of the workers' errors", err)
	}
}
