// Package handler is the contract between the consumer, which receives
// messages, and the code that handles them: Message, Handler (shaped like
// net/http's), Middleware to wrap it, and the few ways a handler's error
// tells what should happen to its message.
//
// A handler returns nil when its message is finished (the consumer deletes
// it) or an error (the message is not deleted). What the error means is
// read from its behaviour, never its text nor its concrete type:
//
//   - an error wrapping a *PoisonError (see Poison) says the body can never
//     be handled: the DeadLetter middleware moves it to the dead-letter
//     queue;
//   - an error whose chain has a Transient() bool method answering true
//     (see IsTransient) says a dependency failed, not the message: the Hold
//     middleware retries it in place, and on shutdown the consumer gives it
//     back at once;
//   - any other error leaves the message for redelivery after a back-off.
package handler

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"
)

// Message is one received message, as a handler sees it. The handler must
// not keep it after Handle returns.
type Message struct {
	ID           string    // SQS MessageId
	Body         string    // the body, untouched
	GroupID      string    // FIFO MessageGroupId, "" on a standard queue
	ReceiveCount int       // ApproximateReceiveCount (1 on the first delivery)
	SentAt       time.Time // SentTimestamp
	// FirstSentAt is when SQS first received the message: SentAt, or for a
	// copy sent again (a redrive) the original's (AttrFirstSent).
	FirstSentAt time.Time
	ReceivedAt  time.Time         // when this worker received it
	Attributes  map[string]string // string (and number) message attributes
	// AttributeTypes is each of Attributes' SQS DataType ("String",
	// "Number", "Number.price", …), so that a copy of the message keeps
	// them. Binary attributes are in neither.
	AttributeTypes map[string]string
	// SystemAttributes are the SQS system attributes received with it
	// (AWSTraceHeader, SentTimestamp, …).
	SystemAttributes map[string]string
	// Behind, when set, returns the bodies of the messages of the same
	// FIFO group that this worker has already received and that wait
	// behind this one, in the order they will be handled: what is known,
	// now, to come next in the chat. It never waits for a message; on a
	// standard queue (no order to speak of) it returns none. Call it only
	// during Handle.
	Behind func() []string
}

// QueueWait is how long the message waited in the queue: from SentAt to
// ReceivedAt (0 when either is unknown).
func (m *Message) QueueWait() time.Duration {
	if m.SentAt.IsZero() || m.ReceivedAt.IsZero() {
		return 0
	}
	return max(m.ReceivedAt.Sub(m.SentAt), 0)
}

// Handler handles one message. ctx is not cancelled when the worker is
// asked to stop: it is cancelled when the message's lease is lost or when
// the shutdown bound runs out (context.Cause says which). A handler must
// not publish its result once ctx is done.
type Handler interface {
	Handle(ctx context.Context, m *Message) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, m *Message) error

// Handle calls f(ctx, m).
func (f HandlerFunc) Handle(ctx context.Context, m *Message) error { return f(ctx, m) }

// Middleware wraps a Handler with one concern.
type Middleware func(Handler) Handler

// Chain wraps h in mws, the first outermost: Chain(h, a, b) is a(b(h)).
func Chain(h Handler, mws ...Middleware) Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

// PoisonError marks a message that can never be handled: its body cannot
// be decoded or breaks the contract.
type PoisonError struct {
	Code string // machine-readable reason, e.g. event.CodeNotJSON: the `error_code` attribute
	Err  error  // what is wrong; its text becomes the `error` attribute
}

func (e *PoisonError) Error() string {
	if e.Err == nil {
		return "poison message: " + e.Code
	}
	return fmt.Sprintf("poison message (%s): %v", e.Code, e.Err)
}

// Unwrap returns what is wrong.
func (e *PoisonError) Unwrap() error { return e.Err }

// Transient is false: the same body fails the same way.
func (e *PoisonError) Transient() bool { return false }

// Poison returns a *PoisonError for an event that cannot be handled.
func Poison(code string, err error) error { return &PoisonError{Code: code, Err: err} }

// transient is the behaviour IsTransient looks for.
type transient interface{ Transient() bool }

// IsTransient tells whether err is a failure of a dependency, not of the
// message: the first error in its chain that says (with a Transient() bool
// method) answers true. An error that says nothing is not transient.
func IsTransient(err error) bool {
	var t transient
	return errors.As(err, &t) && t.Transient()
}

// Transient marks err as a dependency's failure, for errors whose types do
// not say. Transient(nil) is nil.
func Transient(err error) error {
	if err == nil {
		return nil
	}
	return &transientError{err}
}

type transientError struct{ error }

func (e *transientError) Unwrap() error   { return e.error }
func (e *transientError) Transient() bool { return true }

// Report is what a handler tells the one log line of its message: the
// line's message and the handler's fields. The Log middleware puts one in
// the context; handlers fill it with Describe. Each field is added once.
type Report struct {
	Summary string // the line's message; empty: the Log middleware's default
	Warn    bool   // log the line at warn, not info (a message moved aside)
	// Done, when set, is when the handler's work ended (its result
	// accepted): the line's duration_ms runs from the receipt to it, so it
	// equals the handler's own handler_total_duration.
	Done   time.Time
	fields []func(*zerolog.Event)
}

type reportKey struct{}

// WithReport returns ctx carrying r.
func WithReport(ctx context.Context, r *Report) context.Context {
	return context.WithValue(ctx, reportKey{}, r)
}

// ReportFrom returns the Report in ctx, or nil.
func ReportFrom(ctx context.Context) *Report {
	r, _ := ctx.Value(reportKey{}).(*Report)
	return r
}

// Describe adds fields to the message's log line and, when summary is not
// empty, sets the line's message. Without a Report in ctx it does nothing.
func Describe(ctx context.Context, summary string, fields func(e *zerolog.Event)) {
	r := ReportFrom(ctx)
	if r == nil {
		return
	}
	if summary != "" {
		r.Summary = summary
	}
	if fields != nil {
		r.fields = append(r.fields, fields)
	}
}

// Reset forgets what the handler described: a middleware that calls it
// again (a retry) starts each call afresh, so no field is written twice.
func (r *Report) Reset() { *r = Report{} }

// Write adds the handler's fields to e.
func (r *Report) Write(e *zerolog.Event) {
	for _, f := range r.fields {
		f(e)
	}
}
