package publish_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/chatprep/chatprep/internal/devstack/kumotest"
	"github.com/chatprep/chatprep/internal/publish"
)

// TestTraceParentNamesTheCallersSpan: the result's traceparent (and
// tracestate) name the caller's span, not the publisher's own span, which
// is the caller's child and lasts until SQS accepted the result; a result
// SQS cannot take makes an error span.
func TestTraceParentNamesTheCallersSpan(t *testing.T) {
	t.Parallel()
	sqsc := client(kumotest.URL())
	url := kumotest.Queue(t, sqsc, false)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background()) //nolint:errcheck // nothing to flush
	p := newPublisher(t, sqsc, publish.Config{QueueURL: url, Tracer: tp.Tracer("test")})

	state, err := trace.ParseTraceState("vendor=abc")
	if err != nil {
		t.Fatal(err)
	}
	caller, event := tp.Tracer("test").Start(context.Background(), "event")
	caller = trace.ContextWithSpanContext(caller, event.SpanContext().WithTraceState(state))
	if err := p.Publish(caller, result("c1", 1)); err != nil {
		t.Fatal(err)
	}
	big := result("c1", 2)
	big.Worker = strings.Repeat("x", publish.MaxBatchBytes)
	if err := p.Publish(caller, big); err == nil {
		t.Fatal("a result over the size limit must fail")
	}
	event.End()

	m := receiveAll(t, sqsc, url, 1)[0]
	sc := event.SpanContext()
	want := "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-01"
	if got := aws.ToString(m.MessageAttributes["traceparent"].StringValue); got != want {
		t.Errorf("traceparent %q, want the caller's %q", got, want)
	}
	if got := aws.ToString(m.MessageAttributes["tracestate"].StringValue); got != "vendor=abc" {
		t.Errorf("tracestate %q", got)
	}
	var sends []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() != "event" {
			sends = append(sends, s)
		}
	}
	if len(sends) != 2 {
		t.Fatalf("%d publish spans, want 2", len(sends))
	}
	for i, s := range sends {
		if !strings.HasPrefix(s.Name(), "send ") || s.SpanKind() != trace.SpanKindProducer || s.Parent().SpanID() != sc.SpanID() {
			t.Errorf("publish span %q kind %v parent %v: want send <queue>, a producer, child of the caller", s.Name(), s.SpanKind(), s.Parent().SpanID())
		}
		if failed := s.Status().Code == codes.Error; failed != (i == 1) {
			t.Errorf("publish span %d status %+v", i, s.Status())
		}
	}
}
