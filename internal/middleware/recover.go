package middleware

import (
	"context"

	"github.com/chatprep/chatprep/internal/handler"
	"github.com/chatprep/chatprep/internal/panics"
)

// Recover turns a panic below it into the message's error (a
// *panics.Error, with its stack): the message fails, the worker goes on.
func Recover() handler.Middleware {
	return func(next handler.Handler) handler.Handler {
		return handler.HandlerFunc(func(ctx context.Context, m *handler.Message) (err error) {
			defer panics.Recover(&err)
			return next.Handle(ctx, m)
		})
	}
}
