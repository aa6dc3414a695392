package tracing

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/chatprep/chatprep/internal/handler"
)

// Span attributes of chatprep's own (the contract's chat.id, event.id,
// route, muted, degraded, and a few more); never the message text.
const (
	ChatID    = attribute.Key("chat.id")
	EventID   = attribute.Key("event.id")
	EventType = attribute.Key("event.type") // message, mute, unmute
	Route     = attribute.Key("route")
	Muted     = attribute.Key("muted")
	// Degraded is the number of the result's degraded tasks (as on the log
	// line); each degraded task's own span has status error.
	Degraded = attribute.Key("degraded")
	// Cancelled marks a task span whose work was cancelled because it was
	// no longer needed (a muted chat's retrieval): not an error.
	Cancelled = attribute.Key("cancelled")
	// QueueWaitMS is the time the message waited in the queue, sent to
	// received, in milliseconds (the queue_wait_duration metric).
	QueueWaitMS  = attribute.Key("queue_wait_ms")
	ReceiveCount = attribute.Key("receive_count")
)

// Middleware gives every message its event span, "process <queue>": a child
// of its producer's span (Extract) or the root of a new trace, from the
// message's receipt until the handler below returns, with status error and
// the error's text when the handler failed. The handlers below find it in
// their context (trace.SpanFromContext) and add their attributes and
// children to it. Compose it outermost, so that the Log middleware can put
// the trace id on the event's line and the span sees every outcome.
func Middleware(tracer trace.Tracer, queue string) handler.Middleware {
	name := "process " + queue
	return func(next handler.Handler) handler.Handler {
		return handler.HandlerFunc(func(ctx context.Context, m *handler.Message) error {
			start := m.ReceivedAt
			if start.IsZero() {
				start = time.Now()
			}
			ctx, span := tracer.Start(Extract(ctx, m), name,
				trace.WithSpanKind(trace.SpanKindConsumer), trace.WithTimestamp(start),
				trace.WithAttributes(
					semconv.MessagingSystemAWSSQS, semconv.MessagingDestinationName(queue), semconv.MessagingMessageID(m.ID),
					ReceiveCount.Int(m.ReceiveCount), QueueWaitMS.Float64(ms(m.QueueWait())),
				))
			err := next.Handle(ctx, m)
			if err != nil {
				span.SetStatus(codes.Error, err.Error())
			}
			span.End()
			return err
		})
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
