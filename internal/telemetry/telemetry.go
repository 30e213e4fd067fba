// Package telemetry records the library's metrics and traces through the
// OpenTelemetry API only: the application chooses the SDK and exporters
// (or none: then the global no-op providers make this nearly free).
//
// Every component (cache, lock, session, httpcache) records:
//
//	keyvalue.<component>.operation.duration  histogram (s): each public operation, with
//	                                         keyvalue.operation and error.type (on failure)
//	keyvalue.<component>.<counter>           counters named by the component (cache hits, ...)
//
// and, under a recording span in the caller's context (an application's
// request span), one child span per operation named
// "<component>.<operation>", with the
// attributes of OpenTelemetry's database conventions (db.system.name,
// db.operation.name) and the component's name attribute (the cache's,
// lock's or store's name). Values, tags, ids and session ids never go
// into attributes.
package telemetry

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/valkey-io/valkey-go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// scope is the instrumentation scope of every meter and tracer.
const scope = "github.com/keyvalue-go/keyvalue"

// Recorder records one component's operations; the zero value and nil
// record nothing.
type Recorder struct {
	component string
	tracer    trace.Tracer
	duration  metric.Float64Histogram
	counters  map[string]metric.Int64Counter
	base      attribute.Set // component name attributes
	baseKV    []attribute.KeyValue
	baseOpt   metric.MeasurementOption
	addOpts   []metric.AddOption // {baseOpt}, built once: a variadic call with a new slice allocates
	spanKind  trace.SpanStartOption
	ops       sync.Map // op name -> *OpInfo, built on first use
	// Classify, if set, names errors the component knows ("invalid_input",
	// "not_held"); "" leaves it to the defaults.
	Classify func(error) string
}

// New returns the recorder of a component ("cache", "lock", "session")
// instance, identified by the attribute nameKey = name (none when nameKey
// is empty). nil providers use
// OpenTelemetry's global ones. counters names the component's counters
// with their descriptions ("hits": "reads that found an entry").
func New(component, nameKey, name string, mp metric.MeterProvider, tp trace.TracerProvider, counters map[string]string) *Recorder {
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	meter := mp.Meter(scope)
	r := &Recorder{component: component, tracer: tp.Tracer(scope), counters: map[string]metric.Int64Counter{}}
	if nameKey != "" {
		r.baseKV = []attribute.KeyValue{attribute.String(nameKey, name)}
	}
	r.base = attribute.NewSet(r.baseKV...)
	r.baseOpt = metric.WithAttributeSet(r.base)
	r.addOpts = []metric.AddOption{r.baseOpt}
	r.spanKind = trace.WithSpanKind(trace.SpanKindClient)
	// Errors creating instruments leave a no-op instrument in their place
	// (the API's contract): telemetry never stops the library.
	r.duration, _ = meter.Float64Histogram("keyvalue."+component+".operation.duration",
		metric.WithUnit("s"), metric.WithDescription("Duration of keyvalue "+component+" operations."),
		metric.WithExplicitBucketBoundaries(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
	for n, desc := range counters {
		r.counters[n], _ = meter.Int64Counter("keyvalue."+component+"."+n, metric.WithDescription(desc))
	}
	return r
}

// opInfo is what an operation's records share, computed once: the hot
// path allocates nothing for telemetry that is not recorded.
// OpInfo is an operation's precomputed names and attributes; hot paths
// keep theirs (Recorder.Op) and start spans with StartOp.
type OpInfo struct {
	op       string
	spanName string
	okOpts   []metric.RecordOption // base attributes + keyvalue.operation
}

// Op returns op's OpInfo, built on first use.
func (r *Recorder) Op(op string) *OpInfo {
	if r == nil {
		return nil
	}
	return r.opInfo(op)
}

func (r *Recorder) opInfo(op string) *OpInfo {
	if v, ok := r.ops.Load(op); ok {
		return v.(*OpInfo)
	}
	kv := append([]attribute.KeyValue{attribute.String("keyvalue.operation", op)}, r.baseKV...)
	v, _ := r.ops.LoadOrStore(op, &OpInfo{op: op, spanName: r.component + "." + op, okOpts: []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(kv...))}})
	return v.(*OpInfo)
}

// Span is one operation in progress.
type Span struct {
	r     *Recorder
	info  *OpInfo
	start time.Time
	span  trace.Span
}

// Start begins operation op: a span (child of ctx's) and a timer.
func (r *Recorder) Start(ctx context.Context, op string) (context.Context, Span) {
	if r == nil {
		return ctx, Span{}
	}
	return r.StartOp(ctx, r.opInfo(op))
}

// StartOp is Start with the operation's OpInfo (Op), saving its lookup.
func (r *Recorder) StartOp(ctx context.Context, info *OpInfo) (context.Context, Span) {
	if r == nil {
		return ctx, Span{}
	}
	sp := Span{r: r, info: info}
	// A span only under a recording one: an operation outside any trace
	// (or in an unsampled one) costs no span and no context.
	if trace.SpanFromContext(ctx).IsRecording() {
		ctx, sp.span = r.tracer.Start(ctx, info.spanName, r.spanKind)
		sp.span.SetAttributes(attribute.String("db.system.name", "redis"), attribute.String("db.operation.name", info.spanName))
		sp.span.SetAttributes(r.baseKV...)
	}
	// The clock is read only when the duration is recorded (two clock
	// reads are a measurable share of a pipelined GET).
	if r.duration.Enabled(ctx) {
		sp.start = time.Now()
	}
	return ctx, sp
}

// End records the operation's duration and outcome. Misses and other
// expected outcomes are not errors: pass nil for them.
func (s Span) End(ctx context.Context, err error) {
	if s.r == nil {
		return
	}
	timed := !s.start.IsZero()
	var took float64
	if timed {
		took = time.Since(s.start).Seconds()
	}
	if err == nil {
		if timed {
			s.r.duration.Record(ctx, took, s.info.okOpts...)
		}
		if s.span != nil {
			s.span.End()
		}
		return
	}
	t := ""
	if s.r.Classify != nil {
		t = s.r.Classify(err)
	}
	if t == "" {
		t = errorType(err)
	}
	if s.span != nil {
		s.span.SetStatus(codes.Error, t)
		s.span.SetAttributes(attribute.String("error.type", t))
		s.span.End()
	}
	if timed {
		s.r.duration.Record(ctx, took, s.r.baseOpt, metric.WithAttributes(attribute.String("keyvalue.operation", s.info.op), attribute.String("error.type", t)))
	}
}

// errorType names an error for the error.type attribute without its
// message (which may hold ids): the context's errors, a server's error
// reply, or a connection problem.
func errorType(err error) string {
	switch {
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	if reply := (*valkey.ValkeyError)(nil); errors.As(err, &reply) && !valkey.IsValkeyNil(reply) {
		return "server_error"
	}
	return "unavailable"
}

// Counter is one of a Recorder's counters, looked up once
// (Recorder.Counter) for a hot path; the zero value records nothing.
type Counter struct {
	c    metric.Int64Counter
	opts []metric.AddOption
}

// Counter returns the counter called name (one of those given to New);
// the zero Counter when there is none.
func (r *Recorder) Counter(name string) Counter {
	if r == nil {
		return Counter{}
	}
	c, ok := r.counters[name]
	if !ok {
		return Counter{}
	}
	return Counter{c: c, opts: r.addOpts}
}

// Add adds n to the counter, with the recorder's attributes.
func (c Counter) Add(ctx context.Context, n int64) {
	if c.c != nil {
		c.c.Add(ctx, n, c.opts...)
	}
}

// Add adds n to the counter called name (one of those given to New),
// with extra attributes.
func (r *Recorder) Add(ctx context.Context, name string, n int64, attrs ...attribute.KeyValue) {
	if r == nil {
		return
	}
	c, ok := r.counters[name]
	if !ok {
		return
	}
	if len(attrs) == 0 {
		c.Add(ctx, n, r.addOpts...)
		return
	}
	c.Add(ctx, n, r.baseOpt, metric.WithAttributes(attrs...))
}
