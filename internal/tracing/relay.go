package tracing

import (
	"context"
	"math/rand/v2"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
)

// relay is the tracer of a Provider without export: it records nothing and
// only hands the trace on. Each span it starts is a non-recording span with
// a new span id, in its parent's trace with its parent's flags and
// tracestate, or, without a parent, in a new trace whose sampled flag the
// configured sampler decides (as the SDK would for a root).
//
// The SDK cannot do this: its sampler's answer sets both whether a span is
// recorded and its sampled flag, so a span it does not record loses the
// flag, and the next stage would stop sampling a trace its producer
// sampled; and a span it records (the default sampler) costs its
// attributes, events and end, only to be dropped with no exporter (about
// 12% of the worker's CPU per event, issue 22).
//
// The span start options are not read: nothing of them is kept, and
// chatprep does not start new roots (trace.WithNewRoot) under a parent.
type relay struct {
	embedded.Tracer
	root sdktrace.Sampler // decides the sampled flag of a new trace
}

// Start returns ctx with a new non-recording span of ctx's trace (see
// relay).
func (r relay) Start(ctx context.Context, _ string, _ ...trace.SpanStartOption) (context.Context, trace.Span) {
	parent := trace.SpanContextFromContext(ctx)
	cfg := trace.SpanContextConfig{SpanID: newSpanID()}
	if parent.TraceID().IsValid() {
		cfg.TraceID, cfg.TraceFlags, cfg.TraceState = parent.TraceID(), parent.TraceFlags(), parent.TraceState()
	} else {
		cfg.TraceID = newTraceID()
		if res := r.root.ShouldSample(sdktrace.SamplingParameters{ParentContext: ctx, TraceID: cfg.TraceID}); res.Decision == sdktrace.RecordAndSample {
			cfg.TraceFlags = trace.FlagsSampled
		}
	}
	ctx = trace.ContextWithSpanContext(ctx, trace.NewSpanContext(cfg))
	return ctx, trace.SpanFromContext(ctx)
}

// newSpanID is a random span id, never the invalid zero one. math/rand/v2's
// top-level functions are seeded from the system's entropy, safe for
// concurrent use and take no lock.
func newSpanID() trace.SpanID {
	for {
		if v := rand.Uint64(); v != 0 {
			var id trace.SpanID
			putUint64(id[:], v)
			return id
		}
	}
}

// newTraceID is a random trace id, never the invalid zero one.
func newTraceID() trace.TraceID {
	for {
		hi, lo := rand.Uint64(), rand.Uint64()
		if hi|lo != 0 {
			var id trace.TraceID
			putUint64(id[:8], hi)
			putUint64(id[8:], lo)
			return id
		}
	}
}

func putUint64(b []byte, v uint64) {
	for i := range 8 {
		b[i] = byte(v >> (56 - 8*i))
	}
}

// rootSampler is the sampler that decides a new trace's sampled flag for
// name, an OTEL_TRACES_SAMPLER value (lowercase; "" is the SDK's default,
// parentbased_always_on), and arg, the ratio of a traceidratio sampler: for
// a root, a parent-based sampler is its root sampler.
func rootSampler(name string, arg float64) sdktrace.Sampler {
	switch name {
	case "always_off", "parentbased_always_off":
		return sdktrace.NeverSample()
	case "traceidratio", "parentbased_traceidratio":
		return sdktrace.TraceIDRatioBased(arg)
	default:
		return sdktrace.AlwaysSample()
	}
}
