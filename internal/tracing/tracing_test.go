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
	"github.com/chatprep/chatprep/internal/leakcheck"
	"github.com/chatprep/chatprep/internal/logbridge"
	"github.com/chatprep/chatprep/internal/tracing"
)

func TestMain(m *testing.M) {
	// The exporter's HTTP client keeps idle connections to the test servers
	// until their goroutines notice the servers closed.
	leakcheck.Main(m, goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
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

// TestNoExport: without an endpoint nothing is recorded nor exported, and
// spans still have ids to propagate: a new trace is sampled by the default
// sampler.
func TestNoExport(t *testing.T) {
	t.Parallel()
	p, err := tracing.New(context.Background(), tracing.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, span := p.Tracer().Start(context.Background(), "x")
	_, child := p.Tracer().Start(ctx, "y")
	child.End()
	span.End()
	sc, cc := span.SpanContext(), child.SpanContext()
	if !sc.IsValid() || !sc.IsSampled() || span.IsRecording() {
		t.Errorf("span context %v, recording %v: want ids, sampled (the default sampler), not recorded", sc, span.IsRecording())
	}
	if cc.TraceID() != sc.TraceID() || cc.SpanID() == sc.SpanID() || !cc.IsSampled() || child.IsRecording() {
		t.Errorf("child %v of %v: want the same trace, a new span id, sampled, not recorded", cc, sc)
	}
	if err := p.Shutdown(context.Background()); err != nil || p.Stats() != (tracing.Stats{}) {
		t.Errorf("shutdown %v, stats %+v", err, p.Stats())
	}
}

// TestNoExportKeepsTheProducersFlags: without export, whatever the sampler,
// a span of a producer's trace has a new span id and the producer's trace
// id, flags and tracestate; a new trace's sampled flag is the sampler's.
func TestNoExportKeepsTheProducersFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		sampler string
		arg     float64
		root    bool // a new trace is sampled
	}{
		{"", 0, true},
		{"parentbased_always_on", 1, true},
		{"always_on", 1, true},
		{"always_off", 1, false},
		{"parentbased_always_off", 1, false},
		{"traceidratio", 0, false},
		{"parentbased_traceidratio", 1, true},
	} {
		t.Run(cmpOr(tc.sampler, "default"), func(t *testing.T) {
			t.Parallel()
			p, err := tracing.New(context.Background(), tracing.Config{Sampler: tc.sampler, SamplerArg: tc.arg})
			if err != nil {
				t.Fatal(err)
			}
			for _, flags := range []string{"01", "00"} {
				in := &handler.Message{Attributes: map[string]string{"traceparent": "00-" + traceID + "-" + spanID + "-" + flags, "tracestate": "vendor=x"}}
				ctx, span := p.Tracer().Start(tracing.Extract(context.Background(), in), "process in.fifo")
				_, child := p.Tracer().Start(ctx, "store")
				for _, s := range []trace.Span{span, child} {
					sc := s.SpanContext()
					if sc.TraceID().String() != traceID || sc.SpanID().String() == spanID || !sc.SpanID().IsValid() ||
						sc.TraceFlags().String() != flags || sc.TraceState().String() != "vendor=x" || s.IsRecording() {
						t.Errorf("producer flags %s: span %v (flags %s, state %q, recording %v)", flags, sc, sc.TraceFlags(), sc.TraceState(), s.IsRecording())
					}
				}
				if child.SpanContext().SpanID() == span.SpanContext().SpanID() {
					t.Error("a child has its parent's span id")
				}
				out := map[string]string{}
				tracing.Inject(ctx, func(k, v string) { out[k] = v })
				if want := "00-" + traceID + "-" + span.SpanContext().SpanID().String() + "-" + flags; out["traceparent"] != want {
					t.Errorf("injected %q, want %q", out["traceparent"], want)
				}
			}
			_, root := p.Tracer().Start(context.Background(), "process in.fifo")
			if sc := root.SpanContext(); !sc.IsValid() || sc.IsSampled() != tc.root {
				t.Errorf("new trace %v: sampled %v, want %v", sc, sc.IsSampled(), tc.root)
			}
		})
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// BenchmarkEventSpans: what one event's eight spans cost the worker without
// export, with the SDK's default sampler (recorded, then dropped: what the
// worker did before) against the relay (recorded never).
func BenchmarkEventSpans(b *testing.B) {
	in := &handler.Message{Attributes: map[string]string{"traceparent": parent}}
	sdk := sdktrace.NewTracerProvider()
	defer sdk.Shutdown(context.Background()) //nolint:errcheck // nothing to flush
	relay, err := tracing.New(context.Background(), tracing.Config{})
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		tracer trace.Tracer
	}{{"sdk_default_sampler", sdk.Tracer("bench")}, {"relay", relay.Tracer()}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ctx, span := tc.tracer.Start(tracing.Extract(context.Background(), in), "process in.fifo",
					trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(tracing.ReceiveCount.Int(1), tracing.QueueWaitMS.Float64(1.5)))
				span.SetAttributes(tracing.EventID.String("e-1"), tracing.ChatID.String("c-1"))
				for _, task := range []string{"user_history", "assistant_history", "relevance_search", "muted_status", "store", "route", "send"} {
					_, s := tc.tracer.Start(ctx, task)
					s.End()
				}
				span.SetAttributes(tracing.Route.String("general"), tracing.Muted.Bool(false), tracing.Degraded.Int(0))
				span.End()
			}
		})
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
