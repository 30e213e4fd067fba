package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/keyvalue-go/keyvalue/cache"
	"github.com/keyvalue-go/keyvalue/keyvaluetest"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// TestSpans: cache operations under a request's span become its children
// with the database attributes and no ids, tags or values; an operation
// outside any trace makes no span.
func TestSpans(t *testing.T) {
	client := keyvaluetest.Start(t).Client(t)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	b, err := cache.New(client, "spans", cache.Options{TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	ctx, request := tp.Tracer("test").Start(context.Background(), "GET /page/7")
	if err := b.Set(ctx, "secret-id", []byte("secret-value"), []string{"secret-tag"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, "secret-id"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, "missing"); err == nil {
		t.Fatal("Get of a missing id found it")
	}
	request.End()
	if _, err := b.Get(context.Background(), "secret-id"); err != nil { // no trace: no span
		t.Fatal(err)
	}
	var names []string
	for _, sp := range rec.Ended() {
		names = append(names, sp.Name())
		if sp.Name() == "GET /page/7" {
			continue
		}
		if sp.Parent().SpanID() != request.SpanContext().SpanID() {
			t.Errorf("%s is not a child of the request span", sp.Name())
		}
		attrs := map[string]string{}
		for _, a := range sp.Attributes() {
			attrs[string(a.Key)] = a.Value.Emit()
			if v := a.Value.Emit(); strings.Contains(v, "secret") {
				t.Errorf("%s: attribute %s = %q leaks an id, tag or value", sp.Name(), a.Key, v)
			}
		}
		if attrs["db.system.name"] != "redis" || attrs["db.operation.name"] != sp.Name() || attrs["keyvalue.cache.name"] != "spans" {
			t.Errorf("%s: attributes %v", sp.Name(), attrs)
		}
		if sp.Status().Code != 0 {
			t.Errorf("%s: status %v (a miss is not an error)", sp.Name(), sp.Status())
		}
	}
	if got := strings.Join(names, ","); got != "cache.set,cache.get,cache.get,GET /page/7" {
		t.Errorf("spans = %s", got)
	}
}
