package tracing

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// DefaultServiceName is service.name when OTEL_SERVICE_NAME (or
// OTEL_RESOURCE_ATTRIBUTES) does not say.
const DefaultServiceName = "chatprep"

// ScopeName names chatprep's tracer (the instrumentation scope).
const ScopeName = "github.com/chatprep/chatprep"

// Config configures a Provider.
type Config struct {
	// Export sends spans over OTLP/HTTP; the exporter takes its endpoint
	// and the rest from the SDK's OTEL_EXPORTER_OTLP_* variables itself.
	// False: no exporter and no span recorded; each span is still started
	// with its ids, so the trace is handed on unchanged (see relay).
	Export bool
	// Sampler and SamplerArg are OTEL_TRACES_SAMPLER (lowercase; "" is
	// parentbased_always_on) and OTEL_TRACES_SAMPLER_ARG (the ratio of a
	// traceidratio sampler). With export the SDK reads both itself; without,
	// they decide only the sampled flag of a trace the worker starts: an
	// incoming trace keeps its producer's flag.
	Sampler    string
	SamplerArg float64
	// ServiceVersion is service.version (the worker's version).
	ServiceVersion string
	// InstanceID is service.instance.id (the worker id of the results).
	InstanceID string
	// Logger receives what New itself has to say (an unreadable
	// OTEL_RESOURCE_ATTRIBUTES). The zero Logger discards it.
	Logger zerolog.Logger
}

// Provider is the worker's tracer provider: the SDK's, with a batching
// OTLP/HTTP exporter, when Config.Export; without export, a tracer that
// records nothing and only propagates (relay). Pass its Tracer to what
// makes spans; nothing here is installed as OpenTelemetry's global
// provider.
type Provider struct {
	tp     *sdktrace.TracerProvider // nil without export
	tracer trace.Tracer
	stats  *counts // nil without export
}

// Stats count the spans of an exporting Provider (all zero without
// export). Ended - Exported - Failed spans are still queued or were dropped
// because the queue was full.
type Stats struct {
	Ended    uint64 // sampled spans that ended
	Exported uint64 // spans the endpoint accepted
	Failed   uint64 // spans of exports that failed
}

// New builds the provider from cfg and the SDK's OTEL_* variables. It does
// not connect anywhere: an exporter whose endpoint is down fails its
// exports later (logged), never New.
//
// The SDK reports a failed export or a bad variable only through
// OpenTelemetry's process-wide error handler and logger, which the worker's
// main command points at its logger (logbridge.SetOTel): New sets no
// global.
func New(ctx context.Context, cfg Config) (*Provider, error) {
	if !cfg.Export {
		return &Provider{tracer: relay{root: rootSampler(cfg.Sampler, cfg.SamplerArg)}}, nil
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(DefaultServiceName),
			semconv.ServiceVersion(cfg.ServiceVersion), semconv.ServiceInstanceID(cfg.InstanceID)),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
		resource.WithTelemetrySDK(),
	)
	if err != nil {
		// A malformed OTEL_RESOURCE_ATTRIBUTES: what could be read is kept.
		if !errors.Is(err, resource.ErrPartialResource) {
			return nil, fmt.Errorf("trace resource: %w", err)
		}
		cfg.Logger.Warn().Err(err).Msg("OTEL_RESOURCE_ATTRIBUTES partly unreadable; the rest is used")
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("trace exporter: %w", err)
	}
	p := &Provider{stats: &counts{}}
	// The sampler: OTEL_TRACES_SAMPLER, read by the SDK. The batcher
	// (OTEL_BSP_*) never blocks a span's End.
	p.tp = sdktrace.NewTracerProvider(sdktrace.WithResource(res),
		sdktrace.WithSpanProcessor(endCounter{p.stats}), sdktrace.WithBatcher(countingExporter{exp, p.stats}))
	p.tracer = p.tp.Tracer(ScopeName)
	return p, nil
}

// Tracer is chatprep's tracer.
func (p *Provider) Tracer() trace.Tracer { return p.tracer }

// Shutdown exports the spans still queued and stops the exporter, within
// ctx: what is not sent by ctx's end is lost. It returns an error when any
// span was not exported, over the provider's life (dropped, failed, or cut
// off by ctx). Call it once every span has ended.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p.tp == nil {
		return nil
	}
	err := p.tp.Shutdown(ctx)
	if s := p.Stats(); s.Exported < s.Ended {
		err = errors.Join(err, fmt.Errorf("%d of %d spans not exported", s.Ended-s.Exported, s.Ended))
	}
	if err != nil {
		return fmt.Errorf("flush traces: %w", err)
	}
	return nil
}

// Stats returns the span counters (for /debug/vars).
func (p *Provider) Stats() Stats {
	if p.stats == nil {
		return Stats{}
	}
	return Stats{Ended: p.stats.ended.Load(), Exported: p.stats.exported.Load(), Failed: p.stats.failed.Load()}
}

// counts are an exporting Provider's span counters.
type counts struct{ ended, exported, failed atomic.Uint64 }

// endCounter is a span processor, ahead of the batcher, that counts the
// spans that end.
type endCounter struct{ *counts }

func (endCounter) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (c endCounter) OnEnd(sdktrace.ReadOnlySpan)                   { c.ended.Add(1) }
func (endCounter) Shutdown(context.Context) error                  { return nil }
func (endCounter) ForceFlush(context.Context) error                { return nil }

// countingExporter is the batcher's exporter, counting what it sends.
type countingExporter struct {
	sdktrace.SpanExporter
	*counts
}

func (c countingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := c.SpanExporter.ExportSpans(ctx, spans)
	if err != nil {
		c.failed.Add(uint64(len(spans)))
	} else {
		c.exported.Add(uint64(len(spans)))
	}
	return err
}
