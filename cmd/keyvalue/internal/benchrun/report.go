package benchrun

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"maps"
	"math"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Report is the JSON document `keyvalue bench --json` writes (schema in
// bench.schema.json next to this file).
type Report struct {
	Schema  string      `json:"$schema"`
	Date    string      `json:"date"`
	Quick   bool        `json:"quick"`
	Repeats int         `json:"repeats"`
	Server  ServerInfo  `json:"server"`
	Machine MachineInfo `json:"machine"`
	// RTTs are the round trips the results were measured at, in order,
	// with what the proxy itself costs.
	RTTs    []RTTInfo    `json:"rtts"`
	Results []ResultJSON `json:"results"`
}

// RTTInfo is one round trip of the run: RTTMicros added by a proxy (0:
// the server directly), and a PING's median through the proxy and
// directly (0 when no proxy ran), which shows the proxy's own cost.
type RTTInfo struct {
	RTTMicros    int64   `json:"rtt_us"`
	ProxyPingUs  float64 `json:"proxy_ping_us"`
	DirectPingUs float64 `json:"direct_ping_us"`
}

// Label names a round trip for people: "loopback" or "+250µs".
func (i RTTInfo) Label() string { return rttLabel(time.Duration(i.RTTMicros) * time.Microsecond) }

func rttLabel(d time.Duration) string {
	if d == 0 {
		return "loopback"
	}
	return "+" + d.String()
}

// ServerInfo describes the server benchmarked.
type ServerInfo struct {
	Product string `json:"product"` // redis or valkey
	Version string `json:"version"`
	Mode    string `json:"mode"` // standalone, sentinel or cluster
	TLS     bool   `json:"tls"`
	Local   bool   `json:"throwaway_local"`
}

// MachineInfo describes the machine the client ran on.
type MachineInfo struct {
	OS   string `json:"os"`
	Arch string `json:"arch"`
	CPUs int    `json:"cpus"`
	Go   string `json:"go"`
}

// ResultJSON is one scenario in the JSON report. Values are numbers in
// Unit, or null where an implementation does not do the scenario.
type ResultJSON struct {
	Name string `json:"name"`
	// RTTMicros is the round trip added between the implementations and
	// the server (0: none), one of the report's RTTs.
	RTTMicros int64 `json:"rtt_us"`
	// NoBaseline says why the scenario has no baseline.
	NoBaseline string              `json:"no_baseline,omitempty"`
	Unit       string              `json:"unit"`
	Better     string              `json:"better"` // "lower" or "higher"
	What       string              `json:"what"`
	Baseline   *float64            `json:"baseline"`
	Keyvalue   *float64            `json:"keyvalue"`
	Limit      *float64            `json:"limit"` // the cheapest raw-command equivalent
	Peers      map[string]*float64 `json:"peers"`
	Ratio      *float64            `json:"ratio"` // how many times better keyvalue is than the baseline
	// WithinNoise is true when the runs' spreads make the ratio's side of
	// 1.0 uncertain.
	WithinNoise bool `json:"within_noise,omitempty"`
	// LimitRatio is how many times keyvalue's cost is the limit's.
	LimitRatio *float64 `json:"limit_ratio"`
	// LimitWithinNoise is true when the runs' spreads make LimitRatio's
	// side of 1.0 uncertain (keyvalue at the limit, within noise).
	LimitWithinNoise bool                          `json:"limit_within_noise,omitempty"`
	Spread           map[string][2]float64         `json:"spread"` // min and max over the repetitions
	Extra            map[string]map[string]float64 `json:"extra,omitempty"`
	Errors           map[string]string             `json:"errors,omitempty"`
}

// NewMachineInfo describes this machine.
func NewMachineInfo() MachineInfo {
	return MachineInfo{OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU(), Go: runtime.Version()}
}

// BuildReport turns results into the JSON report; rtts describe the
// round trips the results were measured at (nil: loopback only).
func BuildReport(results []Result, peers []string, server ServerInfo, quick bool, repeats int, rtts []RTTInfo) Report {
	if len(rtts) == 0 {
		rtts = []RTTInfo{{}}
	}
	r := Report{Schema: "https://keyvalue-go.github.io/schema/bench-1.json", Date: time.Now().UTC().Format(time.RFC3339),
		Quick: quick, Repeats: repeats, Server: server, Machine: NewMachineInfo(), RTTs: rtts}
	for _, res := range results {
		better := "lower"
		if res.Scenario.Higher {
			better = "higher"
		}
		j := ResultJSON{Name: res.Scenario.Name, RTTMicros: res.RTT.Microseconds(), NoBaseline: res.Scenario.NoBaseline, Unit: res.Scenario.Unit, Better: better, What: res.Scenario.What,
			Baseline: med(res.Baseline), Keyvalue: med(res.Keyvalue), Limit: med(res.Limit), Peers: map[string]*float64{}, Spread: map[string][2]float64{}}
		if ratio := res.Ratio(); ratio > 0 {
			j.Ratio = &ratio
			j.WithinNoise = res.WithinNoise()
		}
		if lr := res.LimitRatio(); lr > 0 {
			j.LimitRatio = &lr
			j.LimitWithinNoise = res.LimitWithinNoise()
		}
		add := func(name string, st *Stats) {
			if st == nil {
				return
			}
			j.Spread[name] = [2]float64{st.Min, st.Max}
			if len(st.Extra) > 0 {
				if j.Extra == nil {
					j.Extra = map[string]map[string]float64{}
				}
				j.Extra[name] = st.Extra
			}
		}
		add("baseline", res.Baseline)
		add("keyvalue", res.Keyvalue)
		add("limit", res.Limit)
		for _, p := range peers {
			j.Peers[p] = med(res.Peers[p])
			add(p, res.Peers[p])
		}
		if len(res.Errors) > 0 {
			j.Errors = res.Errors
		}
		r.Results = append(r.Results, j)
	}
	return r
}

func med(st *Stats) *float64 {
	if st == nil {
		return nil
	}
	v := st.Median
	return &v
}

// WriteJSON writes the report as indented JSON.
func WriteJSON(w io.Writer, r Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// format prints a value in its unit with sensible precision.
func format(v float64, unit string) string {
	switch {
	case unit == "ops/s":
		return fmt.Sprintf("%.0f", v)
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func cell(st *Stats, unit string) string {
	if st == nil {
		return "—"
	}
	s := format(st.Median, unit)
	if p99, ok := st.Extra["p99"]; ok {
		s += " (" + format(p99, unit) + ")"
	}
	if m, ok := st.Extra["max"]; ok {
		s += " (max " + format(m, unit) + ")"
	}
	if ms, ok := st.Extra["p99ms"]; ok {
		s += " (p99 " + format(ms, "ms") + " ms)"
	}
	return s
}

// WriteTable writes the terminal table: one per round trip when the run
// measured several (or one through a proxy), each under a line that says
// what the round trip and the proxy cost.
func WriteTable(w io.Writer, results []Result, peers []string, rtts []RTTInfo) {
	groups := groupByRTT(results)
	for gi, g := range groups {
		if len(groups) > 1 || g.rtt > 0 {
			if gi > 0 {
				fmt.Fprintln(w)
			}
			fmt.Fprintf(w, "round trip: %s%s\n", rttLabel(g.rtt), proxyNote(g.rtt, rtts))
		}
		writeTable(w, g.results, peers)
		if gi > 0 {
			var once []string
			for _, r := range groups[0].results {
				if !slices.ContainsFunc(g.results, func(x Result) bool { return x.Scenario.Name == r.Scenario.Name }) {
					once = append(once, r.Scenario.Name)
				}
			}
			if len(once) > 0 {
				fmt.Fprintf(w, "measured at %s only (the figure does not depend on the round trip, or --quick): %s\n", rttLabel(groups[0].rtt), strings.Join(once, ", "))
			}
		}
	}
	fmt.Fprintln(w, "baseline/keyvalue: how many times better keyvalue is than the baseline (for ops/s: higher is better; else lower); ≈ (… noise): the runs' spreads overlap across 1.0, neither is better.")
	fmt.Fprintln(w, "limit: the cheapest raw commands doing the same server work (BENCHMARKS.md); keyvalue/limit: how many times that keyvalue costs (1.0x = at the limit; ≈ (… noise): the runs' spreads overlap across 1.0, at the limit within noise).")
	fmt.Fprintln(w, "lock/handoff: p50 (p99); lock/contended-8: ops/s (p99 wait); cache/local-staleness: p99 (max).")
}

// proxyNote says what a PING costs through the round trip's proxy and
// directly.
func proxyNote(rtt time.Duration, rtts []RTTInfo) string {
	for _, i := range rtts {
		if i.RTTMicros == rtt.Microseconds() && i.ProxyPingUs > 0 {
			return fmt.Sprintf(" (Toxiproxy in this process; a PING: %.0f µs through it, %.0f µs directly)", i.ProxyPingUs, i.DirectPingUs)
		}
	}
	return ""
}

// rttGroup is the results of one round trip, in the run's order.
type rttGroup struct {
	rtt     time.Duration
	results []Result
}

func groupByRTT(results []Result) []rttGroup {
	var groups []rttGroup
	for _, r := range results {
		if len(groups) == 0 || groups[len(groups)-1].rtt != r.RTT {
			groups = append(groups, rttGroup{rtt: r.RTT})
		}
		g := &groups[len(groups)-1]
		g.results = append(g.results, r)
	}
	return groups
}

func writeTable(w io.Writer, results []Result, peers []string) {
	head := []string{"scenario", "unit", "baseline", "keyvalue"}
	head = append(head, peers...)
	head = append(head, "limit", "baseline/keyvalue", "keyvalue/limit")
	rows := [][]string{head}
	for _, r := range results {
		row := []string{r.Scenario.Name, r.Scenario.Unit, cell(r.Baseline, r.Scenario.Unit), cell(r.Keyvalue, r.Scenario.Unit)}
		for _, p := range peers {
			row = append(row, cell(r.Peers[p], r.Scenario.Unit))
		}
		ratio, limit := "—", "—"
		if x := r.Ratio(); x > 0 {
			ratio = fmt.Sprintf("%.1fx", x)
			if r.WithinNoise() {
				ratio = fmt.Sprintf("≈ (%.1fx, noise)", x)
			}
		}
		if x := r.LimitRatio(); x > 0 {
			limit = fmt.Sprintf("%.1fx", x)
			if r.LimitWithinNoise() {
				limit = fmt.Sprintf("≈ (%.1fx, noise)", x)
			}
		}
		rows = append(rows, append(row, cell(r.Limit, r.Scenario.Unit), ratio, limit))
	}
	widths := make([]int, len(head))
	for _, row := range rows {
		for i, c := range row {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	for ri, row := range rows {
		var b strings.Builder
		for i, c := range row {
			pad := widths[i] - len([]rune(c))
			if i < 2 {
				b.WriteString(c + strings.Repeat(" ", pad))
			} else {
				b.WriteString(strings.Repeat(" ", pad) + c)
			}
			b.WriteString("  ")
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
		if ri == 0 {
			total := 0
			for _, wd := range widths {
				total += wd + 2
			}
			fmt.Fprintln(w, strings.Repeat("-", total-2))
		}
	}
}

// WriteHTML writes a self-contained page (inline SVG, no scripts, no
// external files): per round trip, a summary chart with two bars per
// scenario on a log scale — baseline ÷ keyvalue (how much better than the
// usual way) and keyvalue ÷ limit (how far from what the server and the
// wire allow) —; with several round trips, baseline ÷ keyvalue of every
// scenario against the round trip; then one chart per scenario and round
// trip listing only the implementations that ran it, with the limit drawn
// as a line.
func WriteHTML(w io.Writer, r Report) error {
	type bar struct {
		Label, Value string
		Y, Width     float64
		Color        string
	}
	type chart struct {
		Name, RTT, What, Unit, Better, Ratio, NoBaseline string
		Height                                           float64
		Bars                                             []bar
		HasLimit                                         bool
		LimitX                                           float64
		LimitLabel                                       string
	}
	var charts []chart
	colors := map[string]string{"baseline": "#b0b0b0", "keyvalue": "#2f7d32"}
	palette := []string{"#4a78c2", "#c27a4a", "#8a4ac2", "#c24a6e", "#4ab0c2", "#7a8a2f"}
	for _, res := range r.Results {
		c := chart{Name: res.Name, What: res.What, Unit: res.Unit, Better: res.Better, NoBaseline: res.NoBaseline}
		if len(r.RTTs) > 1 || res.RTTMicros > 0 {
			c.RTT = rttLabel(time.Duration(res.RTTMicros) * time.Microsecond)
		}
		if res.Ratio != nil {
			c.Ratio = fmt.Sprintf("%.1f× %s than the baseline", *res.Ratio, map[bool]string{true: "better", false: "worse"}[*res.Ratio >= 1])
			if res.WithinNoise {
				c.Ratio = fmt.Sprintf("%.1f× the baseline, within the runs' noise", *res.Ratio)
			}
		}
		if res.LimitRatio != nil {
			if c.Ratio != "" {
				c.Ratio += "; "
			}
			c.Ratio += fmt.Sprintf("%.1f× the limit", *res.LimitRatio)
			if res.LimitWithinNoise {
				c.Ratio += " (at the limit within the runs' noise)"
			}
		}
		type kv struct {
			name string
			v    *float64
		}
		vals := []kv{{"baseline", res.Baseline}, {"keyvalue", res.Keyvalue}}
		i := 0
		for _, p := range slices.Sorted(maps.Keys(res.Peers)) {
			vals = append(vals, kv{p, res.Peers[p]})
			if colors[p] == "" {
				colors[p] = palette[i%len(palette)]
				i++
			}
		}
		vals = slices.DeleteFunc(vals, func(x kv) bool { return x.v == nil }) // only what ran
		top := 0.0
		for _, x := range append(vals, kv{"limit", res.Limit}) {
			if x.v != nil {
				top = math.Max(top, *x.v)
			}
		}
		for j, x := range vals {
			b := bar{Label: x.name, Y: float64(j) * 26, Color: colors[x.name], Value: format(*x.v, res.Unit) + " " + res.Unit}
			if top > 0 {
				b.Width = 420 * *x.v / top
			}
			c.Bars = append(c.Bars, b)
		}
		c.Height = float64(len(vals))*26 + 4
		if res.Limit != nil && top > 0 {
			c.HasLimit, c.LimitX = true, 110+420**res.Limit/top
			c.LimitLabel = "limit " + format(*res.Limit, res.Unit) + " " + res.Unit
			c.Height += 18
		}
		charts = append(charts, c)
	}
	type summary struct {
		RTT, Proxy string
		Chart      template.HTML
	}
	var summaries []summary
	for _, info := range r.RTTs {
		var rs []ResultJSON
		for _, res := range r.Results {
			if res.RTTMicros == info.RTTMicros {
				rs = append(rs, res)
			}
		}
		chart, err := summaryChart(rs)
		if err != nil {
			return err
		}
		sm := summary{Chart: chart}
		if len(r.RTTs) > 1 || info.RTTMicros > 0 {
			sm.RTT = info.Label()
		}
		if info.ProxyPingUs > 0 {
			sm.Proxy = fmt.Sprintf("Through Toxiproxy (in the benchmark's process) adding %s per round trip; a PING takes %.0f µs through it, %.0f µs directly.", info.Label(), info.ProxyPingUs, info.DirectPingUs)
		}
		summaries = append(summaries, sm)
	}
	var byRTT template.HTML
	if len(r.RTTs) > 1 {
		var err error
		if byRTT, err = rttChart(r); err != nil {
			return err
		}
	}
	return htmlPage.Execute(w, map[string]any{"R": r, "Charts": charts, "Summaries": summaries, "ByRTT": byRTT})
}

// summaryChart draws a summary: per scenario, baseline ÷ keyvalue (green
// when keyvalue is better, red when worse, grey within noise) and keyvalue
// ÷ limit (blue), on a log scale centred on 1×; a scenario without a
// baseline says why.
func summaryChart(results []ResultJSON) (template.HTML, error) {
	type row struct {
		Name                    string
		Y, LimitY               float64
		RatioX, RatioW, LimitW  float64
		RatioLabel, LimitLabel  string
		RatioColor, NoBaseline  string
		HasRatio, HasLimitRatio bool
	}
	const left, scale, rowH = 250.0, 90.0, 34.0 // scale: pixels per factor of 10
	var rows []row
	for i, res := range results {
		rw := row{Name: res.Name, Y: float64(i) * rowH, LimitY: float64(i)*rowH + 15}
		if res.Ratio != nil {
			lg := math.Log10(*res.Ratio)
			rw.HasRatio, rw.RatioW, rw.RatioX, rw.RatioColor = true, math.Max(math.Abs(lg)*scale, 1), left, "#2f7d32"
			if lg < 0 {
				rw.RatioX, rw.RatioColor = left-rw.RatioW, "#c24a4a"
			}
			if res.WithinNoise {
				rw.RatioColor = "#b0b0b0"
			}
			rw.RatioLabel = fmt.Sprintf("%.1f× the baseline", *res.Ratio)
		} else if res.NoBaseline != "" {
			rw.NoBaseline = "no baseline: " + res.NoBaseline
		}
		if res.LimitRatio != nil {
			rw.HasLimitRatio, rw.LimitW = true, math.Max(math.Log10(math.Max(*res.LimitRatio, 1))*scale, 1)
			rw.LimitLabel = fmt.Sprintf("%.1f× the limit", *res.LimitRatio)
			if res.LimitWithinNoise {
				rw.LimitLabel += " (noise)"
			}
		}
		rows = append(rows, rw)
	}
	var b strings.Builder
	err := summarySVG.Execute(&b, map[string]any{"Rows": rows, "Left": left, "Height": float64(len(rows))*rowH + 4})
	return template.HTML(b.String()), err //nolint:gosec // our own template's output, escaped by it
}

var summarySVG = template.Must(template.New("summary").Parse(`<svg width="760" height="{{.Height}}" role="img" aria-label="summary: baseline ÷ keyvalue and keyvalue ÷ limit per scenario, log scale">
<line x1="{{.Left}}" y1="0" x2="{{.Left}}" y2="{{.Height}}" stroke="#888"></line>
{{range .Rows}}<text x="0" y="{{.Y}}" dy="14">{{.Name}}</text>
{{if .HasRatio}}<rect x="{{.RatioX}}" y="{{.Y}}" width="{{.RatioW}}" height="13" fill="{{.RatioColor}}"></rect><text x="{{.RatioX}}" y="{{.Y}}" dx="{{.RatioW}}" dy="11">&#160;{{.RatioLabel}}</text>{{end}}
{{if .NoBaseline}}<text x="{{$.Left}}" y="{{.Y}}" dx="4" dy="11" fill="#555">{{.NoBaseline}}</text>{{end}}
{{if .HasLimitRatio}}<rect x="{{$.Left}}" y="{{.LimitY}}" width="{{.LimitW}}" height="13" fill="#4a78c2"></rect><text x="{{$.Left}}" y="{{.LimitY}}" dx="{{.LimitW}}" dy="11">&#160;{{.LimitLabel}}</text>{{end}}
{{end}}</svg>`))

// rttChart draws baseline ÷ keyvalue of every scenario at each round trip
// of the run, side by side, on a log scale centred on 1×.
func rttChart(r Report) (template.HTML, error) {
	type cellT struct {
		X, W, LabelX float64
		Color, Label string
	}
	type row struct {
		Name  string
		Y     float64
		Cells []cellT
	}
	type col struct {
		X     float64
		Label string
	}
	const left, colW, scale, rowH = 230.0, 170.0, 40.0, 20.0
	var cols []col
	index := map[int64]int{}
	for i, info := range r.RTTs {
		index[info.RTTMicros] = i
		cols = append(cols, col{X: left + float64(i)*colW + colW/2, Label: info.Label()})
	}
	var rows []row
	rowOf := map[string]int{}
	for _, res := range r.Results {
		k, ok := rowOf[res.Name]
		if !ok {
			k = len(rows)
			rowOf[res.Name] = k
			rows = append(rows, row{Name: res.Name, Y: float64(k)*rowH + 20, Cells: make([]cellT, len(r.RTTs))})
		}
		i := index[res.RTTMicros]
		mid := left + float64(i)*colW + colW/2
		c := cellT{X: mid, LabelX: mid + 2, Label: "—", Color: "#2f7d32"}
		if res.Ratio != nil {
			lg := math.Log10(*res.Ratio)
			c.W = math.Min(math.Abs(lg)*scale, colW/2-30)
			if lg < 0 {
				c.X, c.Color = mid-c.W, "#c24a4a"
			}
			if res.WithinNoise {
				c.Color = "#b0b0b0"
			}
			c.Label = fmt.Sprintf("%.1f×", *res.Ratio)
			c.LabelX = mid + math.Max(c.W, 0) + 2
			if lg < 0 {
				c.LabelX = mid + 2
			}
		}
		rows[k].Cells[i] = c
	}
	var b strings.Builder
	err := rttSVG.Execute(&b, map[string]any{"Rows": rows, "Cols": cols, "Height": float64(len(rows))*rowH + 28,
		"Width": left + float64(len(cols))*colW})
	return template.HTML(b.String()), err //nolint:gosec // our own template's output, escaped by it
}

var rttSVG = template.Must(template.New("rtt").Parse(`<svg width="{{.Width}}" height="{{.Height}}" role="img" aria-label="baseline ÷ keyvalue per scenario at each round trip, log scale">
{{range .Cols}}<text x="{{.X}}" y="0" dy="12" text-anchor="middle" font-weight="600">{{.Label}}</text><line x1="{{.X}}" y1="16" x2="{{.X}}" y2="{{$.Height}}" stroke="#888"></line>
{{end}}{{range .Rows}}{{$y := .Y}}<text x="0" y="{{.Y}}" dy="13">{{.Name}}</text>
{{range .Cells}}{{if .Label}}<rect x="{{.X}}" y="{{$y}}" width="{{.W}}" height="14" fill="{{.Color}}"></rect><text x="{{.LabelX}}" y="{{$y}}" dy="12">{{.Label}}</text>{{end}}
{{end}}{{end}}</svg>`))

var htmlPage = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>keyvalue bench</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em;max-width:60em;color:#222}
h2{font-size:15px;margin:1.6em 0 .2em} p.what{margin:0;color:#555} p.ratio{margin:.2em 0;font-weight:600}
p.caption{color:#555;max-width:760px;margin:.3em 0 1em}
svg text{font:12px system-ui,sans-serif} table{border-collapse:collapse} td{padding:0 1em 0 0}
</style></head><body>
<h1>keyvalue bench</h1>
<table>
<tr><td>date</td><td>{{.R.Date}}</td></tr>
<tr><td>server</td><td>{{.R.Server.Product}} {{.R.Server.Version}}, {{.R.Server.Mode}}, TLS {{.R.Server.TLS}}{{if .R.Server.Local}}, throwaway local server{{end}}</td></tr>
<tr><td>machine</td><td>{{.R.Machine.OS}}/{{.R.Machine.Arch}}, {{.R.Machine.CPUs}} CPUs, {{.R.Machine.Go}}</td></tr>
<tr><td>runs</td><td>median of {{.R.Repeats}}{{if .R.Quick}} (quick){{end}}</td></tr>
</table>
{{range .Summaries}}
<h2>Summary{{if .RTT}}, round trip {{.RTT}}{{end}}</h2>
{{if .Proxy}}<p class="caption">{{.Proxy}}</p>{{end}}
{{.Chart}}
<p class="caption">Green or red: baseline ÷ keyvalue (right of the line: keyvalue better; red: worse; grey: within the runs' noise). Blue: keyvalue ÷ limit (1× at the line). Log scale.</p>
{{end}}
{{if .ByRTT}}<h2>Baseline ÷ keyvalue against the round trip</h2>
{{.ByRTT}}
<p class="caption">Each column is one round trip; right of its line keyvalue is better than the baseline (log scale). Round trips cost the baseline, which sends more of them, more than keyvalue.</p>
{{end}}
{{range .Charts}}
<h2>{{.Name}}{{if .RTT}} at {{.RTT}}{{end}} <small>({{.Unit}}, {{.Better}} is better)</small></h2>
<p class="what">{{.What}}</p>{{if .Ratio}}<p class="ratio">keyvalue: {{.Ratio}}</p>{{end}}{{if .NoBaseline}}<p class="what">No baseline: {{.NoBaseline}}.</p>{{end}}
<svg width="720" height="{{.Height}}" role="img" aria-label="{{.Name}}">
{{range .Bars}}<text x="0" y="{{.Y}}" dy="16">{{.Label}}</text>
<rect x="110" y="{{.Y}}" width="{{.Width}}" height="20" fill="{{.Color}}"></rect>
<text x="{{.Width}}" y="{{.Y}}" dx="116" dy="15">{{.Value}}</text>
{{end}}{{if .HasLimit}}<line x1="{{.LimitX}}" y1="0" x2="{{.LimitX}}" y2="{{.Height}}" stroke="#222" stroke-width="2" stroke-dasharray="4 3"></line>
<text x="{{.LimitX}}" y="{{.Height}}" dx="4" dy="-4">{{.LimitLabel}}</text>{{end}}
</svg>
{{end}}
</body></html>
`))

// WriteRatioSVG writes one SVG image with a bar per scenario showing how
// many times better keyvalue is than the baseline, on a log scale (for
// embedding in Markdown, where HTML reports cannot be inlined).
func WriteRatioSVG(w io.Writer, r Report) error {
	type row struct {
		Name, Label string
		Y, X, Width float64
		Color       string
	}
	const left, scale, rowH = 300.0, 110.0, 22.0 // scale: pixels per factor of 10
	var rows []row
	for i, res := range r.Results {
		name := res.Name
		if len(r.RTTs) > 1 || res.RTTMicros > 0 {
			name += " @ " + rttLabel(time.Duration(res.RTTMicros)*time.Microsecond)
		}
		rw := row{Name: name, Y: float64(i) * rowH, Label: "—", X: left}
		if res.Ratio == nil && res.NoBaseline != "" {
			rw.Label = "no baseline: " + res.NoBaseline
		}
		if res.Ratio != nil {
			lg := math.Log10(*res.Ratio)
			rw.Width = math.Abs(lg) * scale
			rw.Color = "#2f7d32"
			if lg < 0 {
				rw.X, rw.Color = left-rw.Width, "#c24a4a"
			}
			rw.Label = fmt.Sprintf("%.1f×", *res.Ratio)
			if res.WithinNoise {
				rw.Label += " (noise)"
				rw.Color = "#b0b0b0"
			}
		}
		if res.LimitRatio != nil {
			rw.Label += fmt.Sprintf(" (%.1f× the limit", *res.LimitRatio)
			if res.LimitWithinNoise {
				rw.Label += ", noise"
			}
			rw.Label += ")"
		}
		rows = append(rows, rw)
	}
	return ratioSVG.Execute(w, map[string]any{"Rows": rows, "Height": float64(len(rows))*rowH + 40, "Left": left, "Server": r.Server, "Machine": r.Machine})
}

var ratioSVG = template.Must(template.New("svg").Parse(`<svg xmlns="http://www.w3.org/2000/svg" width="830" height="{{.Height}}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<line x1="{{.Left}}" y1="0" x2="{{.Left}}" y2="{{.Height}}" stroke="#888"/>
{{range .Rows}}<text x="0" y="{{.Y}}" dy="15">{{.Name}}</text><rect x="{{.X}}" y="{{.Y}}" width="{{.Width}}" height="16" fill="{{.Color}}"/><text x="{{.X}}" y="{{.Y}}" dx="{{.Width}}" dy="13">  {{.Label}}</text>
{{end}}<text x="0" y="{{.Height}}" dy="-8" fill="#555">baseline ÷ keyvalue (log scale; right of the line: keyvalue better). {{.Server.Product}} {{.Server.Version}}, {{.Machine.CPUs}} CPUs</text>
</svg>
`))
