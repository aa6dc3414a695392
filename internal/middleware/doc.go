// Package middleware holds the concerns that wrap every message's handler,
// one a file, each a handler.Middleware. The worker composes them in one
// place (internal/app), outermost first:
//
//	Log         the message's one log line (timing, outcome, the handler's
//	            fields), queue wait and messages_failed
//	Recover     a panic is the message's error, with its stack
//	Hold        a dependency's failure is retried here, keeping the lease
//	DeadLetter  a poison message goes to the dead-letter queue, then is done
//	Pause       wait while the Weaviate circuit breaker is open
//	(pipeline)  the preprocessing itself
//
// Only the event's span (tracing.Middleware, internal/tracing) is outside
// them, so that the log line can name its trace. Log is outermost here so
// that it sees every outcome, a recovered panic included; Recover is inside
// it so that it also catches a panic of the middlewares below. Hold is
// outside DeadLetter: a move to the dead-letter queue that fails for the
// queue's sake (throttled, unreachable) is held and retried in place like
// any dependency's failure, instead of giving the message back, which would
// spend a receive towards MAX_RECEIVE_COUNT until the redrive policy moved
// it without its reason. A poison body itself is never retried: its error
// is not transient. Pause is inside Hold, so every retry waits for the
// breaker too.
package middleware

import (
	"context"
	"time"
)

// Observer receives the events the middlewares count for metrics
// (metrics.Aggregator implements it). Its methods must not block.
type Observer interface {
	// MessageReceived is called once per handled delivery with its queue
	// wait (sent to received).
	MessageReceived(queueWait time.Duration)
	// MessageRejected is called once a poison message is in the
	// dead-letter queue.
	MessageRejected()
	// MessageFailed is called when a message is left for redelivery.
	MessageFailed()
}

// Gate blocks while handling should pause (the breaker implements it).
type Gate interface {
	Wait(ctx context.Context) error
}

type noObserver struct{}

func (noObserver) MessageReceived(time.Duration) {}
func (noObserver) MessageRejected()              {}
func (noObserver) MessageFailed()                {}

// until returns ctx, also cancelled when stop is done (the worker's stop):
// waits in place end when either does.
func until(ctx, stop context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	if stop == nil {
		return ctx, cancel
	}
	unhook := context.AfterFunc(stop, cancel)
	return ctx, func() { unhook(); cancel() }
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
