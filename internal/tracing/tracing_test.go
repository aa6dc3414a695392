package tracing_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/chatprep/chatprep/internal/handler"
	"github.com/chatprep/chatprep/internal/logbridge"
	"github.com/chatprep/chatprep/internal/tracing"
)

func TestMain(m *testing.M) {
	// The exporter's HTTP client keeps idle connections to the test servers
	// until their goroutines notice the servers closed.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"))
}

const (
	traceID  = "4bf92f3577b34da6a3ce929d0e0e4736"
	spanID   = "00f067aa0ba902b7"
	parent   = "00-" + traceID + "-" + spanID + "-01"
	xrayRoot = "1-4bf92f35-77b34da6a3ce929d0e0e4736"
)

// TestExtract: traceparent (with tracestate) first, the X-Ray header when
// there is no valid traceparent, else nothing.
func TestExtract(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name          string
		attrs, system map[string]string
		trace, span   string // "" when no parent
		sampled       bool
		state         string
	}{
		{"traceparent", map[string]string{"traceparent": parent, "tracestate": "vendor=x"}, nil, traceID, spanID, true, "vendor=x"},
		{"traceparent wins", map[string]string{"traceparent": parent}, map[string]string{"AWSTraceHeader": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"}, traceID, spanID, true, ""},
		{"x-ray", nil, map[string]string{"AWSTraceHeader": "Root=" + xrayRoot + ";Parent=" + spanID + ";Sampled=1;Lineage=a87bd80c:1|68fd508a:5"}, traceID, spanID, true, ""},
		{"x-ray not sampled", nil, map[string]string{"AWSTraceHeader": "Root=" + xrayRoot + "; Parent=" + spanID + "; Sampled=0"}, traceID, spanID, false, ""},
		{"bad traceparent, x-ray", map[string]string{"traceparent": "00-zz-yy-01"}, map[string]string{"AWSTraceHeader": "Root=" + xrayRoot + ";Parent=" + spanID}, traceID, spanID, false, ""},
		{"x-ray without parent", nil, map[string]string{"AWSTraceHeader": "Root=" + xrayRoot}, "", "", false, ""},
		{"x-ray bad root", nil, map[string]string{"AWSTraceHeader": "Root=2-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=" + spanID}, "", "", false, ""},
		{"nothing", map[string]string{"event_id": "e-1"}, nil, "", "", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sc := trace.SpanContextFromContext(tracing.Extract(context.Background(), &handler.Message{Attributes: tc.attrs, SystemAttributes: tc.system}))
			if tc.trace == "" {
				if sc.IsValid() {
					t.Errorf("extracted %v, want nothing", sc)
				}
				return
			}
			if sc.TraceID().String() != tc.trace || sc.SpanID().String() != tc.span || sc.IsSampled() != tc.sampled ||
				!sc.IsRemote() || sc.TraceState().String() != tc.state {
				t.Errorf("extracted %v (sampled %v, state %q)", sc, sc.IsSampled(), sc.TraceState().String())
			}
		})
	}
}

// TestInject writes the W3C fields of ctx's span, nothing without one.
func TestInject(t *testing.T) {
	t.Parallel()
	got := map[string]string{}
	tracing.Inject(context.Background(), func(k, v string) { got[k] = v })
	if len(got) != 0 {
		t.Errorf("without a span: %v", got)
	}
	ctx := tracing.Extract(context.Background(), &handler.Message{Attributes: map[string]string{"traceparent": parent, "tracestate": "a=1"}})
	tracing.Inject(ctx, func(k, v string) { got[k] = v })
	if got["traceparent"] != parent || got["tracestate"] != "a=1" || len(got) != 2 {
		t.Errorf("injected %v", got)
	}
}

// FuzzExtract: any attribute values give a valid span context or none, and
// never a panic.
func FuzzExtract(f *testing.F) {
	f.Add(parent, "Root="+xrayRoot+";Parent="+spanID+";Sampled=1")
	f.Add("", "Root=1-;Parent=;Sampled")
	f.Add("00-"+traceID+"-0000000000000000-01", ";;=;Root==")
	f.Fuzz(func(t *testing.T, tp, xray string) {
		sc := trace.SpanContextFromContext(tracing.Extract(context.Background(), &handler.Message{
			Attributes: map[string]string{"traceparent": tp}, SystemAttributes: map[string]string{"AWSTraceHeader": xray}}))
		if sc.IsValid() != (sc.TraceID().IsValid() && sc.SpanID().IsValid()) {
			t.Errorf("half a span context: %v", sc)
		}
	})
}

// TestMiddleware: the event span starts at the receipt, is the root of a
// new trace without a producer, and carries the handler's error.
func TestMiddleware(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background()) //nolint:errcheck // nothing to flush
	var inside trace.SpanContext
	h := tracing.Middleware(tp.Tracer("test"), "in.fifo")(handler.HandlerFunc(func(ctx context.Context, _ *handler.Message) error {
		inside = trace.SpanContextFromContext(ctx)
		return errors.New("store message e-1 of chat c-1: weaviate unavailable")
	}))
	received := time.Now().Add(-time.Second)
	err := h.Handle(context.Background(), &handler.Message{ID: "m-1", ReceiveCount: 2, ReceivedAt: received, SentAt: received.Add(-250 * time.Millisecond)})
	if err == nil {
		t.Fatal("the handler's error must come back")
	}
	spans := rec.Ended()
	if len(spans) != 1 {
		t.Fatalf("%d spans", len(spans))
	}
	s := spans[0]
	if s.Name() != "process in.fifo" || s.SpanKind() != trace.SpanKindConsumer || s.Parent().IsValid() ||
		!s.StartTime().Equal(received) || !s.SpanContext().Equal(inside) {
		t.Errorf("span %s kind %v parent %v start %v (want %v), handler saw %v", s.Name(), s.SpanKind(), s.Parent(), s.StartTime(), received, inside)
	}
	if s.Status().Code != codes.Error || s.Status().Description != err.Error() {
		t.Errorf("status %+v", s.Status())
	}
	attrs := map[string]any{}
	for _, kv := range s.Attributes() {
		attrs[string(kv.Key)] = kv.Value.AsInterface()
	}
	if attrs["queue_wait_ms"] != 250.0 || attrs["receive_count"] != int64(2) || attrs["messaging.message.id"] != "m-1" ||
		attrs["messaging.destination.name"] != "in.fifo" || attrs["messaging.system"] != "aws_sqs" {
		t.Errorf("attributes %v", attrs)
	}
}

// logs is a zerolog writer safe for concurrent use.
type logs struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestNoExport: without an endpoint nothing is exported, and spans still
// have ids to propagate.
func TestNoExport(t *testing.T) {
	t.Parallel()
	p, err := tracing.New(context.Background(), tracing.Config{})
	if err != nil {
		t.Fatal(err)
	}
	_, span := p.Tracer().Start(context.Background(), "x")
	span.End()
	if !span.SpanContext().IsValid() || !span.SpanContext().IsSampled() {
		t.Errorf("span context %v: want ids, sampled (the default sampler)", span.SpanContext())
	}
	if err := p.Shutdown(context.Background()); err != nil || p.Stats() != (tracing.Stats{}) {
		t.Errorf("shutdown %v, stats %+v", err, p.Stats())
	}
}

// TestExport (not parallel: it sets the SDK's own variables): spans go in
// batches to OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces with the headers of
// OTEL_EXPORTER_OTLP_HEADERS, and Shutdown sends what is queued; the
// service name is chatprep unless OTEL_SERVICE_NAME says.
func TestExport(t *testing.T) {
	var requests atomic.Int64
	var body atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.URL.Path != "/base/v1/traces" || r.Header.Get("X-Api-Key") != "secret" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			t.Errorf("export %s %s, key %q, type %q", r.Method, r.URL.Path, r.Header.Get("X-Api-Key"), r.Header.Get("Content-Type"))
		}
		body.Store(string(b))
		requests.Add(1)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer srv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL+"/base")
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=secret")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "60000") // only Shutdown sends
	p, err := tracing.New(context.Background(), tracing.Config{Export: true, ServiceVersion: "v1", InstanceID: "host/1a2b"})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		_, span := p.Tracer().Start(context.Background(), "event")
		span.End()
	}
	if requests.Load() != 0 {
		t.Error("spans were sent one by one, not batched")
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if requests.Load() != 1 || p.Stats() != (tracing.Stats{Ended: 3, Exported: 3}) {
		t.Errorf("%d requests, stats %+v; want 1 with the 3 spans", requests.Load(), p.Stats())
	}
	b, _ := body.Load().(string)
	for _, want := range []string{"chatprep", "host/1a2b", "v1", "event"} {
		if !strings.Contains(b, want) {
			t.Errorf("export body lacks %q", want)
		}
	}
}

// TestExporterDown (not parallel: it sets the SDK's own variables and
// OpenTelemetry's log hooks): with the endpoint refusing connections, spans
// end at once, Shutdown returns at its deadline, and the SDK's errors are
// JSON lines of the logger the hooks point at.
func TestExporterDown(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // refused from now on
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", url+"/v1/traces")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "10")
	t.Setenv("OTEL_BSP_MAX_QUEUE_SIZE", "16")
	// An export in flight is not cut short by Shutdown's deadline: keep it
	// short so that its goroutine is gone before the test ends.
	t.Setenv("OTEL_BSP_EXPORT_TIMEOUT", "300")
	t.Setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "300")
	var out logs
	logbridge.SetOTel(zerolog.New(&out)) // as worker run does
	p, err := tracing.New(context.Background(), tracing.Config{Export: true})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for range 1000 {
		_, span := p.Tracer().Start(context.Background(), "event")
		span.End()
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("1000 spans took %v with the exporter down", d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	err = p.Shutdown(ctx)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Shutdown returned after %v, its deadline was 500ms", d)
	}
	if err == nil || !strings.Contains(err.Error(), "1000 of 1000 spans not exported") {
		t.Errorf("Shutdown with the exporter down: %v, want the spans lost", err)
	}
	if s := p.Stats(); s.Ended != 1000 || s.Exported != 0 {
		t.Errorf("stats %+v", s)
	}
	// The SDK reported the failure through the logger, as JSON.
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), `"level":"warn"`) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if !strings.HasPrefix(line, "{") {
			t.Errorf("not a JSON line: %s", line)
		}
	}
	if !strings.Contains(out.String(), "OpenTelemetry SDK") {
		t.Errorf("no SDK error in the log: %q", out.String())
	}
}
