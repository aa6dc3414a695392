package devstack_test

import (
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/chatprep/chatprep/internal/devstack"
)

// TestJaeger starts Jaeger on its own ports, sends it a trace over
// OTLP/HTTP, reads it back through the query API, draws it, and checks
// Stop leaves no process and no directory; Halt and Restart keep the ports.
func TestJaeger(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	bin, err := devstack.EnsureJaegerBinary(ctx, binDir(t), os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	j, err := devstack.StartJaeger(ctx, devstack.JaegerOptions{Binary: bin})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Stop() //nolint:errcheck // checked below; this is for a failing test
	if _, err := j.Trace(ctx, "4bf92f3577b34da6a3ce929d0e0e4736"); !errors.Is(err, devstack.ErrNoTrace) {
		t.Errorf("unknown trace: %v, want ErrNoTrace", err)
	}

	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(j.OTLPURL+"/v1/traces"))
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "test"))))
	tr := tp.Tracer("test")
	// The spans' times are given, not slept: the 1ms queue wait draws ░
	// only when the trace is 40 columns × 1ms or less, and a 5ms sleep on a
	// loaded machine can last longer than that. 7ms is longer than the
	// queue wait (which then fits on the time line) and short enough.
	t0 := time.Now()
	at := func(ms int) trace.SpanEventOption {
		return trace.WithTimestamp(t0.Add(time.Duration(ms) * time.Millisecond))
	}
	pctx, parent := tr.Start(ctx, "process in.fifo", at(0))
	parent.SetAttributes(attribute.String("event.id", "e-1"), attribute.Float64("queue_wait_ms", 1))
	_, child := tr.Start(pctx, "muted_status", at(1))
	child.SetStatus(codes.Error, "timeout after 2s")
	child.End(at(6))
	parent.End(at(7))
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	id := parent.SpanContext().TraceID().String()
	var got *devstack.TraceData
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		got, err = j.Trace(ctx, "00-"+id+"-"+parent.SpanContext().SpanID().String()+"-01")
		if err == nil && len(got.Spans) == 2 || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || len(got.Spans) != 2 {
		t.Fatalf("trace %s: %v, %+v", id, err, got)
	}
	var picture strings.Builder
	got.Waterfall(&picture, 40)
	t.Logf("\n%s", picture.String())
	for _, s := range got.Spans {
		switch s.Operation {
		case "process in.fifo":
			if s.ParentID != "" || s.Service != "test" || s.Tags["event.id"] != "e-1" {
				t.Errorf("event span %+v", s)
			}
		case "muted_status":
			if desc, failed := s.Error(); s.ParentID != parent.SpanContext().SpanID().String() || !failed || desc != "timeout after 2s" {
				t.Errorf("child span %+v", s)
			}
		default:
			t.Errorf("span %q", s.Operation)
		}
	}
	for _, want := range []string{"trace " + id, "process in.fifo", "  muted_status", "ERROR timeout after 2s", "queue wait 1.00 ms", "█"} {
		if !strings.Contains(picture.String(), want) {
			t.Errorf("waterfall lacks %q", want)
		}
	}
	// 1ms of queue wait on a 7ms time line of 40 columns.
	if n := strings.Count(picture.String(), "░"); n != 5 {
		t.Errorf("the queue wait is %d ░, want 5", n)
	}

	j.Halt()
	if _, err := j.Trace(ctx, id); err == nil {
		t.Error("a halted Jaeger answers")
	}
	if err := j.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Trace(ctx, id); !errors.Is(err, devstack.ErrNoTrace) {
		t.Errorf("after a restart (memory storage): %v, want ErrNoTrace", err)
	}
	pid := j.Pid()
	if err := j.Stop(); err != nil {
		t.Fatal(err)
	}
	if syscall.Kill(pid, 0) == nil {
		t.Errorf("jaeger pid %d still runs after Stop", pid)
	}
}
