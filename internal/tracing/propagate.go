package tracing

import (
	"context"
	"strings"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/chatprep/chatprep/internal/handler"
)

// Message attributes that carry a trace.
const (
	// TraceParent is the W3C Trace Context traceparent message attribute
	// (type String), read from input messages and written on results.
	TraceParent = "traceparent"
	// TraceState is W3C's tracestate, kept along with it.
	TraceState = "tracestate"
	// AWSTraceHeader is the SQS system attribute holding an X-Ray trace
	// header ("Root=1-…;Parent=…;Sampled=1"), read when there is no
	// traceparent.
	AWSTraceHeader = "AWSTraceHeader"
)

// w3c is the W3C Trace Context codec (stateless).
var w3c = propagation.TraceContext{}

// Extract returns ctx carrying the remote span of m's producer, from its
// traceparent (and tracestate) attributes or else its AWSTraceHeader system
// attribute; ctx as it is when neither holds a valid one (the event span is
// then the root of a new trace).
func Extract(ctx context.Context, m *handler.Message) context.Context {
	if m.Attributes[TraceParent] != "" {
		if c := w3c.Extract(ctx, propagation.MapCarrier(m.Attributes)); trace.SpanContextFromContext(c).IsValid() {
			return c
		}
	}
	if sc, ok := parseXRay(m.SystemAttributes[AWSTraceHeader]); ok {
		return trace.ContextWithRemoteSpanContext(ctx, sc)
	}
	return ctx
}

// Inject calls set with the traceparent of ctx's span, and its tracestate
// when not empty; with neither when ctx has no valid span.
func Inject(ctx context.Context, set func(name, value string)) {
	w3c.Inject(ctx, setter(set))
}

// setter adapts a function to propagation.TextMapCarrier, for Inject only.
type setter func(name, value string)

func (setter) Get(string) string        { return "" }
func (s setter) Set(name, value string) { s(name, value) }
func (setter) Keys() []string           { return nil }

// parseXRay reads an X-Ray trace header: Root=1-<8 hex>-<24 hex> and
// Parent=<16 hex> are required, Sampled=1 sets the sampled flag; other
// fields (Lineage, Self, …) are ignored.
func parseXRay(h string) (trace.SpanContext, bool) {
	var cfg trace.SpanContextConfig
	var root, parent bool
	for field := range strings.SplitSeq(h, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(field), "=")
		switch k {
		case "Root":
			// 1-5759e988-bd862e3fe1be46a994272793: version, epoch, unique.
			ver, rest, _ := strings.Cut(v, "-")
			epoch, unique, _ := strings.Cut(rest, "-")
			if ver != "1" || len(epoch) != 8 || len(unique) != 24 {
				return trace.SpanContext{}, false
			}
			id, err := trace.TraceIDFromHex(epoch + unique)
			if err != nil {
				return trace.SpanContext{}, false
			}
			cfg.TraceID, root = id, true
		case "Parent":
			id, err := trace.SpanIDFromHex(v)
			if err != nil {
				return trace.SpanContext{}, false
			}
			cfg.SpanID, parent = id, true
		case "Sampled":
			if v == "1" {
				cfg.TraceFlags = trace.FlagsSampled
			}
		}
	}
	cfg.Remote = true
	sc := trace.NewSpanContext(cfg)
	return sc, root && parent && sc.IsValid()
}
