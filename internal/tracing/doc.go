// Package tracing is the worker's OpenTelemetry tracing (CONTRACT.md,
// "Tracing"): the tracer provider, configured by the SDK from its own
// OTEL_* variables; the trace context read from an input message and
// written onto a result; and the middleware that gives each message its
// event span.
//
// # Spans
//
// One trace per event, continuing its producer's (Extract): the message's
// traceparent and tracestate attributes (W3C Trace Context), or else its
// AWSTraceHeader system attribute (X-Ray, set by Lambda and SNS producers),
// or a new trace. In it:
//
//	process <input queue>      the event span (Middleware), kind consumer,
//	                           from the message's receipt to its outcome;
//	                           queue_wait_ms (sent to received),
//	                           receive_count, messaging.*; the pipeline adds
//	                           event.id, chat.id, event.type, and for a user
//	                           message route, muted and degraded (the number
//	                           of degraded tasks). The children carry no
//	                           attributes of their own beyond their status:
//	                           each costs CPU per exported span, and the
//	                           event span has the outcome
//	  message_history, relevance_search, references, muted_status, store
//	                           one per preprocessing task, from its
//	                           submission to the pool to its answer (the
//	                           result's timings_ms count the same way)
//	  route                    route detection (rules, microseconds)
//	  send <response queue>    the publish, kind producer, until SQS
//	                           accepted the result (publish.Publisher)
//
// Assistant messages have one store span, mute and unmute one set_muted
// span. A retry in place (the Hold middleware) adds another set of task
// spans under the same event span.
//
// A task that failed or timed out has status error with the same reason as
// in the result's degraded; a failed event span carries the handler's
// error. A muted chat's history and relevance tasks are cancelled as soon
// as the muted state is known: their spans are kept (the work was started
// and took pool time), end when the cancellation took effect, have
// cancelled=true and no error status. A task that had already answered
// when the muted state came ends normally. No span or attribute holds the
// message text, nor any part of it.
//
// # Propagation
//
// The result message carries a traceparent attribute (and tracestate when
// the producer sent one) naming the event span, not the publish span: the
// next stage's spans are siblings of chatprep's tasks, under the event. The
// publisher writes it from its caller's context (Inject) before it starts
// its own span. A sampled-out event (see the sampler) still propagates its
// ids, with the sampled flag off.
//
// Without export (no endpoint) nothing is recorded: the tracer is a relay
// that gives each span a new span id in its parent's trace, with the
// parent's flags and tracestate, and nothing else (no attributes, times or
// status are kept). So the log line's trace_id and the result's
// traceparent are as with export, and a producer's sampled flag is never
// cleared (the SDK cannot do that: a span its sampler does not record
// loses the flag). A new trace's flag is the configured sampler's.
//
// # Configuration
//
// The SDK reads its own variables from the process environment:
// OTEL_SERVICE_NAME (default here: chatprep) and OTEL_RESOURCE_ATTRIBUTES;
// OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG (default
// parentbased_always_on: every event is traced unless its producer
// sampled it out); OTEL_BSP_* (the batch span processor: queue, batch size,
// schedule); OTEL_SPAN_*_LIMIT; and the exporter's
// OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, _HEADERS, _TIMEOUT, _COMPRESSION,
// _CERTIFICATE, _CLIENT_KEY, _CLIENT_CERTIFICATE, _INSECURE and _PROTOCOL
// (http/protobuf or http/json; this worker has no gRPC exporter).
// internal/config reads and checks the few that decide whether to export
// and that would otherwise only be a log line when wrong; with no endpoint
// there is no exporter at all.
//
// Spans are exported in batches by the SDK's batch span processor on its
// own goroutine: a span ending never waits for the exporter. An exporter
// that is down or slow costs spans (the processor's queue, 2048 spans by
// default, drops what does not fit), never events. Provider.Shutdown sends
// what is queued within the shutdown's Flush stage.
package tracing
