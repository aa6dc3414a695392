package logbridge_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/chatprep/chatprep/internal/logbridge"
)

// TestOTel (not parallel: OpenTelemetry's hooks are process-global, and
// it sets the SDK's own variable): the SDK's errors and warnings, from its
// real code paths, are the logger's warn lines; its info lines ("provider
// created") are dropped; its key-value pairs (here a malformed header
// holding a key) never appear.
func TestOTel(t *testing.T) {
	var b bytes.Buffer
	logbridge.SetOTel(logger(&b, zerolog.DebugLevel))
	otel.Handle(errors.New("traces export: connection refused"))
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key-secret") // no '='
	if _, err := otlptracehttp.New(context.Background()); err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithRawSpanLimits(sdktrace.SpanLimits{AttributeCountLimit: 1, AttributeValueLengthLimit: -1, EventCountLimit: -1, LinkCountLimit: -1, AttributePerEventCountLimit: -1, AttributePerLinkCountLimit: -1}))
	_, span := tp.Tracer("x").Start(context.Background(), "s")
	span.SetAttributes(attribute.Int("a", 1), attribute.Int("b", 2))
	span.End()
	got := lines(t, &b)
	want := []line{
		{"warn", "OpenTelemetry SDK error; traces may be lost, events are not", "x"},
		{"warn", "OpenTelemetry SDK: parse headers", "x"},
		{"warn", "OpenTelemetry SDK: limit reached: dropping trace Span attributes", "x"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if strings.Contains(b.String(), "secret") {
		t.Errorf("a key-value pair was logged: %s", b.String())
	}
}
