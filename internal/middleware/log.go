package middleware

import (
	"cmp"
	"context"
	"time"

	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"

	"github.com/chatprep/chatprep/internal/handler"
)

// Log summaries.
const (
	// SummaryHandled is a finished message's line when its handler did not
	// say more.
	SummaryHandled = "message handled"
	// SummaryFailed is the line of a message left for redelivery.
	SummaryFailed = "handler failed: message left for redelivery"
)

// Log writes one line per handled message: at info when it is finished
// (the handler's summary and fields, then message_id, receive_count and
// duration_ms from its receipt to the end of its work, and trace_id when ctx
// has a span), at warn with the error when it is left for
// redelivery (rate-limited: a burst of 20 a second). It records the
// message's queue wait and counts failures for metrics. obs may be nil.
func Log(log zerolog.Logger, obs Observer) handler.Middleware {
	if obs == nil {
		obs = noObserver{}
	}
	warn := log.Sample(&zerolog.BurstSampler{Burst: 20, Period: time.Second})
	return func(next handler.Handler) handler.Handler {
		return handler.HandlerFunc(func(ctx context.Context, m *handler.Message) error {
			obs.MessageReceived(m.QueueWait())
			rep := &handler.Report{}
			err := next.Handle(handler.WithReport(ctx, rep), m)
			var e *zerolog.Event
			summary := cmp.Or(rep.Summary, SummaryHandled)
			switch {
			case err != nil:
				obs.MessageFailed()
				e, summary = warn.Warn().Err(err), SummaryFailed
			case rep.Warn:
				e = warn.Warn()
			default:
				e = log.Info()
			}
			if e == nil { // below the level, or sampled out
				return err
			}
			rep.Write(e)
			end := rep.Done
			if end.IsZero() {
				end = time.Now()
			}
			received := m.ReceivedAt
			if received.IsZero() {
				received = end
			}
			if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
				e.Str("trace_id", sc.TraceID().String())
			}
			e.Str("message_id", m.ID).Int("receive_count", m.ReceiveCount).
				Float64("duration_ms", ms(end.Sub(received))).Msg(summary)
			return err
		})
	}
}
