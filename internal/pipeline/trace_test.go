package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/chatprep/chatprep/internal/event"
	"github.com/chatprep/chatprep/internal/handler"
	"github.com/chatprep/chatprep/internal/pipeline"
	"github.com/chatprep/chatprep/internal/tracing"
)

// A producer's span, as a traceparent.
const (
	producerTrace  = "4bf92f3577b34da6a3ce929d0e0e4736"
	producerSpan   = "00f067aa0ba902b7"
	producerParent = "00-" + producerTrace + "-" + producerSpan + "-01"
	secretText     = "the customer's words, never in a span"
)

// traced is a bundle whose chain makes spans into a recorder.
func traced(t *testing.T, o options) (bundle, *tracetest.SpanRecorder) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	o.tracer = tp.Tracer("test")
	return setup(t, o), rec
}

func (b bundle) handleTraced(t *testing.T, body string) error {
	t.Helper()
	return b.chain.Handle(context.Background(), &handler.Message{ID: "m-1", Body: body, ReceiveCount: 1,
		SentAt: time.Now().Add(-40 * time.Millisecond), ReceivedAt: time.Now(),
		Attributes: map[string]string{tracing.TraceParent: producerParent}})
}

// spansByName returns the ended spans by name; each name must be there once.
func spansByName(t *testing.T, rec *tracetest.SpanRecorder) map[string]sdktrace.ReadOnlySpan {
	t.Helper()
	out := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		if _, dup := out[s.Name()]; dup {
			t.Errorf("two spans named %q", s.Name())
		}
		out[s.Name()] = s
	}
	return out
}

func attr(s sdktrace.ReadOnlySpan, key attribute.Key) attribute.Value {
	for _, kv := range s.Attributes() {
		if kv.Key == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

// TestSpans: the event span continues the producer's trace and holds the
// event's attributes; each task and the route detection is a child span of
// it; no span holds the text; the log line has the trace id.
func TestSpans(t *testing.T) {
	t.Parallel()
	b, rec := traced(t, options{})
	b.store.RecentFunc = func(context.Context, string, time.Time, int) ([]event.ContextMessage, error) {
		return []event.ContextMessage{msg("h-user", event.RoleUser, 1), msg("h-assistant", event.RoleAssistant, 2)}, nil
	}
	if err := b.handleTraced(t, userEvent("e-1", "c-1", secretText+": where is order S00042?")); err != nil {
		t.Fatal(err)
	}
	spans := spansByName(t, rec)
	ev, ok := spans["process in.fifo"]
	if !ok {
		t.Fatalf("no event span among %v", spans)
	}
	if ev.SpanContext().TraceID().String() != producerTrace || ev.Parent().SpanID().String() != producerSpan || !ev.Parent().IsRemote() {
		t.Errorf("event span %v, parent %v: want a child of the producer's span", ev.SpanContext(), ev.Parent())
	}
	for key, want := range map[attribute.Key]any{
		tracing.EventID: "e-1", tracing.ChatID: "c-1", tracing.EventType: "message", tracing.Route: "odoo_erp",
		tracing.Muted: false, tracing.Degraded: int64(0), tracing.ReceiveCount: int64(1),
	} {
		if got := attr(ev, key).AsInterface(); got != want {
			t.Errorf("event span %s = %v, want %v", key, got, want)
		}
	}
	if w := attr(ev, tracing.QueueWaitMS).AsFloat64(); w < 40 {
		t.Errorf("queue_wait_ms %v, want the 40 ms the message waited", w)
	}
	for _, name := range []string{pipeline.TaskMessageHistory, pipeline.TaskRelevanceSearch, pipeline.TaskReferences,
		pipeline.TaskMutedStatus, pipeline.TaskStore, pipeline.TaskRoute} {
		s, ok := spans[name]
		switch {
		case !ok:
			t.Errorf("no %s span", name)
		case s.Parent().SpanID() != ev.SpanContext().SpanID():
			t.Errorf("%s span's parent %v, want the event span", name, s.Parent().SpanID())
		case s.Status().Code != codes.Unset:
			t.Errorf("%s span status %v", name, s.Status())
		case s.EndTime().After(ev.EndTime()) || s.StartTime().Before(ev.StartTime()):
			t.Errorf("%s span %v-%v outside the event's %v-%v", name, s.StartTime(), s.EndTime(), ev.StartTime(), ev.EndTime())
		}
	}
	if len(spans) != 7 {
		t.Errorf("%d spans, want the event and its 6 children", len(spans))
	}
	for _, s := range rec.Ended() {
		if text := fmt.Sprint(s.Attributes(), s.Events(), s.Status()); strings.Contains(text, "customer") {
			t.Errorf("span %s holds the text: %s", s.Name(), text)
		}
	}
	if line := b.logs.lines(t)[0]; line["trace_id"] != producerTrace {
		t.Errorf("log line trace_id %v, want %s", line["trace_id"], producerTrace)
	}
}

// TestSpansOfDegradedTasks: a failed or timed-out task's span has status
// error with the result's reason for it.
func TestSpansOfDegradedTasks(t *testing.T) {
	t.Parallel()
	// In virtual time: only the task that waits for its context times out,
	// however late a loaded machine runs the others.
	synctest.Test(t, func(t *testing.T) {
		b, rec := traced(t, options{taskTimeout: 50 * time.Millisecond})
		b.store.RecentFunc = func(ctx context.Context, _ string, _ time.Time, _ int) ([]event.ContextMessage, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		b.store.RelevantFunc = func(context.Context, string, string, time.Time, int) ([]event.ContextMessage, error) {
			return nil, errors.New("weaviate unavailable (HTTP 503)")
		}
		if err := b.handleTraced(t, userEvent("e-1", "c-1", "hello")); err != nil {
			t.Fatal(err)
		}
		res := b.onlyResult(t)
		spans := spansByName(t, rec)
		for _, d := range res.Degraded {
			if s := spans[d.Task]; s == nil || s.Status().Code != codes.Error || s.Status().Description != d.Error {
				t.Errorf("degraded %s (%s): span status %+v", d.Task, d.Error, spans[d.Task].Status())
			}
		}
		if len(res.Degraded) != 2 || attr(spans["process in.fifo"], tracing.Degraded).AsInt64() != 2 {
			t.Errorf("degraded %+v; event span degraded=%v", res.Degraded, attr(spans["process in.fifo"], tracing.Degraded))
		}
		for _, name := range []string{pipeline.TaskReferences, pipeline.TaskMutedStatus, pipeline.TaskStore} {
			if s := spans[name]; s.Status().Code != codes.Unset {
				t.Errorf("%s span status %+v, want unset", name, s.Status())
			}
		}
	})
}

// TestSpansOfMutedChat: a muted chat's retrieval spans are kept, marked
// cancelled, and are no errors; the event span says muted.
func TestSpansOfMutedChat(t *testing.T) {
	t.Parallel()
	b, rec := traced(t, options{})
	block := func(ctx context.Context) ([]event.ContextMessage, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	b.store.RecentFunc = func(ctx context.Context, _ string, _ time.Time, _ int) ([]event.ContextMessage, error) {
		return block(ctx)
	}
	b.store.ReferencesFunc = func(ctx context.Context, _ string, _ time.Time, _ int) ([]event.Reference, error) {
		_, err := block(ctx)
		return nil, err
	}
	b.store.RelevantFunc = func(ctx context.Context, _, _ string, _ time.Time, _ int) ([]event.ContextMessage, error) {
		return block(ctx)
	}
	b.store.MutedFunc = func(context.Context, string, time.Time) (bool, error) { return true, nil }
	if err := b.handleTraced(t, userEvent("e-1", "c-1", "hello")); err != nil {
		t.Fatal(err)
	}
	spans := spansByName(t, rec)
	for _, name := range []string{pipeline.TaskMessageHistory, pipeline.TaskRelevanceSearch, pipeline.TaskReferences} {
		s := spans[name]
		if s == nil || !attr(s, tracing.Cancelled).AsBool() || s.Status().Code != codes.Unset {
			t.Errorf("%s span of a muted chat: %+v", name, s)
		}
	}
	if !attr(spans["process in.fifo"], tracing.Muted).AsBool() {
		t.Error("the event span must say muted=true")
	}
}

// TestSpanOfAFailedStore: the store span and the event span carry the
// error the message is left for redelivery with.
func TestSpanOfAFailedStore(t *testing.T) {
	t.Parallel()
	b, rec := traced(t, options{})
	b.store.PutFunc = func(context.Context, event.Event) error { return errors.New("weaviate unavailable (HTTP 503)") }
	err := b.handleTraced(t, userEvent("e-1", "c-1", "hello"))
	if err == nil {
		t.Fatal("a failed store must fail the message")
	}
	spans := spansByName(t, rec)
	for _, name := range []string{pipeline.TaskStore, "process in.fifo"} {
		if s := spans[name]; s == nil || s.Status().Code != codes.Error || s.Status().Description != err.Error() {
			t.Errorf("%s span status %+v, want error %q", name, spans[name].Status(), err)
		}
	}
}
