package middleware

import (
	"context"
	"fmt"

	"github.com/chatprep/chatprep/internal/handler"
)

// Pause waits, before the handler runs, while gate blocks (the Weaviate
// circuit breaker is open): a message received just before the breaker
// opened does not fail fast against it. The wait ends with the message's
// context or with stop (the worker's stop); then the handler is not called
// and the error is transient, so the consumer gives the message back at
// once.
func Pause(gate Gate, stop context.Context) handler.Middleware {
	return func(next handler.Handler) handler.Handler {
		return handler.HandlerFunc(func(ctx context.Context, m *handler.Message) error {
			wctx, cancel := until(ctx, stop)
			err := gate.Wait(wctx)
			cancel()
			if err != nil {
				if ctx.Err() != nil {
					return context.Cause(ctx)
				}
				return handler.Transient(fmt.Errorf("wait for the paused worker to resume: %w", err))
			}
			return next.Handle(ctx, m)
		})
	}
}
