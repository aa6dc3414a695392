package middleware

import (
	"cmp"
	"context"
	"errors"

	"github.com/rs/zerolog"

	"github.com/chatprep/chatprep/internal/handler"
)

// SummaryDeadLettered is the log line of a poison message moved aside.
const SummaryDeadLettered = "poison message moved to the dead-letter queue"

// DeadLetters is where poison messages go (dlq.Queue implements it).
type DeadLetters interface {
	// Put sends m, body untouched, to the dead-letter queue with the
	// error code and reason; it returns once SQS accepted it.
	Put(ctx context.Context, m *handler.Message, code, reason string) error
}

// DeadLetter moves a message whose handler says it is poison (an error
// wrapping *handler.PoisonError) to the dead-letter queue and then reports
// it finished, so the consumer deletes it from the input queue: sent
// first, deleted after, so it is never lost. If the send fails, the
// handler's error says so and the message stays for redelivery. A message
// whose context is done (its lease lost) is not moved: whoever holds it now
// does that. obs may be nil.
func DeadLetter(dlq DeadLetters, obs Observer) handler.Middleware {
	if obs == nil {
		obs = noObserver{}
	}
	return func(next handler.Handler) handler.Handler {
		return handler.HandlerFunc(func(ctx context.Context, m *handler.Message) error {
			err := next.Handle(ctx, m)
			var poison *handler.PoisonError
			if err == nil || !errors.As(err, &poison) || ctx.Err() != nil {
				return err
			}
			code := cmp.Or(poison.Code, "poison")
			reason := code
			if poison.Err != nil {
				reason = poison.Err.Error()
			}
			if err := dlq.Put(ctx, m, code, reason); err != nil {
				return err
			}
			obs.MessageRejected()
			handler.Describe(ctx, SummaryDeadLettered, func(e *zerolog.Event) {
				e.Str("error_code", code).Str("error", reason)
			})
			if r := handler.ReportFrom(ctx); r != nil {
				r.Warn = true
			}
			return nil
		})
	}
}
